package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/recording-storage/recording-storage/infra/logging"
)

// errStarting is the error reported until the first round of checks completes.
const errStarting = "starting"

// fieldCheck is the log field naming a health check.
const fieldCheck = "check"

// healthStatus is the outcome of one round of checks.
type healthStatus struct {
	failing     string // name of the first failing check; empty when all passed
	liveFailing string // name of the first failing Live check; empty when all passed
}

// healthResponse is the original service's JSON body.
type healthResponse struct {
	Status string `json:"status"`          // "success" or "error"
	Error  string `json:"error,omitempty"` // the failing check's name, or "starting"
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	resp, code := healthResponse{Status: "success"}, http.StatusOK
	switch st := s.health.Load(); {
	case st == nil:
		resp, code = healthResponse{Status: "error", Error: errStarting}, http.StatusInternalServerError
	case st.failing != "":
		resp, code = healthResponse{Status: "error", Error: st.failing}, http.StatusInternalServerError
	}
	body, _ := json.Marshal(resp) // cannot fail: two strings
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// serveLive answers the liveness probe (GET /livez): 503 while a Live check
// failed its last run, else 200, also while the first round is running.
func (s *Server) serveLive(w http.ResponseWriter, _ *http.Request) {
	if st := s.health.Load(); st != nil && st.liveFailing != "" {
		probeAnswer(w, http.StatusServiceUnavailable, "not live: "+st.liveFailing)
		return
	}
	probeAnswer(w, http.StatusOK, "ok")
}

// serveReady answers the readiness probe (GET /readyz): 200 once the last
// round of checks passed, 503 naming the first failing check (or
// "starting") otherwise.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	switch st := s.health.Load(); {
	case st == nil:
		probeAnswer(w, http.StatusServiceUnavailable, "not ready: "+errStarting)
	case st.failing != "":
		probeAnswer(w, http.StatusServiceUnavailable, "not ready: "+st.failing)
	default:
		probeAnswer(w, http.StatusOK, "ok")
	}
}

// probeAnswer writes a probe's plain text answer.
func probeAnswer(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text + "\n"))
}

// checkLoop runs a round of checks at once and then every CheckInterval
// until ctx is done. Rounds never overlap.
func (s *Server) checkLoop(ctx context.Context) {
	s.runChecks(ctx)
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.runChecks(ctx)
		}
	}
}

// runChecks runs every check concurrently, then records the results, logs
// the checks whose state changed and publishes the new status. A round cut
// short by ctx is discarded.
func (s *Server) runChecks(ctx context.Context) {
	errs := make([]error, len(s.cfg.Checks))
	var wg sync.WaitGroup
	for i, c := range s.cfg.Checks {
		wg.Go(func() { errs[i] = s.runCheck(ctx, i, c) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	var st healthStatus
	for i, c := range s.cfg.Checks {
		err := errs[i]
		failing := err != nil
		if failing && st.failing == "" {
			st.failing = c.Name
		}
		if failing && c.Live && st.liveFailing == "" {
			st.liveFailing = c.Name
		}
		up := 1.0
		if failing {
			up = 0
		}
		s.up.WithLabelValues(c.Name).Set(up)
		if failing == s.failing[i] {
			continue
		}
		s.failing[i] = failing
		entry := logging.WithCode(s.log, logging.CodeHealthcheck).WithField(fieldCheck, c.Name)
		if failing {
			entry.WithField("error", redact(err.Error())).Error("health check failing")
		} else {
			entry.Info("health check recovered")
		}
	}
	s.health.Store(&st)
}

// runCheck runs c, the i-th check, once with CheckTimeout. A check that
// panics or outlives its timeout fails. One that ignores its context is left
// running, and fails every round until it returns, without being called again.
func (s *Server) runCheck(ctx context.Context, i int, c Check) error {
	if !s.busy[i].CompareAndSwap(false, true) {
		return errors.New("check has not returned since an earlier run")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := call(ctx, c)
		s.busy[i].Store(false) // before the result: the next round may start at once
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("check did not finish within %s: %w", s.cfg.CheckTimeout, ctx.Err())
	}
}

// call calls c.Func, turning a panic into an error.
func call(ctx context.Context, c Check) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	return c.Func(ctx)
}

// urlPattern matches URLs, with optional user information and query.
var urlPattern = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s/?#@"']*@)?([^\s?#"']*)(\?[^\s#"']*)?`)

// redact removes user information and query strings, which may carry
// passwords, tokens or signatures, from the URLs in s.
func redact(s string) string {
	return urlPattern.ReplaceAllStringFunc(s, func(u string) string {
		m := urlPattern.FindStringSubmatch(u)
		out := m[1]
		if m[2] != "" {
			out += "REDACTED@"
		}
		out += m[3]
		if m[4] != "" {
			out += "?REDACTED"
		}
		return out
	})
}
