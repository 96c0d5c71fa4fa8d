package emulator

import (
	"errors"
	"fmt"
	"io"
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

// Faults configures random fault injection. The zero value injects nothing.
// Every request (OAuth, API, upload chunks, S3 part PUTs) draws one number
// from a generator seeded with Seed, in arrival order, so a client that sends
// requests one after another sees the same faults on every run.
type Faults struct {
	// Seed seeds the generator; zero means 1.
	Seed int64
	// StatusRates maps an HTTP status (429 or 500..599) to the fraction of
	// requests answered with it.
	StatusRates map[int]float64
	// ResetRate is the fraction of requests whose connection is dropped after
	// reading part of the request body, without any response.
	ResetRate float64
	// RetryAfter is sent with 429 and 503; zero means DefaultRetryAfter.
	RetryAfter time.Duration
	// Latency is added to every request (also when no fault is drawn).
	Latency time.Duration
	// PathPrefixes limits random faults (not Latency) to these URL path
	// prefixes; empty means every path.
	PathPrefixes []string
}

// ParseFaults parses a comma-separated fault spec, for example
// "seed=42,500=0.05,429=0.05,retry-after=1,reset=0.02,latency=5ms,paths=/api/v4/uploads;/emulator-s3/".
// Keys: seed=N; a status code (429 or 5xx)=FRACTION; reset=FRACTION;
// retry-after=SECONDS or a Go duration; latency=DURATION; paths=PREFIX[;PREFIX].
// An empty spec means no faults.
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
		default:
			code, cerr := strconv.Atoi(k)
			if cerr != nil {
				return Faults{}, fmt.Errorf("fault %q: unknown key", k)
			}
			var rate float64
			if rate, err = strconv.ParseFloat(v, 64); err == nil {
				if f.StatusRates == nil {
					f.StatusRates = map[int]float64{}
				}
				f.StatusRates[code] = rate
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
	total := f.ResetRate
	if f.ResetRate < 0 || f.ResetRate > 1 {
		errs = append(errs, fmt.Errorf("faults: reset rate %v is not in [0,1]", f.ResetRate))
	}
	for code, rate := range f.StatusRates {
		if code != http.StatusTooManyRequests && (code < 500 || code > 599) {
			errs = append(errs, fmt.Errorf("faults: status %d is not 429 or 5xx", code))
		}
		if rate < 0 || rate > 1 {
			errs = append(errs, fmt.Errorf("faults: rate %v of status %d is not in [0,1]", rate, code))
		}
		total += rate
	}
	if total > 1 {
		errs = append(errs, fmt.Errorf("faults: rates add up to %v > 1", total))
	}
	if f.Latency < 0 || f.RetryAfter < 0 {
		errs = append(errs, errors.New("faults: latency and retry-after must not be negative"))
	}
	return errors.Join(errs...)
}

func (f Faults) random() bool { return f.ResetRate > 0 || len(f.StatusRates) > 0 }

// FaultRule makes the next Times requests matching Method and PathPrefix
// fail; see Server.InjectFault. Exactly one of Status and Reset should be
// set; Latency alone only delays the requests.
type FaultRule struct {
	// Method matches the request method; empty matches any.
	Method string
	// PathPrefix matches the start of the URL path; empty matches any.
	PathPrefix string
	// Times is how many matching requests are affected; zero means 1.
	Times int
	// Status answers with this status (429 and 5xx get the emulator's error bodies).
	Status int
	// RetryAfter is sent with 429 and 503; zero means DefaultRetryAfter.
	RetryAfter time.Duration
	// Reset drops the connection after reading part of the request body.
	Reset bool
	// Latency delays the request before anything else happens.
	Latency time.Duration
}

// fault is one decided fault.
type fault struct {
	status     int
	reset      bool
	latency    time.Duration
	retryAfter time.Duration
}

func (f fault) name() string {
	if f.reset {
		return "reset"
	}
	if f.status != 0 {
		return "status-" + strconv.Itoa(f.status)
	}
	return "latency"
}

type faultInjector struct {
	cfg   Faults
	codes []int // StatusRates keys, sorted: the draw order

	mu    sync.Mutex
	rng   *rand.Rand
	rules []FaultRule
}

func newFaultInjector(cfg Faults) *faultInjector {
	seed := cfg.Seed
	if seed == 0 {
		seed = 1
	}
	fi := &faultInjector{cfg: cfg, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))}
	for code := range cfg.StatusRates {
		fi.codes = append(fi.codes, code)
	}
	sort.Ints(fi.codes)
	return fi
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
			f := fault{status: rule.Status, reset: rule.Reset, latency: rule.Latency, retryAfter: rule.RetryAfter}
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
	x := fi.rng.Float64()
	if x < fi.cfg.ResetRate {
		f.reset = true
		return f, true
	}
	x -= fi.cfg.ResetRate
	for _, code := range fi.codes {
		if x < fi.cfg.StatusRates[code] {
			f.status = code
			return f, true
		}
		x -= fi.cfg.StatusRates[code]
	}
	return f, f.latency > 0
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
		if f.latency > 0 {
			t := time.NewTimer(f.latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if !f.reset && f.status == 0 {
			next.ServeHTTP(w, r)
			return
		}
		log.WithFields(logrus.Fields{"fault": f.name(), "method": r.Method}).Info("injecting fault")
		if f.reset {
			resetConnection(w, r)
			return
		}
		writeFault(w, r, f)
	})
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
// (errorCode null: the document defines no code for these).
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
