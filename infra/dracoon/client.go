// Package dracoon is a client of the DRACOON REST API (version 4) for what
// this project needs: OAuth2 login, room paths, encrypted uploads (proxy
// chunks or S3 direct parts), file-key distribution and downloads. File
// content is encrypted by package crypto; this package moves the ciphertext
// and the wrapped keys.
//
// A Client is safe for concurrent use: all goroutines share one HTTP
// transport, one access token and one unlocked private key.
package dracoon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/stall"
)

// Defaults for Config fields left zero. Those that the service's
// configuration also sets are taken from package conf, the one table of
// defaults.
const (
	// DefaultTimeout bounds the wait for response headers (not the body).
	DefaultTimeout = conf.DefaultDracoonTimeout
	// DefaultRetries is how often a failed request is repeated.
	DefaultRetries = conf.DefaultDracoonRetries
	// DefaultMinBackoff is the first retry delay; it doubles per retry.
	DefaultMinBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps the retry delay and an honoured Retry-After.
	DefaultMaxBackoff = 30 * time.Second
	// DefaultChunkSize is the size of proxy upload chunks.
	DefaultChunkSize = conf.DefaultChunkSize
	// DefaultPartSize is the size of S3 direct upload parts.
	DefaultPartSize = conf.DefaultChunkSize
	// DefaultS3PollTimeout bounds the wait for an S3 upload to finish.
	DefaultS3PollTimeout = 10 * time.Minute
	// DefaultStallTimeout fails a request whose bodies move no byte this long.
	DefaultStallTimeout = conf.DefaultStallTimeout
	// DefaultLoginBackoff is how long a refused login is remembered before
	// the password is tried again; it doubles while the login keeps failing.
	DefaultLoginBackoff = 5 * time.Minute
	// DefaultMaxLoginBackoff caps the wait between refused logins.
	DefaultMaxLoginBackoff = time.Hour
)

// Limits of the API and of S3.
const (
	// MinS3PartSize is the smallest S3 part except the last: S3's
	// multipart minimum, defined once as the configuration's smallest chunk
	// (package conf cannot import this one).
	MinS3PartSize = conf.MinChunkSize
	// MaxS3Parts is the largest number of parts of one S3 upload.
	MaxS3Parts = 10000
	// MaxNotesLength is the longest note of a node, in characters.
	MaxNotesLength = 255
	// maxListLimit is the largest page of node lists.
	maxListLimit = 500
	// maxMissingKeysLimit is the largest page of missingFileKeys.
	maxMissingKeysLimit = 100
	// dialTimeout, tlsTimeout and keepAlive configure the transport.
	dialTimeout = 30 * time.Second
	tlsTimeout  = 15 * time.Second
	keepAlive   = 30 * time.Second
)

// Config configures a Client.
type Config struct {
	BaseURL            string      // server root, e.g. https://dracoon.example.com; API below /api, OAuth below /oauth
	Login              string      // user name of the account
	Password           conf.Secret // account password (OAuth password grant)
	ClientID           string      // OAuth client id
	ClientSecret       conf.Secret // OAuth client secret
	EncryptionPassword conf.Secret // unlocks the account's private key
	// Timeout bounds the wait for response headers; zero means DefaultTimeout.
	// There is no whole-request deadline: use the context.
	Timeout time.Duration
	// Retries is how often a failed request is repeated; zero means
	// DefaultRetries, NoRetries (or any negative value) means never.
	Retries int
	// MinBackoff and MaxBackoff bound the retry delay; zero means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// ChunkSize is the proxy chunk size; zero means DefaultChunkSize. It is
	// rounded down to a multiple of crypto.SegmentAlign.
	ChunkSize int64
	// PartSize is the S3 part size; zero means DefaultPartSize. It is raised
	// to MinS3PartSize and as far as needed to stay within MaxS3Parts, and
	// rounded up to a multiple of crypto.SegmentAlign.
	PartSize int64
	// S3PollTimeout bounds the wait for an S3 upload to finish; zero means
	// DefaultS3PollTimeout.
	S3PollTimeout time.Duration
	// StallTimeout fails an attempt whose bodies (the one sent and the one
	// received) move no byte for this long, with stall.ErrStalled
	// (transient); zero means DefaultStallTimeout, negative never.
	StallTimeout time.Duration
	// MissingKeysPageSize is the page size of missing file key listings;
	// zero means the API's enforced limit, 100.
	MissingKeysPageSize int
	// LoginBackoff is how long a refused login (the token endpoint's 400 or
	// 401 to the password grant) is remembered: until then every request
	// fails with it at once, without asking the server, so that a wrong
	// password cannot lock the account. It doubles with every further
	// refusal up to MaxLoginBackoff. Zero means DefaultLoginBackoff and
	// DefaultMaxLoginBackoff.
	LoginBackoff, MaxLoginBackoff time.Duration
	// RootCAs are the certificate authorities trusted for DRACOON and its
	// S3 storage; nil: the system's.
	RootCAs *x509.CertPool
	// HTTPClient replaces the client's own HTTP client (tests).
	HTTPClient *http.Client
	// Logger receives retries and lifecycle events; nil discards.
	Logger logrus.FieldLogger
}

// NoRetries as Config.Retries disables retries.
const NoRetries = -1

// NewConfig returns the Config of an instance's DRACOON account with the
// service's settings (conf.Dracoon, where 0 retries means none) and chunk
// size.
func NewConfig(settings conf.Dracoon, acct conf.DracoonAccount, chunkSize int64, log logrus.FieldLogger) Config {
	retries := settings.Retries
	if retries == 0 {
		retries = NoRetries
	}
	return Config{
		BaseURL: acct.BaseURL, Login: acct.Login, Password: acct.Password,
		ClientID: acct.ClientID, ClientSecret: acct.ClientSecret, EncryptionPassword: acct.EncryptionPassword,
		Timeout: settings.Timeout, Retries: retries, ChunkSize: chunkSize, PartSize: chunkSize, Logger: log,
		StallTimeout: settings.StallTimeout,
	}
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	c.ChunkSize = crypto.AlignDown(c.ChunkSize)
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.S3PollTimeout == 0 {
		c.S3PollTimeout = DefaultS3PollTimeout
	}
	switch {
	case c.StallTimeout == 0:
		c.StallTimeout = DefaultStallTimeout
	case c.StallTimeout < 0:
		c.StallTimeout = 0
	}
	if c.MissingKeysPageSize == 0 {
		c.MissingKeysPageSize = maxMissingKeysLimit
	}
	if c.LoginBackoff == 0 {
		c.LoginBackoff = DefaultLoginBackoff
	}
	if c.MaxLoginBackoff == 0 {
		c.MaxLoginBackoff = max(DefaultMaxLoginBackoff, c.LoginBackoff)
	}
	if c.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Logger = l
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("dracoon.Config.BaseURL %q is not an http(s) URL", c.BaseURL))
	}
	if c.Login == "" || !c.Password.IsSet() {
		errs = append(errs, errors.New("dracoon.Config.Login and Password are required"))
	}
	if c.ClientID == "" || !c.ClientSecret.IsSet() {
		errs = append(errs, errors.New("dracoon.Config.ClientID and ClientSecret are required"))
	}
	if c.ChunkSize < 16 {
		errs = append(errs, fmt.Errorf("dracoon.Config.ChunkSize %d is too small", c.ChunkSize))
	}
	if c.MissingKeysPageSize < 1 || c.MissingKeysPageSize > maxMissingKeysLimit {
		errs = append(errs, fmt.Errorf("dracoon.Config.MissingKeysPageSize %d must be 1..%d", c.MissingKeysPageSize, maxMissingKeysLimit))
	}
	if c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff {
		errs = append(errs, errors.New("dracoon.Config backoff bounds are invalid"))
	}
	if c.LoginBackoff < 0 || c.MaxLoginBackoff < c.LoginBackoff {
		errs = append(errs, errors.New("dracoon.Config.LoginBackoff and MaxLoginBackoff are invalid"))
	}
	return errors.Join(errs...)
}

// Client talks to one DRACOON account. Create it with New.
type Client struct {
	cfg   Config
	http  *http.Client
	log   logrus.FieldLogger
	auth  auth
	keys  keyCache
	rooms roomCache

	sysMu sync.Mutex
	sys   *SystemInfo // cached public system info
}

// New checks cfg and returns a Client. It does not contact the server; the
// first request logs in.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid dracoon config: %w", err)
	}
	hc := &http.Client{Transport: newTransport(cfg.Timeout, cfg.RootCAs)}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	hc.CheckRedirect = checkRedirect
	c := &Client{cfg: cfg, http: hc, log: cfg.Logger}
	c.auth.sem = make(chan struct{}, 1)
	c.keys.sem = make(chan struct{}, 1)
	return c, nil
}

// newTransport returns a keep-alive transport with dial, TLS and
// response-header timeouts but no overall deadline, so that large chunks
// are bounded only by their context.
func newTransport(responseTimeout time.Duration, roots *x509.CertPool) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	return &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   tlsTimeout,
		ResponseHeaderTimeout: responseTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
	}
}

// request describes one API call.
type request struct {
	method string
	path   string     // below /api, e.g. "/v4/nodes"; ignored when rawURL is set
	rawURL string     // absolute URL (upload, download and presigned URLs)
	query  url.Values // added to path
	route  string     // for errors and logs, without secret tokens; default method+path
	body   any        // JSON body, or nil
	// payload, when not nil, builds a fresh body for every attempt, with its
	// length and content type (chunks, parts).
	payload   func() (io.Reader, int64, string)
	noAuth    bool        // upload tokens, presigned URLs, public endpoints
	basicAuth bool        // OAuth client authentication
	header    http.Header // extra request headers, e.g. Content-Range
	ok        []int       // accepted statuses; default 200
	// idempotent requests are repeated after any transient failure, also
	// when the request may have reached the server; others only after a 429
	// or a connection that was never made.
	idempotent bool
	once       bool // a single attempt: the caller's own loop repeats it
	s3         bool // errors are S3 XML
}

func (r *request) label() string {
	if r.route != "" {
		return r.route
	}
	return r.method + " " + r.path
}

// call sends req, retrying as shouldRetry says, and decodes a JSON response
// into out (when not nil). A body cut off while it is decoded counts as a
// failed attempt: transient, or, for a request that is not idempotent (the
// server accepted a write that must not be repeated blindly), of class
// Unknown and not repeated.
func (c *Client) call(ctx context.Context, req *request, out any) error {
	return c.do(ctx, req, func(resp *http.Response) error {
		defer resp.Body.Close()
		if out == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			return nil
		}
		body := &io.LimitedReader{R: resp.Body, N: maxJSONBody + 1}
		if err := json.NewDecoder(body).Decode(out); err != nil {
			if body.N <= 0 {
				return errclass.AsPermanent(fmt.Errorf("%s: the answer is larger than %d bytes: %w", req.label(), maxJSONBody, ErrAnswerTooLarge))
			}
			return &DecodeError{Op: req.label(), Err: err, Acted: !req.idempotent}
		}
		return nil
	})
}

// send performs req with retries and returns the accepted response, whose
// body the caller must close.
func (c *Client) send(ctx context.Context, req *request) (*http.Response, error) {
	var out *http.Response
	err := c.do(ctx, req, func(resp *http.Response) error {
		out = resp
		return nil
	})
	return out, err
}

// do performs req, hands every accepted response to consume (which closes
// its body) and repeats the request while the failure of the attempt, or of
// consume, is worth repeating. It is the one retry loop of the client: the
// login inside an attempt is tried once per attempt.
func (c *Client) do(ctx context.Context, req *request, consume func(*http.Response) error) error {
	refreshed := false
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Every attempt has a watchdog: bodies that move no byte for the
		// stall timeout cancel it.
		actx, cancel := context.WithCancel(ctx)
		w := stall.Start(c.cfg.StallTimeout, cancel)
		resp, gen, err := c.attempt(actx, req, w)
		if err == nil {
			resp.Body = w.ReadCloser(resp.Body, func() { w.Stop(); cancel() })
			if err = consume(resp); err == nil {
				return nil
			}
		} else {
			w.Stop()
			cancel()
		}
		if w.Stalled() && ctx.Err() == nil {
			// Not the cancellation's error: it would stop the retries, and
			// the cause may name a presigned URL.
			err = fmt.Errorf("%s: %w (%s)", req.label(), stall.ErrStalled, c.cfg.StallTimeout)
		}
		if !req.noAuth && !refreshed && IsStatus(err, http.StatusUnauthorized) && !isLoginError(err) {
			// The token was revoked or expired early: renew it once and repeat.
			refreshed = true
			c.auth.invalidate(gen)
			attempt--
			continue
		}
		retry, wait := c.shouldRetry(ctx, req, err, attempt)
		if !retry {
			var ra *retryAfterError
			if errors.As(err, &ra) {
				err = ra.APIError
			}
			return err
		}
		c.log.WithFields(logrus.Fields{"route": req.label(), "attempt": attempt + 1, "delay_ms": wait.Milliseconds()}).
			WithError(err).Warn("dracoon request failed, retrying")
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// maxJSONBody bounds a JSON answer: the largest the API sends (a page of
// 500 nodes or of missing keys) is far smaller.
const maxJSONBody = 16 << 20

// ErrAnswerTooLarge reports a JSON answer beyond maxJSONBody.
var ErrAnswerTooLarge = errclass.New(errclass.Permanent, "answer too large")

// ErrForeignURL reports a URL that DRACOON returned for uploading which
// points elsewhere than DRACOON or its S3 storage, or over plain http to
// another machine: following it could hand recordings to a third party.
var ErrForeignURL = errclass.New(errclass.Permanent, "URL outside DRACOON and its S3 storage")

// checkURL checks a URL that DRACOON returned (what names it in errors; the
// URL itself is a secret and is never repeated): https, or http to a
// loopback host, and the host of the base URL or, for S3 (presigned part
// URLs), one of the S3 hosts the system information lists.
func (c *Client) checkURL(ctx context.Context, raw, what string, s3 bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return &DecodeError{Op: what, Err: errors.New("not an absolute URL")}
	}
	host := strings.ToLower(u.Hostname())
	if u.Scheme != "https" && !(u.Scheme == "http" && conf.IsLoopback(host)) {
		return fmt.Errorf("%s uses %s to %s: %w", what, u.Scheme, host, ErrForeignURL)
	}
	if base, err := url.Parse(c.cfg.BaseURL); err == nil && strings.EqualFold(base.Hostname(), host) {
		return nil
	}
	if s3 {
		si, err := c.SystemInfo(ctx)
		if err != nil {
			return err
		}
		for _, h := range si.S3Hosts {
			if strings.EqualFold(hostOf(h), host) {
				return nil
			}
		}
	}
	return fmt.Errorf("%s points to host %s, which is neither DRACOON's nor one of its S3 hosts: %w", what, host, ErrForeignURL)
}

// hostOf returns the host name of an S3 host entry: a host, host:port or URL.
func hostOf(entry string) string {
	if strings.Contains(entry, "://") {
		if u, err := url.Parse(entry); err == nil {
			return u.Hostname()
		}
	}
	if h, _, err := net.SplitHostPort(entry); err == nil {
		return h
	}
	return entry
}

// retryAfterError carries a Retry-After delay with the APIError it came with.
type retryAfterError struct {
	*APIError
	after time.Duration
}

func (e *retryAfterError) Unwrap() error { return e.APIError }

// shouldRetry decides whether err, the result of attempt (0-based), is worth
// repeating and after which delay. Only transient errors are (errclass);
// context errors never are. A request that is not idempotent is repeated
// only when the server cannot have acted on it: a 429, or a connection that
// was refused.
func (c *Client) shouldRetry(ctx context.Context, req *request, err error, attempt int) (bool, time.Duration) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false, 0
	}
	if req.once || attempt >= c.cfg.Retries || errclass.Of(err) != errclass.Transient {
		return false, 0
	}
	wait := c.backoff(attempt)
	var ae *APIError
	isAPI := errors.As(err, &ae)
	if !req.idempotent && !(isAPI && ae.Status == http.StatusTooManyRequests) && !errors.Is(err, syscall.ECONNREFUSED) {
		return false, 0
	}
	if isAPI && ae.Status == http.StatusForbidden {
		return false, 0 // an expired presigned URL: the caller asks for a new one
	}
	var ra *retryAfterError
	if errors.As(err, &ra) && ra.after > 0 {
		wait = min(max(ra.after, wait), c.cfg.MaxBackoff)
	}
	return true, wait
}

// backoff is the exponential delay before retry attempt+1, with full jitter
// over its upper half.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.MinBackoff << min(attempt, 20)
	if d <= 0 || d > c.cfg.MaxBackoff {
		d = c.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// attempt sends req once. It returns the auth generation used, so that a
// 401 invalidates only that token.
func (c *Client) attempt(ctx context.Context, req *request, w *stall.Watchdog) (*http.Response, uint64, error) {
	u := req.rawURL
	if u == "" {
		u = c.cfg.BaseURL + "/api" + req.path
		if len(req.query) > 0 {
			u += "?" + req.query.Encode()
		}
	}
	var (
		body   io.Reader = http.NoBody
		length int64
		ctype  string
	)
	switch {
	case req.payload != nil:
		body, length, ctype = req.payload()
	case req.body != nil:
		raw, err := json.Marshal(req.body)
		if err != nil {
			return nil, 0, errclass.AsPermanent(fmt.Errorf("cannot encode %s: %w", req.label(), err))
		}
		body, length, ctype = bytes.NewReader(raw), int64(len(raw)), "application/json"
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, u, w.Reader(body))
	if err != nil {
		// The URL came from the server or the configuration; it may hold a
		// token, so it is not repeated here.
		return nil, 0, errclass.AsPermanent(fmt.Errorf("cannot build %s: invalid URL", req.label()))
	}
	hreq.ContentLength = length
	if length == 0 {
		hreq.Body = http.NoBody
	} else if br, ok := body.(*bytes.Reader); ok {
		// So that the transport can send it again on a fresh connection,
		// as it does for a plain *bytes.Reader.
		snapshot := *br
		hreq.GetBody = func() (io.ReadCloser, error) {
			r := snapshot
			return io.NopCloser(w.Reader(&r)), nil
		}
	}
	for k, v := range req.header {
		hreq.Header[k] = v
	}
	if ctype != "" {
		hreq.Header.Set("Content-Type", ctype)
	}
	if !req.s3 {
		hreq.Header.Set("Accept", "application/json")
	}
	var gen uint64
	if req.basicAuth {
		hreq.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret.Reveal()))
	}
	if !req.noAuth {
		var tok string
		tok, gen, err = c.auth.token(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		hreq.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, gen, netError(req, err)
	}
	ok := req.ok
	if ok == nil {
		ok = []int{http.StatusOK}
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, gen, nil
		}
	}
	defer resp.Body.Close()
	return nil, gen, readError(req, resp)
}

// checkRedirect follows a redirect only for a GET without credentials
// (download URLs may lead to storage); any other redirect, above all one of
// the token request that would resend the password, is answered with the
// 3xx itself, which the client reports as an error.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	if len(via) >= 5 || first.Method != http.MethodGet || req.Method != http.MethodGet ||
		first.Header.Get("Authorization") != "" {
		return http.ErrUseLastResponse
	}
	return nil
}

// netError strips the URL (which may hold an upload token or a presigned
// signature) from a transport error.
func netError(req *request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	if errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) {
		// A certificate the service does not trust: repeating cannot help.
		return errclass.AsPermanent(fmt.Errorf("cannot send %s: the server's certificate is not trusted (an on-premises CA goes in tls.ca_file): %w", req.label(), err))
	}
	return fmt.Errorf("cannot send %s: %w", req.label(), err)
}

// readError turns a non-accepted response into an *APIError (wrapped in a
// retryAfterError when the server asked to wait).
func readError(req *request, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	ae := &APIError{Status: resp.StatusCode, Code: resp.StatusCode, Op: req.label()}
	switch {
	case req.s3:
		var x struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		if xml.Unmarshal(raw, &x) == nil {
			ae.Message, ae.DebugInfo = x.Code, x.Message
		}
	case req.route == tokenRoute:
		var o oauthErrorResponse
		if json.Unmarshal(raw, &o) == nil {
			ae.Message, ae.DebugInfo = o.Error, o.ErrorDescription
		}
	default:
		var e errorResponse
		if json.Unmarshal(raw, &e) == nil {
			if e.Code != 0 {
				ae.Code = e.Code
			}
			ae.Message, ae.DebugInfo = e.Message, e.DebugInfo
			if e.ErrorCode != nil {
				ae.ErrorCode = *e.ErrorCode
			}
		}
	}
	if ae.Message == "" {
		ae.Message = http.StatusText(resp.StatusCode)
	}
	if after := parseRetryAfter(resp.Header.Get("Retry-After")); after > 0 {
		return &retryAfterError{APIError: ae, after: after}
	}
	return ae
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
