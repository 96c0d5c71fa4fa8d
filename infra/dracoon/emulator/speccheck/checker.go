package speccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// MaxBodyChecked is the largest request or response body that is validated;
// larger ones (upload chunks, downloads) have their headers, parameters and
// status checked but are streamed through without buffering.
const MaxBodyChecked = 4 << 20

// Skip names requests the document does not describe and that are therefore
// passed through unchecked, with the reason.
type Skip struct {
	// Method matches the request method; empty matches any.
	Method string
	// PathPrefix matches the start of the URL path.
	PathPrefix string
	// Reason says why the route is not checked.
	Reason string
}

// DefaultSkips are the emulator's routes outside the document: OAuth (the
// document's server is /api) and the fake presigned S3 endpoint.
func DefaultSkips() []Skip {
	return []Skip{
		{PathPrefix: "/oauth/", Reason: "OAuth endpoints are outside the /api document"},
		{Method: http.MethodPut, PathPrefix: emulator.S3PathPrefix, Reason: "presigned S3 part upload, not a DRACOON route"},
		{Method: http.MethodGet, PathPrefix: emulator.RequestsPath, Reason: "the emulator's request counter, not a DRACOON route"},
	}
}

// Violation is one request or response that does not conform.
type Violation struct {
	// Method and Path of the request (Path without the query).
	Method, Path string
	// Route is the document's path template, when the route was found.
	Route string
	// Status is the response status (0 for request violations).
	Status int
	// Phase is "route", "request" or "response".
	Phase string
	// Err is the validator's message.
	Err string
}

// String formats the violation for test output.
func (v Violation) String() string {
	return fmt.Sprintf("%s %s %s (route %q, status %d): %s", v.Phase, v.Method, v.Path, v.Route, v.Status, v.Err)
}

// TB is the part of testing.TB that Verify uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Checker validates traffic passing through its Middleware against a Spec.
// It is safe for concurrent use.
type Checker struct {
	spec  *Spec
	skips []Skip

	mu         sync.Mutex
	violations []Violation
	checked    int
	skipped    map[string]int // reason -> count
}

// NewChecker returns a Checker; nil skips means DefaultSkips.
func NewChecker(spec *Spec, skips []Skip) *Checker {
	if skips == nil {
		skips = DefaultSkips()
	}
	return &Checker{spec: spec, skips: skips, skipped: map[string]int{}}
}

// Violations returns the violations recorded so far.
func (c *Checker) Violations() []Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Violation(nil), c.violations...)
}

// Checked is the number of exchanges validated so far.
func (c *Checker) Checked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked
}

// Skipped returns how many exchanges were skipped, by reason.
func (c *Checker) Skipped() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.skipped == nil {
		return map[string]int{}
	}
	return maps.Clone(c.skipped)
}

// Verify reports every violation as a test error.
func (c *Checker) Verify(t TB) {
	t.Helper()
	for _, v := range c.Violations() {
		t.Errorf("OpenAPI violation: %s", v)
	}
}

func (c *Checker) add(v Violation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.violations = append(c.violations, v)
}

func (c *Checker) skip(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skipped[reason]++
}

func (c *Checker) skipFor(r *http.Request) (string, bool) {
	for _, s := range c.skips {
		if (s.Method == "" || s.Method == r.Method) && strings.HasPrefix(r.URL.Path, s.PathPrefix) {
			return s.Reason, true
		}
	}
	return "", false
}

// Middleware validates each request before next sees it and each response
// after next wrote it. Violations are recorded, never answered: the traffic
// itself is passed through unchanged. Responses carrying
// emulator.FaultHeader (injected faults) and hijacked connections are
// skipped and counted.
func (c *Checker) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason, ok := c.skipFor(r); ok {
			c.skip(reason)
			next.ServeHTTP(w, r)
			return
		}
		route, params, err := c.spec.router.FindRoute(r)
		if err != nil {
			c.add(Violation{Method: r.Method, Path: r.URL.Path, Phase: "route", Err: "not in the document: " + err.Error()})
			next.ServeHTTP(w, r)
			return
		}
		opts := &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			SkipSettingDefaults: true,
			MultiError:          true,
		}
		vr := r.Clone(r.Context())
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			vr.Body = http.NoBody
		} else if r.ContentLength > 0 && r.ContentLength <= MaxBodyChecked {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				// The client went away mid-request (a cancelled transfer):
				// nothing was exchanged to check, and nobody awaits an answer.
				c.skip("request body cut off by the client")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			vr.Body = io.NopCloser(bytes.NewReader(body))
		} else {
			opts.ExcludeRequestBody = true
			vr.Body = http.NoBody
		}
		in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			c.add(Violation{Method: r.Method, Path: r.URL.Path, Route: route.Path, Phase: "request", Err: err.Error()})
		}

		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		switch {
		case rec.hijacked:
			c.skip("connection hijacked (injected reset)")
			return
		case rec.Header().Get(emulator.FaultHeader) != "":
			c.skip("injected fault response")
			return
		case rec.status == 0 && rec.body.Len() == 0 && r.Context().Err() != nil:
			c.skip("client went away before the answer")
			return
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		respOpts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: rec.overflow}
		resp := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status,
			Header: rec.Header(), Options: respOpts}
		resp.SetBodyBytes(rec.body.Bytes())
		if err := openapi3filter.ValidateResponse(r.Context(), resp); err != nil {
			c.add(Violation{Method: r.Method, Path: r.URL.Path, Route: route.Path, Status: status, Phase: "response", Err: err.Error()})
		}
		c.mu.Lock()
		c.checked++
		c.mu.Unlock()
	})
}

// recorder passes the response through and keeps its status and up to
// MaxBodyChecked bytes of body.
type recorder struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	overflow bool
	hijacked bool
}

// WriteHeader records the first status.
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write passes b on and keeps a copy while it fits MaxBodyChecked.
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if !r.overflow {
		if r.body.Len()+len(b) > MaxBodyChecked {
			r.overflow = true
			r.body.Reset()
		} else {
			r.body.Write(b)
		}
	}
	return r.ResponseWriter.Write(b)
}

// Flush passes flushes through.
func (r *recorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Hijack passes hijacking through and marks the exchange as not checkable.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.hijacked = true
	}
	return conn, rw, err
}

// Unwrap gives http.ResponseController access to the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
