package s3source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/stall"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantErr checks that err is Permanent, matches sentinel, and names where.
func wantErr(t *testing.T, err, sentinel error, where string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("no error, want %v", sentinel)
	case !errors.Is(err, sentinel):
		t.Fatalf("error %q is not %v", err, sentinel)
	case !errclass.IsPermanent(err):
		t.Fatalf("error %q is %v, want permanent", err, errclass.Of(err))
	case !strings.Contains(err.Error(), where):
		t.Fatalf("error %q does not name %s", err, where)
	}
}

func TestReadChunk_sizes_against_stack(t *testing.T) {
	client := newClient(t, stackAWS(t))
	ctx := testContext(t)
	bucket := newBucket(t, client)
	const chunk = 1 << 20
	for _, size := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			body := randomBytes(size)
			key := fmt.Sprintf("meetings/%d.mp4", size)
			put(t, client, bucket, key, body)
			src := New(client, Options{})
			obj, err := src.Head(ctx, bucket, key)
			if err != nil {
				t.Fatal(err)
			}
			if obj.Bucket != bucket || obj.Key != key || obj.Size != int64(size) || obj.ETag == "" || obj.LastModified.IsZero() {
				t.Fatalf("Head: %+v", obj)
			}
			var got []byte
			buf := make([]byte, chunk)
			for off := int64(0); off < obj.Size; {
				n, err := src.ReadChunk(ctx, obj, off, buf)
				if err != nil {
					t.Fatal(err)
				}
				if want := min(chunk, obj.Size-off); int64(n) != want {
					t.Fatalf("ReadChunk at %d read %d bytes, want %d", off, n, want)
				}
				got = append(got, buf[:n]...)
				off += int64(n)
			}
			if !bytes.Equal(got, body) {
				t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(body))
			}
			if src.BytesRead() != int64(size) {
				t.Fatalf("BytesRead %d, want %d", src.BytesRead(), size)
			}
			// At the end of the object there is nothing left to read.
			if n, err := src.ReadChunk(ctx, obj, obj.Size, buf); n != 0 || err != nil {
				t.Fatalf("ReadChunk at the end: %d, %v", n, err)
			}
		})
	}
}

func TestReadChunk_empty_object_needs_no_request(t *testing.T) {
	// A client for an endpoint where nothing listens: any request would fail.
	c := conf.AWS{Region: "us-east-1", AccessKeyID: "x", SecretAccessKey: "y", S3PathStyle: true,
		Endpoints: conf.AWSEndpoints{S3: "http://127.0.0.1:1"}}
	src := New(newClient(t, c), Options{})
	n, err := src.ReadChunk(context.Background(), Object{Bucket: "b", Key: "k", Size: 0, ETag: `"x"`}, 0, make([]byte, 16))
	if n != 0 || err != nil {
		t.Fatalf("ReadChunk of an empty object: %d, %v", n, err)
	}
	n, err = src.ReadChunk(context.Background(), Object{Bucket: "b", Key: "k", Size: 10}, 0, nil)
	if n != 0 || err != nil {
		t.Fatalf("ReadChunk into an empty buffer: %d, %v", n, err)
	}
	_, err = src.ReadChunk(context.Background(), Object{Bucket: "b", Key: "k", Size: 10}, 11, make([]byte, 16))
	if !errclass.IsPermanent(err) {
		t.Fatalf("ReadChunk past the end: %v, want a permanent error", err)
	}
}

func TestMissing_key_and_bucket_against_stack(t *testing.T) {
	client := newClient(t, stackAWS(t))
	ctx := testContext(t)
	bucket := newBucket(t, client)
	noBucket := bucket + "-gone"
	src := New(client, Options{})
	for _, tc := range []struct {
		name, bucket string
		want         error
	}{
		{"key", bucket, ErrNoSuchKey},
		{"bucket", noBucket, ErrNoSuchBucket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			where := "s3://" + tc.bucket + "/meetings/missing.mp4"
			_, err := src.Head(ctx, tc.bucket, "meetings/missing.mp4")
			wantErr(t, err, tc.want, where)
			_, err = src.ReadChunk(ctx, Object{Bucket: tc.bucket, Key: "meetings/missing.mp4", Size: 100}, 0, make([]byte, 100))
			wantErr(t, err, tc.want, where+" bytes 0-99")
		})
	}
	// Deleting from a bucket that does not exist is an error, unlike deleting a missing key.
	_, err := src.deleteIfMatch(ctx, Object{Bucket: noBucket, Key: "k"})
	wantErr(t, err, ErrNoSuchBucket, "s3://"+noBucket+"/k")
}

func TestAccessDenied_against_stack(t *testing.T) {
	good := stackAWS(t)
	client := newClient(t, good)
	ctx := testContext(t)
	bucket := newBucket(t, client)
	put(t, client, bucket, "k", []byte("0123456789"))
	obj, err := New(client, Options{}).Head(ctx, bucket, "k")
	if err != nil {
		t.Fatal(err)
	}

	wrongSecret := good
	wrongSecret.SecretAccessKey = "wrong-secret-for-the-test"
	// versitygw answers a wrong secret with 403 SignatureDoesNotMatch (GET,
	// DELETE) or a bare 403 (HEAD, which has no body).
	src := New(newClient(t, wrongSecret), Options{})
	where := "s3://" + bucket + "/k"
	_, err = src.Head(ctx, bucket, "k")
	wantErr(t, err, ErrAccessDenied, where)
	_, err = src.ReadChunk(ctx, obj, 0, make([]byte, 10))
	wantErr(t, err, ErrAccessDenied, where)
	if strings.Contains(err.Error(), wrongSecret.SecretAccessKey.Reveal()) || strings.Contains(err.Error(), good.AccessKeyID) {
		t.Fatalf("the error names credentials: %v", err)
	}
	_, err = src.deleteIfMatch(ctx, obj)
	wantErr(t, err, ErrAccessDenied, where)

	// versitygw answers an unknown access key ID with 404 XAdminUserNotFound
	// where S3 says 403 InvalidAccessKeyId; the code tells it from a missing
	// key. HEAD has no body, so there it is indistinguishable from a missing
	// object and is not checked here.
	unknownKey := wrongSecret
	unknownKey.AccessKeyID = "no-such-access-key"
	src = New(newClient(t, unknownKey), Options{})
	_, err = src.ReadChunk(ctx, obj, 0, make([]byte, 10))
	wantErr(t, err, ErrAccessDenied, where)
	_, err = src.deleteIfMatch(ctx, obj)
	wantErr(t, err, ErrAccessDenied, where)
}

// versitygw v1.8.0 honours If-Match on GET (and HEAD): a replaced object
// gives 412 PreconditionFailed. A server that ignored it would still be caught
// by checkResponse (ETag and Content-Range total), see TestCheckResponse.
func TestObjectChanged_against_stack(t *testing.T) {
	client := newClient(t, stackAWS(t))
	ctx := testContext(t)
	bucket := newBucket(t, client)
	src := New(client, Options{})
	for _, tc := range []struct {
		name        string
		replacement []byte
	}{
		{"same size", bytes.Repeat([]byte("b"), 1000)},
		{"other size", bytes.Repeat([]byte("b"), 2000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "meetings/" + tc.name + ".mp4"
			put(t, client, bucket, key, bytes.Repeat([]byte("a"), 1000))
			obj, err := src.Head(ctx, bucket, key)
			if err != nil {
				t.Fatal(err)
			}
			put(t, client, bucket, key, tc.replacement)
			_, err = src.ReadChunk(ctx, obj, 100, make([]byte, 100))
			wantErr(t, err, ErrObjectChanged, "s3://"+bucket+"/"+key+" bytes 100-199")
			if !strings.Contains(err.Error(), "412") {
				t.Fatalf("error %q: want the server's 412 (If-Match honoured)", err)
			}
		})
	}
}

func TestDelete_twice_against_stack(t *testing.T) {
	client := newClient(t, stackAWS(t))
	ctx := testContext(t)
	bucket := newBucket(t, client)
	put(t, client, bucket, "meetings/x.mp4", []byte("x"))
	src := New(client, Options{})
	obj, err := src.Head(ctx, bucket, "meetings/x.mp4")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := src.deleteIfMatch(ctx, obj); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	_, err = src.Head(ctx, bucket, "meetings/x.mp4")
	wantErr(t, err, ErrNoSuchKey, "meetings/x.mp4")
}

// TestRemove_pinned_against_stack: Remove deletes only the version it was
// given; versitygw itself refuses a delete whose If-Match names a replaced
// version (412), and a missing object is already gone.
func TestRemove_pinned_against_stack(t *testing.T) {
	client := newClient(t, stackAWS(t))
	ctx := testContext(t)
	bucket := newBucket(t, client)
	src := New(client, Options{})
	const key = "meetings/pinned.mp4"
	head := func() (Object, error) { return src.Head(ctx, bucket, key) }

	put(t, client, bucket, key, []byte("first recording"))
	first, err := head()
	if err != nil {
		t.Fatal(err)
	}
	put(t, client, bucket, key, []byte("other recording")) // same size, other bytes
	second, err := head()
	if err != nil {
		t.Fatal(err)
	}
	if first.ETag == second.ETag {
		t.Fatalf("both versions have the ETag %s", first.ETag)
	}

	// The server's own check, without the lookup before it.
	got, err := src.deleteIfMatch(ctx, first)
	if err != nil || got != Changed {
		t.Fatalf("delete with a stale If-Match = %v, %v; want %v (412)", got, err, Changed)
	}
	for _, obj := range []Object{first, {Bucket: bucket, Key: key, Size: second.Size + 1, ETag: second.ETag}} {
		if got, err := src.Remove(ctx, obj); err != nil || got != Changed {
			t.Fatalf("Remove(%+v) = %v, %v; want %v", obj, got, err, Changed)
		}
	}
	if now, err := head(); err != nil || now.ETag != second.ETag {
		t.Fatalf("after refused removals: %+v, %v; want the second version kept", now, err)
	}

	if got, err := src.Remove(ctx, second); err != nil || got != Removed {
		t.Fatalf("Remove(current) = %v, %v; want %v", got, err, Removed)
	}
	if _, err := head(); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("after Remove: %v, want %v", err, ErrNoSuchKey)
	}
	if got, err := src.Remove(ctx, second); err != nil || got != AlreadyGone {
		t.Fatalf("Remove(gone) = %v, %v; want %v", got, err, AlreadyGone)
	}
	if got, err := src.deleteIfMatch(ctx, second); err != nil || (got != AlreadyGone && got != Removed) {
		// AWS answers 404, versitygw 204, for a key already deleted.
		t.Fatalf("delete of a gone key with If-Match = %v, %v", got, err)
	}
}

func TestReadChunk_cut_off_body_against_stack(t *testing.T) {
	c := stackAWS(t)
	client := newClient(t, c)
	ctx := testContext(t)
	bucket := newBucket(t, client)
	body := randomBytes(256 << 10)
	put(t, client, bucket, "k", body)

	p := newProxy(t, c.Endpoints.S3)
	c.Endpoints.S3 = p.URL
	viaProxy := newClient(t, c)

	t.Run("first body cut off, then read again", func(t *testing.T) {
		p.set(func(n int64) bool { return n == 1 }, 0)
		src := New(viaProxy, Options{})
		src.retryDelay = time.Millisecond
		obj, err := src.Head(ctx, bucket, "k")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(body))
		n, err := src.ReadChunk(ctx, obj, 0, buf)
		if err != nil || n != len(body) || !bytes.Equal(buf, body) {
			t.Fatalf("ReadChunk: %d, %v (equal %v)", n, err, bytes.Equal(buf, body))
		}
		if got := p.gets.Load(); got != 2 {
			t.Fatalf("%d GETs, want 2", got)
		}
		if got, want := src.BytesRead(), int64(len(body)+len(body)/2); got != want {
			t.Fatalf("BytesRead %d, want %d (half a cut-off body and a whole one)", got, want)
		}
	})
	t.Run("every body cut off", func(t *testing.T) {
		p.set(func(int64) bool { return true }, 0)
		src := New(viaProxy, Options{BodyRetries: 2})
		src.retryDelay = time.Millisecond
		obj, err := src.Head(ctx, bucket, "k")
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.ReadChunk(ctx, obj, 0, make([]byte, 1000))
		if !errclass.IsTransient(err) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "s3://"+bucket+"/k bytes 0-999") {
			t.Fatalf("error %q (%v), want a transient unexpected EOF naming the chunk", err, errclass.Of(err))
		}
		if got := p.gets.Load(); got != 3 {
			t.Fatalf("%d GETs, want 3 (1 + BodyRetries)", got)
		}
	})
	t.Run("answers that move no byte", func(t *testing.T) {
		// Each answer is held longer than the stall timeout: every GET is
		// cancelled, repeated, and the read fails transiently.
		p.set(func(int64) bool { return false }, time.Second)
		src := New(viaProxy, Options{BodyRetries: 2, StallTimeout: 100 * time.Millisecond})
		src.retryDelay = time.Millisecond
		obj, err := src.Head(ctx, bucket, "k")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = src.ReadChunk(ctx, obj, 0, make([]byte, 1000))
		if !errclass.IsTransient(err) || !errors.Is(err, stall.ErrStalled) {
			t.Fatalf("error %q (%v), want a transient stall", err, errclass.Of(err))
		}
		if got := p.gets.Load(); got != 3 {
			t.Fatalf("%d GETs, want 3 (1 + BodyRetries)", got)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("three stalled GETs took %s: the watchdog did not cut them", d)
		}
		// Slower than that timeout, but well within a longer one: read.
		p.set(func(int64) bool { return false }, 200*time.Millisecond)
		src = New(viaProxy, Options{StallTimeout: 5 * time.Second})
		if n, err := src.ReadChunk(ctx, obj, 0, make([]byte, 1000)); err != nil || n != 1000 {
			t.Fatalf("ReadChunk = %d, %v", n, err)
		}
		for p.inFlight.Load() > 0 { // the proxy still holds the cancelled GETs
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("no body retries", func(t *testing.T) {
		p.set(func(int64) bool { return true }, 0)
		src := New(viaProxy, Options{BodyRetries: -1})
		obj, err := src.Head(ctx, bucket, "k")
		if err != nil {
			t.Fatal(err)
		}
		if _, err = src.ReadChunk(ctx, obj, 0, make([]byte, 1000)); !errclass.IsTransient(err) {
			t.Fatalf("error %v, want transient", err)
		}
		if got := p.gets.Load(); got != 1 {
			t.Fatalf("%d GETs, want 1", got)
		}
	})
	t.Run("concurrency bounds GETs in flight", func(t *testing.T) {
		p.set(func(int64) bool { return false }, 20*time.Millisecond)
		src := New(viaProxy, Options{Concurrency: 2})
		obj, err := src.Head(ctx, bucket, "k")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range 8 {
			wg.Go(func() {
				buf := make([]byte, 1024)
				if _, err := src.ReadChunk(ctx, obj, int64(i)*1024, buf); err != nil || !bytes.Equal(buf, body[i*1024:(i+1)*1024]) {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() != 0 || p.maxInFlight() > 2 {
			t.Fatalf("%d reads failed, %d GETs in flight at most, want 0 and <= 2", failed.Load(), p.maxInFlight())
		}
	})
}

func TestReadChunk_canceled_against_stack(t *testing.T) {
	client := newClient(t, stackAWS(t))
	bucket := newBucket(t, client)
	put(t, client, bucket, "k", []byte("0123456789"))
	src := New(client, Options{})
	obj, err := src.Head(testContext(t), bucket, "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = src.ReadChunk(ctx, obj, 0, make([]byte, 10))
	if !errors.Is(err, context.Canceled) || !errclass.IsTransient(err) {
		t.Fatalf("error %v (%v), want a transient context.Canceled", err, errclass.Of(err))
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                string
		start, end, total int64
		wantErr           bool
	}{
		{in: "bytes 0-99/1000", start: 0, end: 99, total: 1000},
		{in: "bytes 999-999/1000", start: 999, end: 999, total: 1000},
		{in: "bytes 8388608-16777215/67108864", start: 8388608, end: 16777215, total: 67108864},
		{in: "bytes */1000", wantErr: true},
		{in: "bytes 0-99/*", wantErr: true},
		{in: "bytes 0-99", wantErr: true},
		{in: "bytes=0-99/1000", wantErr: true},
		{in: "0-99/1000", wantErr: true},
		{in: "bytes 99-0/1000", wantErr: true},
		{in: "bytes 0-1000/1000", wantErr: true},
		{in: "bytes -1-99/1000", wantErr: true},
		{in: "bytes +0-99/1000", wantErr: true},
		{in: "bytes 0-99/1000 ", wantErr: true},
		{in: "", wantErr: true},
	} {
		start, end, total, err := parseContentRange(tc.in)
		if (err != nil) != tc.wantErr || !tc.wantErr && (start != tc.start || end != tc.end || total != tc.total) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v", tc.in, start, end, total, err)
		}
	}
}

func TestCheckResponse(t *testing.T) {
	obj := Object{Bucket: "b", Key: "k", Size: 1000, ETag: `"abc"`}
	for _, tc := range []struct {
		name        string
		etag, rng   string
		length      *int64
		wantChanged bool
		wantErr     string // part of the message; "" for success
	}{
		{name: "ok", etag: `"abc"`, rng: "bytes 100-199/1000", length: aws.Int64(100)},
		{name: "no ETag in the answer", rng: "bytes 100-199/1000", length: aws.Int64(100)},
		{name: "other ETag", etag: `"def"`, rng: "bytes 100-199/1000", length: aws.Int64(100), wantChanged: true, wantErr: `ETag is "def", was "abc"`},
		{name: "other total", etag: `"abc"`, rng: "bytes 100-199/2000", length: aws.Int64(100), wantChanged: true, wantErr: "size 2000, was 1000"},
		{name: "other start", etag: `"abc"`, rng: "bytes 101-199/1000", length: aws.Int64(99), wantErr: "not the range asked for, bytes 100-199"},
		{name: "other end", etag: `"abc"`, rng: "bytes 100-198/1000", length: aws.Int64(99), wantErr: "not the range asked for"},
		{name: "no Content-Range", etag: `"abc"`, length: aws.Int64(1000), wantErr: "no Content-Range"},
		{name: "malformed Content-Range", etag: `"abc"`, rng: "bytes 100-199", length: aws.Int64(100), wantErr: "malformed"},
		{name: "other length", etag: `"abc"`, rng: "bytes 100-199/1000", length: aws.Int64(101), wantErr: "Content-Length is 101, want 100"},
		{name: "no length", etag: `"abc"`, rng: "bytes 100-199/1000", wantErr: "Content-Length is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &s3.GetObjectOutput{ContentLength: tc.length}
			if tc.etag != "" {
				out.ETag = aws.String(tc.etag)
			}
			if tc.rng != "" {
				out.ContentRange = aws.String(tc.rng)
			}
			err := checkResponse(out, obj, 100, 199)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			case errors.Is(err, ErrObjectChanged) != tc.wantChanged || tc.wantChanged && !errclass.IsPermanent(err):
				t.Fatalf("error %v: ErrObjectChanged %v, class %v", err, errors.Is(err, ErrObjectChanged), errclass.Of(err))
			}
		})
	}
}

// apiErr returns an error shaped like the SDK's for an S3 answer with status
// and code ("" for a HEAD answer without body).
func apiErr(status int, code string) error {
	var err error = &smithy.GenericAPIError{Code: code, Message: "m"}
	if code == "" {
		err = &smithy.GenericAPIError{Code: http.StatusText(status)}
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}}
}

func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		err      error
		class    errclass.Class
		sentinel error
	}{
		{"NoSuchKey", nil, apiErr(404, "NoSuchKey"), errclass.Permanent, ErrNoSuchKey},
		{"HEAD 404", nil, apiErr(404, ""), errclass.Permanent, ErrNoSuchKey},
		{"NoSuchBucket", nil, apiErr(404, "NoSuchBucket"), errclass.Permanent, ErrNoSuchBucket},
		{"AccessDenied", nil, apiErr(403, "AccessDenied"), errclass.Permanent, ErrAccessDenied},
		{"HEAD 403", nil, apiErr(403, ""), errclass.Permanent, ErrAccessDenied},
		{"SignatureDoesNotMatch", nil, apiErr(403, "SignatureDoesNotMatch"), errclass.Permanent, ErrAccessDenied},
		{"InvalidAccessKeyId", nil, apiErr(403, "InvalidAccessKeyId"), errclass.Permanent, ErrAccessDenied},
		{"versitygw unknown key ID", nil, apiErr(404, "XAdminUserNotFound"), errclass.Permanent, ErrAccessDenied},
		{"PreconditionFailed", nil, apiErr(412, "PreconditionFailed"), errclass.Permanent, ErrObjectChanged},
		{"HEAD 412", nil, apiErr(412, ""), errclass.Permanent, ErrObjectChanged},
		{"InvalidRange", nil, apiErr(416, "InvalidRange"), errclass.Permanent, nil},
		{"InternalError", nil, apiErr(500, "InternalError"), errclass.Transient, nil},
		{"SlowDown", nil, apiErr(503, "SlowDown"), errclass.Transient, nil},
		{"429", nil, apiErr(429, "TooManyRequests"), errclass.Transient, nil},
		{"RequestTimeout", nil, apiErr(400, "RequestTimeout"), errclass.Transient, nil},
		{"connection refused", nil, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, errclass.Transient, nil},
		{"reset", nil, &net.OpError{Op: "read", Err: syscall.ECONNRESET}, errclass.Transient, nil},
		{"cut off", nil, &cutOffError{got: 1, want: 2, err: io.ErrUnexpectedEOF}, errclass.Transient, io.ErrUnexpectedEOF},
		{"canceled", canceled, errors.New("request canceled"), errclass.Transient, context.Canceled},
		{"deadline", nil, fmt.Errorf("x: %w", context.DeadlineExceeded), errclass.Transient, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			err := classify(ctx, "read s3://b/k bytes 0-9", tc.err)
			if errclass.Of(err) != tc.class || tc.sentinel != nil && !errors.Is(err, tc.sentinel) ||
				!errors.Is(err, tc.err) && tc.ctx == nil || !strings.HasPrefix(err.Error(), "cannot read s3://b/k bytes 0-9: ") {
				t.Fatalf("classify(%v) = %q (%v), want %v wrapping %v", tc.err, err, errclass.Of(err), tc.class, tc.sentinel)
			}
			for _, s := range []error{ErrNoSuchKey, ErrNoSuchBucket, ErrAccessDenied, ErrObjectChanged} {
				if s != tc.sentinel && errors.Is(err, s) {
					t.Fatalf("classify(%v) = %q, also %v", tc.err, err, s)
				}
			}
		})
	}
}

// BenchmarkReadChunk reads a 64 MiB object in 8 MiB chunks with Concurrency
// goroutines, each into its own reused buffer.
func BenchmarkReadChunk(b *testing.B) {
	const size, chunk = 64 << 20, 8 << 20
	client := newClient(b, stackAWS(b))
	bucket := newBucket(b, client)
	put(b, client, bucket, "big.mp4", randomBytes(size))
	ctx := context.Background()
	for _, conc := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			src := New(client, Options{Concurrency: conc})
			obj, err := src.Head(ctx, bucket, "big.mp4")
			if err != nil {
				b.Fatal(err)
			}
			bufs := make([][]byte, conc)
			for i := range bufs {
				bufs[i] = make([]byte, chunk)
			}
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				var next atomic.Int64
				var wg sync.WaitGroup
				errs := make([]error, conc)
				for g := range conc {
					wg.Go(func() {
						for {
							off := next.Add(chunk) - chunk
							if off >= size {
								return
							}
							if _, err := src.ReadChunk(ctx, obj, off, bufs[g]); err != nil {
								errs[g] = err
								return
							}
						}
					})
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if src.BytesRead() != int64(b.N)*size {
				b.Fatalf("BytesRead %d, want %d", src.BytesRead(), int64(b.N)*size)
			}
		})
	}
}
