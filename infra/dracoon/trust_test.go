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
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/conf"
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
