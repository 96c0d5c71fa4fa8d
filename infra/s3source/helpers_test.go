package s3source

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
)

// stackAWS returns the AWS settings of the local stack.
func stackAWS(tb testing.TB) conf.AWS { return awstest.Config(tb).AWS }

// newClient returns an S3 client for c, built as the service builds it.
func newClient(tb testing.TB, c conf.AWS) *s3.Client { return awstest.S3(tb, c) }

// newBucket creates an empty bucket that is removed after the test.
func newBucket(tb testing.TB, client *s3.Client) string {
	return awstest.Bucket(tb, client, "s3source")
}

// put stores body as bucket/key.
func put(tb testing.TB, client *s3.Client, bucket, key string, body []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		tb.Fatalf("PutObject %s/%s: %v", bucket, key, err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// proxy is an HTTP proxy in front of the stack's S3 that counts GETs and
// can cut their bodies off: a misbehaving network peer for one test.
type proxy struct {
	URL      string
	gets     atomic.Int64
	inFlight atomic.Int64

	mu    sync.Mutex
	maxIn int64
	// cut decides, for the n-th GET (from 1), whether its body breaks off halfway.
	cut func(n int64) bool
	// hold delays each GET's answer, so that overlapping requests overlap.
	hold time.Duration
}

// set replaces the cut rule and the delay and restarts the GET count.
func (p *proxy) set(cut func(n int64) bool, hold time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.hold, p.maxIn = cut, hold, 0
	p.gets.Store(0)
}

func (p *proxy) rule() (func(int64) bool, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut, p.hold
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{cut: func(int64) bool { return false }}
	rp := &httputil.ReverseProxy{
		// Keep the Host header: it is part of the SigV4 signature.
		Rewrite:  func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host },
		ErrorLog: log.New(io.Discard, "", 0),
		// Flush every write, so the headers and the first half of a cut-off
		// body reach the client before the connection breaks.
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			cut, _ := p.rule()
			if resp.Request.Method == http.MethodGet && resp.ContentLength > 1 && cut(resp.Request.Context().Value(getNumber{}).(int64)) {
				resp.Body = &cutBody{ReadCloser: resp.Body, left: resp.ContentLength / 2}
			}
			return nil
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			n := p.gets.Add(1)
			in := p.inFlight.Add(1)
			defer p.inFlight.Add(-1)
			p.mu.Lock()
			p.maxIn = max(p.maxIn, in)
			p.mu.Unlock()
			_, hold := p.rule()
			time.Sleep(hold)
			r = r.WithContext(context.WithValue(r.Context(), getNumber{}, n))
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *proxy) maxInFlight() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxIn
}

type getNumber struct{}

// cutBody fails after left bytes, so the proxy aborts the response and the
// client sees a body shorter than its Content-Length.
type cutBody struct {
	io.ReadCloser
	left int64
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("test proxy: body cut off")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}
