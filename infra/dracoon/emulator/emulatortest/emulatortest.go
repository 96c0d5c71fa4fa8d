// Package emulatortest runs the DRACOON emulator for tests: on 127.0.0.1,
// behind the OpenAPI checker, so that every request and response a test
// makes is validated against the official API document.
package emulatortest

import (
	"encoding/pem"
	"net/http/httptest"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/speccheck"
)

// Server is a running emulator. Its fields change on Restart.
type Server struct {
	Config emulator.Config  // what the emulator was started with
	Emu    *emulator.Server // the emulator, for fault injection and test hooks
	URL    string           // base URL, http://127.0.0.1:PORT

	t       testing.TB
	checker *speccheck.Checker
	srv     *httptest.Server
	tls     bool
}

// Start starts an emulator with cfg. At the end of the test it stops it and
// fails the test on any spec violation, or when no exchange was checked.
func Start(t testing.TB, cfg emulator.Config) *Server {
	t.Helper()
	return start(t, cfg, false)
}

// StartTLS is Start over https with a self-signed certificate (see
// Certificate).
func StartTLS(t testing.TB, cfg emulator.Config) *Server {
	t.Helper()
	return start(t, cfg, true)
}

// Certificate returns the PEM of the certificate of an emulator started
// with StartTLS.
func (s *Server) Certificate() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

func start(t testing.TB, cfg emulator.Config, tls bool) *Server {
	t.Helper()
	spec, err := speccheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Config: cfg, t: t, checker: speccheck.NewChecker(spec, nil), tls: tls}
	s.start()
	t.Cleanup(func() {
		s.stop()
		s.checker.Verify(t)
		if s.checker.Checked() == 0 {
			t.Error("no exchange was checked against the OpenAPI document")
		}
	})
	return s
}

// Restart stops the emulator and starts a new one on the same data
// directory and seed, as a process restart would. The URL changes.
func (s *Server) Restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

func (s *Server) start() {
	s.t.Helper()
	emu, err := emulator.New(s.Config)
	if err != nil {
		s.t.Fatal(err)
	}
	s.Emu = emu
	if s.tls {
		s.srv = httptest.NewTLSServer(s.checker.Middleware(emu))
	} else {
		s.srv = httptest.NewServer(s.checker.Middleware(emu))
	}
	s.URL = s.srv.URL
}

func (s *Server) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
	if s.Emu != nil {
		_ = s.Emu.Close()
		s.Emu = nil
	}
}
