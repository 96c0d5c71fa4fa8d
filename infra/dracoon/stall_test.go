package dracoon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/stall"
)

// stallingProxy relays to target; the first stalls answers to GETs of path
// send their headers and half a body, then nothing for hold.
func stallingProxy(t *testing.T, target, path string, stalls int32, hold time.Duration) (string, *atomic.Int32) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, path) || seen.Add(1) > stalls {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		body := rec.Body.Bytes()
		_, _ = w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &seen
}

// TestClient_stalled_body: an answer whose body stops moving fails the
// attempt after the stall timeout, not after the server gives up, and the
// request is repeated (it is idempotent); when every answer stalls the
// error is a transient stall naming the route.
func TestClient_stalled_body(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	base := e.URL
	tests := []struct {
		name    string
		stalls  int32
		wantErr bool
	}{
		{"once, then answered", 1, false},
		{"every time", 1 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy, seen := stallingProxy(t, base, "/v4/user/account", tt.stalls, 10*time.Second)
			e.URL = proxy
			c := e.svc(func(c *Config) { c.StallTimeout = 200 * time.Millisecond; c.Retries = 2 })
			e.URL = base
			start := time.Now()
			_, err := c.Account(context.Background())
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Account took %s: the stalled body was not cut", d)
			}
			switch {
			case tt.wantErr && (!errors.Is(err, stall.ErrStalled) || !errclass.IsTransient(err) || !strings.Contains(err.Error(), "/v4/user/account")):
				t.Fatalf("error %v (%v), want a transient stall naming the route", err, errclass.Of(err))
			case tt.wantErr && seen.Load() != 3:
				t.Errorf("%d requests, want 3 (1 + 2 retries)", seen.Load())
			case !tt.wantErr && (err != nil || seen.Load() != 2):
				t.Fatalf("Account: %v after %d requests, want success on the second", err, seen.Load())
			}
		})
	}
}
