package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// FaultHeader marks responses produced by fault injection (value: the fault,
// e.g. "status-429"), so that spec checks can tell them from real answers.
const FaultHeader = "X-Emulator-Fault"

// DefaultRetryAfter is the Retry-After of injected 429 and 503 answers.
const DefaultRetryAfter = time.Second

// resetReadLimit is how much of a request body is read before a reset.
const resetReadLimit = 64 << 10

// DefaultAfterDelay is how long an AfterDelay fault holds a response back
// when no delay is given.
const DefaultAfterDelay = 30 * time.Second

// DefaultAfterStatus is the status of an AfterStatus fault when none is given.
const DefaultAfterStatus = http.StatusBadGateway

// AfterFault is a fault that lets a request take full effect (the handler
// runs to completion and its state changes are kept) and then loses or
// spoils the answer: the server acted, the client does not learn it.
type AfterFault int

// After-handler fault kinds.
const (
	// AfterNone injects nothing after the handler.
	AfterNone AfterFault = iota
	// AfterReset drops the connection without a response (TCP reset).
	AfterReset
	// AfterDelay sends the real response only after a delay; a client that
	// gives up earlier never sees it.
	AfterDelay
	// AfterStatus replaces the real response by an error status (429 or 5xx)
	// in the route's error shape.
	AfterStatus
	// AfterCut sends the real status, headers (with the whole body's
	// Content-Length) and the first half of the body, then closes the
	// connection: the answer's body is cut off midway. A response without
	// a body is sent whole (there is nothing to cut).
	AfterCut
)

// String names the kind as fault names and specs do.
func (a AfterFault) String() string {
	switch a {
	case AfterNone:
		return "none"
	case AfterReset:
		return "after-reset"
	case AfterDelay:
		return "after-delay"
	case AfterStatus:
		return "after-status"
	case AfterCut:
		return "cut"
	}
	return "after-" + strconv.Itoa(int(a))
}

// Faults configures random fault injection. The zero value injects nothing.
// Every request (OAuth, API, upload chunks, S3 part PUTs) on an eligible path
// draws one number from a generator seeded with Seed, in arrival order, so a
// client that sends requests one after another sees the same faults on every
// run. The number picks at most one fault from consecutive intervals, in this
// order: ResetRate, StatusRates (by ascending status), AfterResetRate,
// AfterDelayRate, AfterStatusRates (by ascending status), CutRate.
type Faults struct {
	// Seed seeds the generator; zero means 1.
	Seed int64
	// StatusRates maps an HTTP status (429 or 500..599) to the fraction of
	// requests answered with it instead of being handled.
	StatusRates map[int]float64
	// ResetRate is the fraction of requests whose connection is dropped after
	// reading part of the request body, without any response and without
	// effect.
	ResetRate float64
	// RetryAfter is sent with 429 and 503; zero means DefaultRetryAfter.
	RetryAfter time.Duration
	// Latency is added to every request (also when no fault is drawn).
	Latency time.Duration
	// PathPrefixes limits random faults (not Latency) to these URL path
	// prefixes; empty means every path.
	PathPrefixes []string
	// AfterResetRate is the fraction of requests that take full effect and
	// then lose their connection without a response (see AfterReset).
	AfterResetRate float64
	// AfterDelayRate is the fraction of requests that take full effect and
	// whose response is held back for AfterDelay (see AfterDelay).
	AfterDelayRate float64
	// AfterDelay is how long AfterDelayRate holds responses back; zero means
	// DefaultAfterDelay.
	AfterDelay time.Duration
	// AfterStatusRates maps an HTTP status (429 or 500..599) to the fraction
	// of requests that take full effect and are then answered with that
	// status (see AfterStatus).
	AfterStatusRates map[int]float64
	// CutRate is the fraction of requests that take full effect and whose
	// answer's body is cut off midway (see AfterCut).
	CutRate float64
}

// ParseFaults parses a comma-separated fault spec, for example
// "seed=42,500=0.05,429=0.05,retry-after=1,reset=0.02,latency=5ms,paths=/api/v4/uploads;/emulator-s3/".
// Keys: seed=N; a status code (429 or 5xx)=FRACTION; reset=FRACTION;
// retry-after=SECONDS or a Go duration; latency=DURATION; paths=PREFIX[;PREFIX].
// Faults after the handler (the request takes effect, the answer is lost):
// after-reset=FRACTION; after-delay=FRACTION with after-delay-for=DURATION
// (default DefaultAfterDelay); after-STATUS=FRACTION for 429 or 5xx, e.g.
// after-502=0.01; cut=FRACTION (the answer's body cut off midway). An empty
// spec means no faults.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	if strings.TrimSpace(spec) == "" {
		return f, nil
	}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return Faults{}, fmt.Errorf("fault %q: want key=value", kv)
		}
		var err error
		switch k {
		case "seed":
			f.Seed, err = strconv.ParseInt(v, 10, 64)
		case "reset":
			f.ResetRate, err = strconv.ParseFloat(v, 64)
		case "retry-after":
			f.RetryAfter, err = parseSecondsOrDuration(v)
		case "latency":
			f.Latency, err = time.ParseDuration(v)
		case "paths":
			f.PathPrefixes = strings.Split(v, ";")
		case "after-reset":
			f.AfterResetRate, err = strconv.ParseFloat(v, 64)
		case "after-delay":
			f.AfterDelayRate, err = strconv.ParseFloat(v, 64)
		case "after-delay-for":
			f.AfterDelay, err = time.ParseDuration(v)
		case "cut":
			f.CutRate, err = strconv.ParseFloat(v, 64)
		default:
			rates := &f.StatusRates
			codeKey := k
			if after, ok := strings.CutPrefix(k, "after-"); ok {
				rates, codeKey = &f.AfterStatusRates, after
			}
			code, cerr := strconv.Atoi(codeKey)
			if cerr != nil {
				return Faults{}, fmt.Errorf("fault %q: unknown key", k)
			}
			var rate float64
			if rate, err = strconv.ParseFloat(v, 64); err == nil {
				if *rates == nil {
					*rates = map[int]float64{}
				}
				(*rates)[code] = rate
			}
		}
		if err != nil {
			return Faults{}, fmt.Errorf("fault %q: %w", kv, err)
		}
	}
	if err := f.Validate(); err != nil {
		return Faults{}, err
	}
	return f, nil
}

func parseSecondsOrDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

// Validate reports every problem of the fault configuration.
func (f Faults) Validate() error {
	var errs []error
	total := 0.0
	checkRate := func(what string, rate float64) {
		if rate < 0 || rate > 1 {
			errs = append(errs, fmt.Errorf("faults: %s rate %v is not in [0,1]", what, rate))
		}
		total += rate
	}
	checkStatuses := func(prefix string, rates map[int]float64) {
		for _, code := range sortedCodes(rates) {
			if !faultStatusOK(code) {
				errs = append(errs, fmt.Errorf("faults: %sstatus %d is not 429 or 5xx", prefix, code))
			}
			checkRate(fmt.Sprintf("%sstatus %d", prefix, code), rates[code])
		}
	}
	checkRate("reset", f.ResetRate)
	checkStatuses("", f.StatusRates)
	checkRate("after-reset", f.AfterResetRate)
	checkRate("after-delay", f.AfterDelayRate)
	checkStatuses("after-", f.AfterStatusRates)
	checkRate("cut", f.CutRate)
	if total > 1 {
		errs = append(errs, fmt.Errorf("faults: rates add up to %v > 1", total))
	}
	if f.Latency < 0 || f.RetryAfter < 0 || f.AfterDelay < 0 {
		errs = append(errs, errors.New("faults: latency, retry-after and after-delay-for must not be negative"))
	}
	return errors.Join(errs...)
}

func faultStatusOK(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code <= 599)
}

// sortedCodes returns the keys of rates in ascending order: the draw order.
func sortedCodes(rates map[int]float64) []int {
	codes := make([]int, 0, len(rates))
	for code := range rates {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	return codes
}

func (f Faults) random() bool {
	return f.ResetRate > 0 || len(f.StatusRates) > 0 || f.AfterResetRate > 0 || f.AfterDelayRate > 0 ||
		len(f.AfterStatusRates) > 0 || f.CutRate > 0
}

// FaultRule makes the next Times requests matching Method and PathPrefix
// fail; see Server.InjectFault. Set Status or Reset to fail a request before
// it has any effect, or After to spoil its answer once it took effect;
// Latency alone only delays the requests.
type FaultRule struct {
	// Method matches the request method; empty matches any.
	Method string
	// PathPrefix matches the start of the URL path; empty matches any.
	PathPrefix string
	// Times is how many matching requests are affected; zero means 1.
	Times int
	// Status answers with this status instead of handling the request (429
	// and 5xx get the emulator's error bodies). With After set to
	// AfterStatus it is instead the status that replaces the handler's
	// answer; zero then means DefaultAfterStatus.
	Status int
	// RetryAfter is sent with 429 and 503; zero means DefaultRetryAfter.
	RetryAfter time.Duration
	// Reset drops the connection after reading part of the request body,
	// before the request has any effect.
	Reset bool
	// Latency delays the request before anything else happens.
	Latency time.Duration
	// After, if not AfterNone, lets the request take full effect and then
	// loses or spoils the answer as the kind says; Reset is then ignored.
	After AfterFault
	// Delay is how long AfterDelay holds the response back; zero means
	// DefaultAfterDelay.
	Delay time.Duration
}

// fault is one decided fault.
type fault struct {
	status     int
	reset      bool
	latency    time.Duration
	retryAfter time.Duration
	after      AfterFault
	afterDelay time.Duration // AfterDelay
}

func (f fault) name() string {
	switch {
	case f.after == AfterStatus:
		return "after-status-" + strconv.Itoa(f.status)
	case f.after != AfterNone:
		return f.after.String()
	case f.reset:
		return "reset"
	case f.status != 0:
		return "status-" + strconv.Itoa(f.status)
	}
	return "latency"
}

// active reports whether f does more than delay the request.
func (f fault) active() bool { return f.reset || f.status != 0 || f.after != AfterNone }

type faultInjector struct {
	cfg        Faults
	codes      []int // StatusRates keys, sorted: the draw order
	afterCodes []int // AfterStatusRates keys, sorted: the draw order

	mu       sync.Mutex
	rng      *rand.Rand
	rules    []FaultRule
	injected map[string]int64 // by fault name (fault.name), what was injected
}

// count records one injected fault of kind name.
func (fi *faultInjector) count(name string) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	if fi.injected == nil {
		fi.injected = map[string]int64{}
	}
	fi.injected[name]++
}

// counts returns a copy of the injected faults by kind.
func (fi *faultInjector) counts() map[string]int64 {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	if fi.injected == nil {
		return map[string]int64{}
	}
	return maps.Clone(fi.injected)
}

func newFaultInjector(cfg Faults) *faultInjector {
	seed := cfg.Seed
	if seed == 0 {
		seed = 1
	}
	return &faultInjector{cfg: cfg, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		codes: sortedCodes(cfg.StatusRates), afterCodes: sortedCodes(cfg.AfterStatusRates)}
}

func (fi *faultInjector) inject(rule FaultRule) {
	if rule.Times <= 0 {
		rule.Times = 1
	}
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.rules = append(fi.rules, rule)
}

// decide picks the fault for r, if any: injected rules first, then the
// random configuration.
func (fi *faultInjector) decide(r *http.Request) (fault, bool) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	for i := range fi.rules {
		rule := &fi.rules[i]
		if rule.Times > 0 && (rule.Method == "" || rule.Method == r.Method) && strings.HasPrefix(r.URL.Path, rule.PathPrefix) {
			rule.Times--
			f := ruleFault(*rule)
			if rule.Times == 0 {
				// Removing the rule shifts the next one into rule's slot, so f is taken first.
				fi.rules = append(fi.rules[:i], fi.rules[i+1:]...)
			}
			return f, true
		}
	}
	f := fault{latency: fi.cfg.Latency, retryAfter: fi.cfg.RetryAfter}
	if !fi.cfg.random() || !fi.pathEligible(r.URL.Path) {
		return f, f.latency > 0
	}
	// One draw per request; the intervals follow the order documented on Faults.
	x := fi.rng.Float64()
	take := func(rate float64) bool {
		if x < rate {
			return true
		}
		x -= rate
		return false
	}
	if take(fi.cfg.ResetRate) {
		f.reset = true
		return f, true
	}
	for _, code := range fi.codes {
		if take(fi.cfg.StatusRates[code]) {
			f.status = code
			return f, true
		}
	}
	switch {
	case take(fi.cfg.AfterResetRate):
		f.after = AfterReset
		return f, true
	case take(fi.cfg.AfterDelayRate):
		f.after, f.afterDelay = AfterDelay, fi.cfg.AfterDelay
		if f.afterDelay <= 0 {
			f.afterDelay = DefaultAfterDelay
		}
		return f, true
	}
	for _, code := range fi.afterCodes {
		if take(fi.cfg.AfterStatusRates[code]) {
			f.after, f.status = AfterStatus, code
			return f, true
		}
	}
	if take(fi.cfg.CutRate) {
		f.after = AfterCut
		return f, true
	}
	return f, f.latency > 0
}

// ruleFault is the fault an injected rule describes.
func ruleFault(rule FaultRule) fault {
	f := fault{status: rule.Status, reset: rule.Reset, latency: rule.Latency, retryAfter: rule.RetryAfter}
	switch rule.After {
	case AfterNone:
	case AfterReset:
		f.after, f.status, f.reset = AfterReset, 0, false
	case AfterDelay:
		f.after, f.status, f.reset, f.afterDelay = AfterDelay, 0, false, rule.Delay
		if f.afterDelay <= 0 {
			f.afterDelay = DefaultAfterDelay
		}
	case AfterStatus:
		f.after, f.reset = AfterStatus, false
		if f.status == 0 {
			f.status = DefaultAfterStatus
		}
	case AfterCut:
		f.after, f.status, f.reset = AfterCut, 0, false
	}
	return f
}

func (fi *faultInjector) pathEligible(p string) bool {
	if len(fi.cfg.PathPrefixes) == 0 {
		return true
	}
	for _, prefix := range fi.cfg.PathPrefixes {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func (fi *faultInjector) middleware(log logrus.FieldLogger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := fi.decide(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if f.latency > 0 && !sleepCtx(r.Context(), f.latency) {
			return
		}
		if !f.active() {
			next.ServeHTTP(w, r)
			return
		}
		injected := func() {
			fi.count(f.name())
			log.WithFields(logrus.Fields{"fault": f.name(), "method": r.Method}).Info("injecting fault")
		}
		if f.after != AfterCut {
			// A cut is counted once there is a body to cut (serveThenSpoil).
			injected()
		}
		switch {
		case f.after != AfterNone:
			serveThenSpoil(w, r, f, next, injected)
		case f.reset:
			resetConnection(w, r)
		default:
			writeFault(w, r, f)
		}
	})
}

// sleepCtx waits for d; false means ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxDrain bounds how much of an unread request body is read and thrown
// away so that the client gets to read the answer.
const maxDrain = 128 << 20

// drainBody reads and discards up to maxDrain bytes of what is left of the
// request body; false means more remained.
func drainBody(r *http.Request) bool {
	if r.Body == nil {
		return true
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain+1))
	return n <= maxDrain
}

// serveThenSpoil runs next to completion against a buffered response, reads
// the rest of the request body, and then loses or spoils the response as
// f.after says. A cut calls cut only when the response has a body to cut.
func serveThenSpoil(w http.ResponseWriter, r *http.Request, f fault, next http.Handler, cut func()) {
	buf := &bufferedResponse{header: http.Header{}, keepBody: f.after == AfterDelay || f.after == AfterCut}
	next.ServeHTTP(buf, r)
	drained := drainBody(r)
	switch f.after {
	case AfterReset:
		resetConnection(w, r)
		return
	case AfterCut:
		if buf.body.Len() < 2 {
			buf.writeTo(w, drained) // nothing to cut: the real answer
			return
		}
		cut()
		cutBody(w, buf)
		return
	case AfterStatus:
		if !drained {
			w.Header().Set("Connection", "close")
		}
		writeFault(w, r, f)
		return
	}
	// AfterDelay: the real answer, late. The fault header is set first, so
	// that a response never sent is not mistaken for a real empty answer.
	w.Header().Set(FaultHeader, f.name())
	if !sleepCtx(r.Context(), f.afterDelay) {
		return
	}
	buf.writeTo(w, drained)
}

// writeTo sends the held-back response to w; drained false (the request
// body was not read to its end) closes the connection after it.
func (b *bufferedResponse) writeTo(w http.ResponseWriter, drained bool) {
	for k, v := range b.header {
		if k != FaultHeader {
			w.Header()[k] = v
		}
	}
	if !drained {
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(b.statusOrOK())
	_, _ = w.Write(b.body.Bytes())
}

// cutBody sends buf's status and headers, with the Content-Length of its
// whole body, and the first half of the body, then closes the connection
// (an orderly close, so that what was sent arrives): the client reads a
// body that ends early. The fault header is sent too, so that spec checks
// skip the exchange.
func cutBody(w http.ResponseWriter, buf *bufferedResponse) {
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	w.Header().Set(FaultHeader, AfterCut.String())
	w.Header().Set("Content-Length", strconv.Itoa(buf.body.Len()))
	w.WriteHeader(buf.statusOrOK())
	_, _ = w.Write(buf.body.Bytes()[:buf.body.Len()/2])
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// bufferedResponse is the ResponseWriter of a handler whose answer an
// after-handler fault holds back: it keeps header and status, and the body
// only when keepBody is set.
type bufferedResponse struct {
	header   http.Header
	status   int
	keepBody bool
	body     bytes.Buffer
}

// Header returns the held-back header.
func (b *bufferedResponse) Header() http.Header { return b.header }

// WriteHeader records the first status.
func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

// Write keeps p when the body is kept, else discards it.
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if !b.keepBody {
		return len(p), nil
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) statusOrOK() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// resetConnection reads part of the request body, then closes the connection
// without a response (with SO_LINGER 0, so the peer sees a TCP reset).
func resetConnection(w http.ResponseWriter, r *http.Request) {
	_, _ = io.CopyN(io.Discard, r.Body, resetReadLimit)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// writeFault answers with an injected status in the shape of the route: OAuth
// errors on /oauth, S3 XML on the fake S3 endpoint (S3 throttles with 503
// SlowDown, so 429 becomes 503 there), the API error shape elsewhere
// (without errorCode: the document defines no code for these).
func writeFault(w http.ResponseWriter, r *http.Request, f fault) {
	w.Header().Set(FaultHeader, f.name())
	status := f.status
	retry := f.retryAfter
	if retry <= 0 {
		retry = DefaultRetryAfter
	}
	switch {
	case strings.HasPrefix(r.URL.Path, S3PathPrefix):
		if status == http.StatusTooManyRequests {
			status = http.StatusServiceUnavailable
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
			writeS3Error(w, status, "SlowDown", "Please reduce your request rate. (injected fault)")
			return
		}
		writeS3Error(w, status, "InternalError", "We encountered an internal error. Please try again. (injected fault)")
		return
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	}
	if strings.HasPrefix(r.URL.Path, "/oauth/") {
		code := "server_error"
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			code = "temporarily_unavailable"
		}
		writeJSON(w, status, map[string]string{"error": code, "error_description": "injected fault"})
		return
	}
	writeAPIError(w, apiErrNull(status, "injected fault"))
}
