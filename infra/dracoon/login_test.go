package dracoon

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// countingTransport counts the requests to the token endpoint.
type countingTransport struct {
	next   http.RoundTripper
	logins atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/oauth/token") {
		c.logins.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestClient_login_backoff: a refused login is remembered; while its backoff
// runs every request fails at once with it, without a login attempt; then
// one attempt is made, and the backoff doubles while it keeps failing.
func TestClient_login_backoff(t *testing.T) {
	e := newEnv(t, false, nil)
	tests := []struct {
		name      string
		password  string
		backoff   time.Duration
		calls     int           // requests made at once
		wait      time.Duration // before the last request
		wantLogin int32
		wantErr   bool
	}{
		{name: "wrong_password_one_attempt_per_backoff", password: "wrong", backoff: time.Hour, calls: 5, wantLogin: 1, wantErr: true},
		{name: "wrong_password_tried_again_after_backoff", password: "wrong", backoff: 50 * time.Millisecond, calls: 3,
			wait: 120 * time.Millisecond, wantLogin: 2, wantErr: true},
		{name: "right_password_logs_in_once", password: "svc-pw", backoff: time.Hour, calls: 5, wantLogin: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := &countingTransport{next: newTransport(10*time.Second, nil)}
			c := e.client("svc", tt.password, encPassword, func(c *Config) {
				c.HTTPClient = &http.Client{Transport: ct}
				c.LoginBackoff = tt.backoff
			})
			ctx := context.Background()
			var err error
			for i := range tt.calls {
				if i == tt.calls-1 && tt.wait > 0 {
					time.Sleep(tt.wait)
				}
				_, err = c.Account(ctx)
				if !tt.wantErr && err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if tt.wantErr && !errclass.IsPermanent(err) {
					t.Fatalf("call %d: got %v, want a permanent error", i, err)
				}
			}
			if got := ct.logins.Load(); got != tt.wantLogin {
				t.Errorf("token requests: got %d, want %d", got, tt.wantLogin)
			}
			if tt.wantErr && tt.wait == 0 {
				var lr *LoginRefusedError
				if !errors.As(err, &lr) {
					t.Errorf("got %v, want a LoginRefusedError", err)
				}
				if strings.Contains(err.Error(), tt.password) {
					t.Errorf("error %q shows the password", err)
				}
			}
		})
	}
}

// TestClient_login_backoff_doubles: every further refusal doubles the wait,
// up to MaxLoginBackoff; a login that succeeds resets it.
func TestClient_login_backoff_doubles(t *testing.T) {
	e := newEnv(t, false, nil)
	c := e.client("svc", "wrong", encPassword, func(c *Config) {
		c.LoginBackoff, c.MaxLoginBackoff = time.Minute, 3*time.Minute
	})
	var waits []time.Duration
	for range 4 {
		start := time.Now()
		if _, err := c.Account(context.Background()); err == nil {
			t.Fatal("login with a wrong password succeeded")
		}
		c.auth.sem <- struct{}{}
		waits = append(waits, c.auth.nextLogin.Sub(start).Round(time.Minute))
		c.auth.nextLogin = time.Time{} // let the next call try
		<-c.auth.sem
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 3 * time.Minute}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits after refusals: got %v, want %v", waits, want)
		}
	}
	c.cfg.Password = "svc-pw"
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.auth.refused != nil || c.auth.backoff != 0 {
		t.Errorf("after a successful login: refused %v, backoff %s; want both reset", c.auth.refused, c.auth.backoff)
	}
}
