package dracoon

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
)

// Pool keeps one client per DRACOON account, so that every job of an
// instance shares its login, its access token and its unlocked key pair. A
// changed account configuration (a rotated password, say) gets a new
// client. It is safe for concurrent use.
type Pool struct {
	settings conf.Dracoon
	chunk    int64
	log      logrus.FieldLogger
	roots    func() (*x509.CertPool, error) // tls.ca_file, read once

	mu      sync.Mutex
	clients map[string]*Client // by fingerprint of the account
}

// NewPool returns a pool of clients with the service's DRACOON settings,
// its extra CA bundle (tls.ca_file, read on first use) and the chunk size
// of uploads.
func NewPool(settings conf.Dracoon, tls conf.TLS, chunk int64, log logrus.FieldLogger) *Pool {
	return &Pool{settings: settings, chunk: chunk, log: log, roots: sync.OnceValues(tls.CertPool),
		clients: map[string]*Client{}}
}

// Client returns the client of acct, creating it on first use.
func (p *Pool) Client(acct conf.DracoonAccount) (*Client, error) {
	key := fingerprint(acct)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	roots, err := p.roots()
	if err != nil {
		return nil, err
	}
	cfg := NewConfig(p.settings, acct, p.chunk, p.log.WithField("dracoon", acct.BaseURL))
	cfg.RootCAs = roots
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	p.clients[key] = c
	return c, nil
}

// fingerprint identifies an account configuration, secrets included, by a
// hash (the secrets themselves are not kept as map keys).
func fingerprint(acct conf.DracoonAccount) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s", acct.BaseURL, acct.Login, acct.Password.Reveal(),
		acct.ClientID, acct.ClientSecret.Reveal(), acct.EncryptionPassword.Reveal())
	return hex.EncodeToString(h.Sum(nil))
}
