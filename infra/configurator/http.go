package configurator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// maxResponseSize bounds a configurator answer; real ones are a few KiB.
const maxResponseSize = 1 << 20

// HTTP fetches instance configurations from the configurator service with
// GET {url}/instances/{domain}, and caches successful answers for the
// configured TTL; errors are never cached. Concurrent requests for the same
// domain share one fetch. HTTP is safe for concurrent use.
type HTTP struct {
	base   *url.URL
	token  conf.Secret
	ttl    time.Duration
	client *http.Client
	now    func() time.Time

	group singleflight.Group
	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	instance conf.Instance
	expires  time.Time
}

// NewHTTP returns a client for the configurator described by c, trusting
// the certificate authorities roots (nil: the system's).
func NewHTTP(c conf.Configurator, roots *x509.CertPool) (*HTTP, error) {
	base, err := url.Parse(strings.TrimRight(c.URL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("invalid configurator url %q", c.URL)
	}
	return &HTTP{
		base:   base,
		token:  c.Token,
		ttl:    c.CacheTTL,
		client: &http.Client{Timeout: c.Timeout, Transport: transport(roots)},
		now:    time.Now,
		cache:  map[string]cached{},
	}, nil
}

// transport is net/http's default transport trusting roots.
func transport(roots *x509.CertPool) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return t
}

// Instance returns the configuration of domain, from the cache when fresh.
func (h *HTTP) Instance(ctx context.Context, domain string) (conf.Instance, error) {
	h.mu.Lock()
	c, ok := h.cache[domain]
	h.mu.Unlock()
	if ok && h.now().Before(c.expires) {
		return c.instance, nil
	}
	v, err, _ := h.group.Do(domain, func() (any, error) {
		in, err := h.fetch(ctx, domain)
		if err != nil {
			return nil, err
		}
		if h.ttl > 0 {
			h.mu.Lock()
			h.cache[domain] = cached{instance: in, expires: h.now().Add(h.ttl)}
			h.mu.Unlock()
		}
		return in, nil
	})
	if err != nil {
		return conf.Instance{}, err
	}
	return v.(conf.Instance), nil
}

func (h *HTTP) fetch(ctx context.Context, domain string) (conf.Instance, error) {
	u := h.base.JoinPath("instances", domain)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return conf.Instance{}, &Error{Domain: domain, Err: err, class: errclass.Permanent}
	}
	req.Header.Set("Accept", "application/json")
	if h.token.IsSet() {
		req.Header.Set("Authorization", "Bearer "+h.token.Reveal())
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// The URL holds no secret; the token travels in a header.
		return conf.Instance{}, &Error{Domain: domain, Err: fmt.Errorf("cannot reach configurator: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return conf.Instance{}, &Error{Domain: domain, Err: fmt.Errorf("cannot read configurator answer: %w", err)}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return conf.Instance{}, &Error{Domain: domain, Err: ErrUnknownInstance, class: errclass.Permanent}
	case resp.StatusCode != http.StatusOK:
		// 4xx other than 404 (auth, bad request) need an operator as much as
		// 5xx need time; neither is the message's fault, so both are retried.
		return conf.Instance{}, &Error{Domain: domain, Err: fmt.Errorf("configurator answered %s", resp.Status)}
	case len(body) > maxResponseSize:
		return conf.Instance{}, &Error{Domain: domain, Err: fmt.Errorf("configurator answer is larger than %d bytes", maxResponseSize), class: errclass.Permanent}
	}
	var in conf.Instance
	if err := json.Unmarshal(body, &in); err != nil {
		return conf.Instance{}, &Error{Domain: domain, Err: fmt.Errorf("cannot decode configurator answer: %w", err), class: errclass.Permanent}
	}
	if err := in.Validate(); err != nil {
		return conf.Instance{}, &Error{Domain: domain, Err: fmt.Errorf("invalid configuration: %w", err), class: errclass.Permanent}
	}
	return in, nil
}
