package steps

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/dracoon"
)

// accounts keeps one DRACOON client per instance account, so that every job
// of an instance shares its login, its access token and its unlocked key
// pair. A changed account configuration (a rotated password, say) gets a
// new client.
type accounts struct {
	settings conf.Dracoon
	chunk    int64
	log      logrus.FieldLogger
	roots    func() (*x509.CertPool, error) // tls.ca_file, read once

	mu      sync.Mutex
	clients map[string]*dracoon.Client // by fingerprint of the account
}

func newAccounts(settings conf.Dracoon, tls conf.TLS, chunk int64, log logrus.FieldLogger) *accounts {
	return &accounts{settings: settings, chunk: chunk, log: log, roots: sync.OnceValues(tls.CertPool),
		clients: map[string]*dracoon.Client{}}
}

// client returns the client of acct, creating it on first use.
func (a *accounts) client(acct conf.DracoonAccount) (*dracoon.Client, error) {
	key := fingerprint(acct)
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[key]; ok {
		return c, nil
	}
	roots, err := a.roots()
	if err != nil {
		return nil, err
	}
	cfg := dracoon.NewConfig(a.settings, acct, a.chunk, a.log.WithField("dracoon", acct.BaseURL))
	cfg.RootCAs = roots
	c, err := dracoon.New(cfg)
	if err != nil {
		return nil, err
	}
	a.clients[key] = c
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
