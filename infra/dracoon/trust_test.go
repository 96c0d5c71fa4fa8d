package dracoon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// TestClient_checkURL: an upload or presigned URL DRACOON returns is used
// only over https (http only to loopback) and only on DRACOON's own host or,
// for S3 parts, one of the S3 hosts its system information lists; the error
// never repeats the URL.
func TestClient_checkURL(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "https://dracoon.example.com", Login: "l", Password: conf.Secret("p"),
		ClientID: "c", ClientSecret: conf.Secret("s"), EncryptionPassword: conf.Secret("e")})
	if err != nil {
		t.Fatal(err)
	}
	c.sys = &SystemInfo{S3Hosts: []string{"s3.eu.example.net", "https://bucket.s3.example.org:8443"}}
	tests := []struct {
		url string
		s3  bool
		ok  bool
	}{
		{"https://dracoon.example.com/api/v4/uploads/TOKEN", false, true},
		{"https://DRACOON.example.com:443/api/v4/uploads/TOKEN", false, true},
		{"http://dracoon.example.com/api/v4/uploads/TOKEN", false, false},
		{"https://evil.example.com/api/v4/uploads/TOKEN", false, false},
		{"https://dracoon.example.com@evil.example.com/x", false, false},
		{"https://s3.eu.example.net/b/k?X-Amz-Signature=SECRET", true, true},
		{"https://bucket.s3.example.org/k?X-Amz-Signature=SECRET", true, true},
		{"https://s3.eu.example.net/b/k?X-Amz-Signature=SECRET", false, false}, // not for proxy uploads
		{"https://s3.evil.example/b/k?X-Amz-Signature=SECRET", true, false},
		{"http://127.0.0.1:7081/s3/b/k?X-Amz-Signature=SECRET", true, false}, // loopback, but not DRACOON's host
		{"ftp://dracoon.example.com/x", false, false},
		{"/api/v4/uploads/TOKEN", false, false},
	}
	local, err := New(Config{BaseURL: "http://127.0.0.1:7080", Login: "l", Password: conf.Secret("p"),
		ClientID: "c", ClientSecret: conf.Secret("s"), EncryptionPassword: conf.Secret("e")})
	if err != nil {
		t.Fatal(err)
	}
	if err := local.checkURL(context.Background(), "http://127.0.0.1:7080/api/v4/uploads/TOKEN", "upload URL", false); err != nil {
		t.Errorf("plain http to DRACOON on loopback: %v", err)
	}
	for _, tt := range tests {
		err := c.checkURL(context.Background(), tt.url, "upload URL", tt.s3)
		if (err == nil) != tt.ok {
			t.Errorf("%s (s3 %v): %v, want ok %v", tt.url, tt.s3, err, tt.ok)
		}
		if err != nil && (strings.Contains(err.Error(), "TOKEN") || strings.Contains(err.Error(), "SECRET")) {
			t.Errorf("the error repeats the URL: %v", err)
		}
		if err != nil && strings.Contains(tt.url, "://") && tt.url != "ftp://dracoon.example.com/x" && !errors.Is(err, ErrForeignURL) {
			t.Errorf("%s: %v, want ErrForeignURL", tt.url, err)
		}
	}
}

// TestClient_answer_too_large: a JSON answer beyond the bound is refused
// for good, not read into memory.
func TestClient_answer_too_large(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	u, _ := url.Parse(e.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/v4/user/account") {
			rp.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.Copy(w, io.MultiReader(strings.NewReader(`{"userName":"`), bytes.NewReader(bytes.Repeat([]byte("a"), maxJSONBody+10)), strings.NewReader(`"}`)))
	}))
	defer srv.Close()
	base := e.URL
	e.URL = srv.URL
	c := e.svc()
	e.URL = base
	if _, err := c.SystemInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Account(context.Background()); !errors.Is(err, ErrAnswerTooLarge) || !errclass.IsPermanent(err) {
		t.Fatalf("Account = %v (%v), want a permanent ErrAnswerTooLarge", err, errclass.Of(err))
	}
}

// TestClient_TLS_trust: a DRACOON with a certificate of its own CA (an
// on-premises one) is refused, permanently and with the setting named,
// until that CA is in tls.ca_file; then the client works.
func TestClient_TLS_trust(t *testing.T) {
	t.Parallel()
	emu := emulatortest.StartTLS(t, emulator.Config{DataDir: t.TempDir(), Seed: testSeed(t, false), S3FinishDelay: -1})
	if !strings.HasPrefix(emu.URL, "https://") {
		t.Fatalf("emulator at %s, want https", emu.URL)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, emu.Certificate(), 0o600); err != nil {
		t.Fatal(err)
	}
	newClient := func(tlsCfg conf.TLS) *Client {
		t.Helper()
		roots, err := tlsCfg.CertPool()
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{BaseURL: emu.URL, Login: "svc", Password: conf.Secret("svc-pw"), ClientID: testClientID,
			ClientSecret: conf.Secret(testClientSecret), EncryptionPassword: conf.Secret(encPassword), RootCAs: roots, Retries: NoRetries})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	_, err := newClient(conf.TLS{}).SystemInfo(context.Background())
	if err == nil || !errclass.IsPermanent(err) || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Fatalf("an untrusted certificate: %v (%v), want a permanent error naming tls.ca_file", err, errclass.Of(err))
	}
	c := newClient(conf.TLS{CAFile: caFile})
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("with the CA in tls.ca_file: %v", err)
	}
	if _, err := (conf.TLS{CAFile: filepath.Join(t.TempDir(), "missing.pem")}).CertPool(); err == nil || !strings.Contains(err.Error(), "tls.ca_file") {
		t.Errorf("a missing CA file: %v, want an error naming tls.ca_file", err)
	}
}

// TestEmulator_expires_abandoned_uploads: an upload channel left open (by
// a killed process) is dropped after the emulator's upload lifetime, as
// DRACOON expires abandoned channels; writing to it then finds nothing.
func TestEmulator_expires_abandoned_uploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, func(c *emulator.Config) { c.UploadLifetime = 300 * time.Millisecond })
	c := e.svc()
	ctx := context.Background()
	room, err := c.EnsureRoomPath(ctx, roomRecordings, "expiry")
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.StartUpload(ctx, UploadSpec{ParentID: room.ID, Name: "abandoned.mp4", Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.Emu.OpenUploads(); n != 1 {
		t.Fatalf("%d open channels, want 1", n)
	}
	time.Sleep(1100 * time.Millisecond)       // the lifetime, and the emulator's once-a-second check
	if _, err := c.Account(ctx); err != nil { // any request lets the emulator expire channels
		t.Fatal(err)
	}
	if n := e.Emu.OpenUploads(); n != 0 {
		t.Fatalf("%d open channels after their lifetime, want 0", n)
	}
	if err := u.WritePart(ctx, 1, 0, make([]byte, 100)); !IsStatus(err, http.StatusNotFound) {
		t.Fatalf("writing to an expired channel: %v, want 404", err)
	}
}
