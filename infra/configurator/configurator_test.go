package configurator

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

const validInstance = `{"storage":"dracoon","dracoon":{"baseUrl":"https://d.example","login":"l","password":"p",
 "encryptionPassword":"e","clientId":"c","clientSecret":"s","parentRoomId":7,
 "targets":[{"meetingTypeId":"any","copyTo":[{"path":"$instance"}]}]}}`

func permanent(err error) bool {
	return errclass.IsPermanent(err)
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	body := atomic.Value{}
	body.Store(validInstance)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path == "/base/instances/slow.example" {
			time.Sleep(2 * time.Second)
		}
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/base/instances/missing.example" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	t.Cleanup(srv.Close)

	c, err := NewHTTP(conf.Configurator{URL: srv.URL + "/base/", Token: "tok", CacheTTL: time.Minute, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	in, err := c.Instance(ctx, "a.example")
	if err != nil || in.Dracoon.ParentRoomID != 7 || in.Dracoon.Password.Reveal() != "p" {
		t.Fatalf("Instance = %+v, %v", in, err)
	}
	if _, err := c.Instance(ctx, "a.example"); err != nil || calls.Load() != 1 {
		t.Fatalf("second call: err %v, calls %d, want a cache hit", err, calls.Load())
	}
	now = now.Add(2 * time.Minute)
	if _, err := c.Instance(ctx, "a.example"); err != nil || calls.Load() != 2 {
		t.Fatalf("after the TTL: err %v, calls %d, want a fetch", err, calls.Load())
	}

	status.Store(http.StatusServiceUnavailable)
	_, err = c.Instance(ctx, "b.example")
	if err == nil || permanent(err) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("503: err = %v, want a transient error", err)
	}
	status.Store(http.StatusOK)
	if _, err := c.Instance(ctx, "b.example"); err != nil {
		t.Fatalf("error was cached: %v", err)
	}

	_, err = c.Instance(ctx, "missing.example")
	if !errors.Is(err, ErrUnknownInstance) || !permanent(err) {
		t.Fatalf("404: err = %v, want permanent ErrUnknownInstance", err)
	}

	body.Store(`{"storage":"dracoon","dracoon":{"baseUrl":"https://d.example","password":"p"}}`)
	_, err = c.Instance(ctx, "invalid.example")
	if err == nil || !permanent(err) || !strings.Contains(err.Error(), "dracoon.login must be set") {
		t.Fatalf("invalid config: err = %v", err)
	}
	if strings.Contains(err.Error(), `"p"`) {
		t.Fatalf("error shows a secret: %v", err)
	}
	body.Store("{not json")
	if _, err := c.Instance(ctx, "garbled.example"); err == nil || !permanent(err) {
		t.Fatalf("garbled answer: err = %v", err)
	}

	start := time.Now()
	if _, err := c.Instance(ctx, "slow.example"); err == nil || permanent(err) {
		t.Fatalf("slow configurator: err = %v, want a transient timeout", err)
	}
	if time.Since(start) > 1900*time.Millisecond {
		t.Fatalf("timeout not applied: %s", time.Since(start))
	}

	noToken, _ := NewHTTP(conf.Configurator{URL: srv.URL + "/base", Timeout: time.Second}, nil)
	if _, err := noToken.Instance(ctx, "a.example"); err == nil || permanent(err) {
		t.Fatalf("401: err = %v, want transient", err)
	}
}

func TestFile(t *testing.T) {
	t.Parallel()
	f, err := NewFile("../../conf/instances.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.Instance(context.Background(), "local.recording-storage.test")
	if err != nil || in.Dracoon.ParentRoomID == 0 || len(in.Dracoon.Targets) == 0 {
		t.Fatalf("Instance = %+v, %v", in, err)
	}
	if _, err := f.Instance(context.Background(), "nope.example"); !errors.Is(err, ErrUnknownInstance) || !permanent(err) {
		t.Fatalf("unknown domain: %v", err)
	}

	for name, content := range map[string]string{
		"invalid":     "x.example:\n  storage: dracoon\n  dracoon:\n    login: a\n",
		"unknown_key": "x.example:\n  storage: dracoon\n  dracon: {}\n",
	} {
		path := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewFile(path); err == nil {
			t.Errorf("%s: NewFile accepted %q", name, content)
		}
	}
}

func TestFile_Domains(t *testing.T) {
	f, err := NewFile("../../conf/instances.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Domains(); len(got) != 2 || got[0] != "local-s3.recording-storage.test" || got[1] != "local.recording-storage.test" {
		t.Errorf("Domains = %v", got)
	}
}
