package dracoon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// maxRefreshMargin is how long before its expiry an access token is renewed
// at most; shorter-lived tokens are renewed after nine tenths of their life.
const maxRefreshMargin = time.Minute

// auth holds the one OAuth token of a Client. Renewal is serialized by sem
// (a one-slot semaphore, so that waiting honours the context); mu guards the
// fields.
type auth struct {
	sem chan struct{}

	mu        sync.Mutex
	access    string
	refresh   string
	refreshAt time.Time // renew the access token from then on
	gen       uint64    // incremented with every new access token

	// The last refused login, guarded by sem: until nextLogin every token
	// request fails with refused without asking the server.
	refused   error
	nextLogin time.Time
	backoff   time.Duration // the wait after the next refusal
}

// valid returns the access token if it needs no renewal. Call with mu held.
func (a *auth) validLocked(now time.Time) bool {
	return a.access != "" && now.Before(a.refreshAt)
}

// token returns a valid access token and its generation, logging in or
// refreshing first when needed. Concurrent callers share one renewal.
func (a *auth) token(ctx context.Context, c *Client) (string, uint64, error) {
	a.mu.Lock()
	if a.validLocked(time.Now()) {
		defer a.mu.Unlock()
		return a.access, a.gen, nil
	}
	a.mu.Unlock()

	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
	defer func() { <-a.sem }()

	a.mu.Lock()
	if a.validLocked(time.Now()) {
		defer a.mu.Unlock()
		return a.access, a.gen, nil
	}
	refresh := a.refresh
	a.mu.Unlock()

	start := time.Now()
	tr, err := c.obtainToken(ctx, refresh)
	if err != nil {
		return "", 0, err
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	margin := min(life/10, maxRefreshMargin)

	a.mu.Lock()
	defer a.mu.Unlock()
	a.access = tr.AccessToken
	if tr.RefreshToken != "" {
		a.refresh = tr.RefreshToken
	}
	a.refreshAt = start.Add(life - margin)
	a.gen++
	return a.access, a.gen, nil
}

// invalidate forgets the access token of generation gen (after a 401), so
// that the next request renews it. The refresh token is kept.
func (a *auth) invalidate(gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen == gen {
		a.access = ""
	}
}

// obtainToken renews the token with the refresh_token grant when a refresh
// token is known, falling back to the password grant when the server refuses
// the refresh token. Each grant is sent once: the request that needs the
// token is the one retry loop.
func (c *Client) obtainToken(ctx context.Context, refresh string) (*tokenResponse, error) {
	if refresh != "" {
		tr, err := c.tokenGrant(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if err == nil {
			return tr, nil
		}
		if !errclass.IsPermanent(err) {
			return nil, err // the server was not reached or failed: try again later, not with the password
		}
		c.log.WithError(err).Info("dracoon refresh grant refused, logging in again")
	}
	return c.login(ctx)
}

// login sends the password grant, at most once per login backoff while the
// server refuses it (see Config.LoginBackoff). Call with auth.sem held.
func (c *Client) login(ctx context.Context) (*tokenResponse, error) {
	a := &c.auth
	now := time.Now()
	if a.refused != nil && now.Before(a.nextLogin) {
		return nil, &LoginRefusedError{Err: a.refused, Retry: a.nextLogin}
	}
	tr, err := c.tokenGrant(ctx, url.Values{"grant_type": {"password"}, "username": {c.cfg.Login},
		"password": {c.cfg.Password.Reveal()}})
	if err != nil {
		if !isLoginError(err) || !errclass.IsPermanent(err) {
			return nil, err // not a refusal: the server was not reached or failed
		}
		if a.backoff == 0 {
			a.backoff = c.cfg.LoginBackoff
		}
		a.refused, a.nextLogin = err, now.Add(a.backoff)
		a.backoff = min(2*a.backoff, c.cfg.MaxLoginBackoff)
		c.log.WithField("login", c.cfg.Login).WithField("retry_at", a.nextLogin.UTC().Format(time.RFC3339)).
			Warn("dracoon login refused; not tried again before retry_at")
		return nil, fmt.Errorf("login refused: %w", err)
	}
	a.refused, a.backoff = nil, 0
	c.log.WithField("login", c.cfg.Login).Debug("dracoon login")
	return tr, nil
}

// LoginRefusedError reports a request not sent because the server refused
// the account's last login and the login backoff has not run out. It has the
// class of the refusal (permanent).
type LoginRefusedError struct {
	Err   error     // the refusal
	Retry time.Time // the next login attempt is allowed from then on
}

// Error names the refusal and when the login is tried again.
func (e *LoginRefusedError) Error() string {
	return fmt.Sprintf("login refused, not tried again before %s: %v", e.Retry.UTC().Format(time.RFC3339), e.Err)
}

// Unwrap returns the refusal.
func (e *LoginRefusedError) Unwrap() error { return e.Err }

// tokenRoute labels the token endpoint in errors and logs.
const tokenRoute = "POST /oauth/token"

// errNoAccessToken reports a token response without a token.
var errNoAccessToken = errors.New("token response has no access_token")

// tokenGrant posts form to /oauth/token with Basic client authentication,
// once.
func (c *Client) tokenGrant(ctx context.Context, form url.Values) (*tokenResponse, error) {
	encoded := form.Encode()
	var tr tokenResponse
	err := c.call(ctx, &request{
		method: http.MethodPost, rawURL: c.cfg.BaseURL + "/oauth/token", route: tokenRoute,
		payload: func() (io.Reader, int64, string) {
			return strings.NewReader(encoded), int64(len(encoded)), "application/x-www-form-urlencoded"
		},
		// A grant is safe to repeat (a second token is harmless; a refresh
		// token consumed by a lost answer falls back to the password), so
		// a cut answer is transient; the request that needs the token
		// repeats it (once).
		noAuth: true, basicAuth: true, once: true, idempotent: true,
	}, &tr)
	if err != nil {
		return nil, fmt.Errorf("cannot obtain access token (%s grant): %w", form.Get("grant_type"), err)
	}
	if tr.AccessToken == "" {
		return nil, &DecodeError{Op: tokenRoute, Err: errNoAccessToken}
	}
	return &tr, nil
}

// isLoginError reports whether err is the token endpoint's refusal, which a
// renewed token cannot fix.
func isLoginError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Op == tokenRoute
}
