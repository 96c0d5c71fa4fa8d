package dracoon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// counter is a reverse proxy in front of the emulator that counts requests
// by "METHOD path-prefix" of interest.
type counter struct {
	URL string
	// stale, when set before requests arrive, is a path whose first answer
	// for each URL (path and query) is recorded and replayed to later
	// requests of that URL, as a server whose listing lags behind its
	// writes would answer.
	stale string

	mu      sync.Mutex
	counts  map[string]int
	answers map[string]*httptest.ResponseRecorder // by URL, for stale
	keysSet map[[2]int64]int                      // POST /api/v4/nodes/files/keys items by (user, file)
}

func newCounter(t *testing.T, target string) *counter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{counts: map[string]int{}, answers: map[string]*httptest.ResponseRecorder{}, keysSet: map[[2]int64]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.counts[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		if r.Method == http.MethodPost && r.URL.Path == "/api/v4/nodes/files/keys" {
			c.recordKeys(t, r)
		}
		if c.stale == "" || r.URL.Path != c.stale {
			proxy.ServeHTTP(w, r)
			return
		}
		c.mu.Lock()
		rec := c.answers[r.URL.String()]
		c.mu.Unlock()
		if rec == nil {
			rec = httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			c.mu.Lock()
			c.answers[r.URL.String()] = rec
			c.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// recordKeys counts the (user, file) pairs of a key upload and leaves its
// body readable for the server.
func (c *counter) recordKeys(t *testing.T, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		t.Error(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var batch struct {
		Items []struct{ UserID, FileID int64 }
	}
	if err := json.Unmarshal(raw, &batch); err != nil {
		t.Errorf("key upload body: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, it := range batch.Items {
		c.keysSet[[2]int64{it.UserID, it.FileID}]++
	}
}

func (c *counter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

// TestAuth_outage_costs_one_token_request_per_attempt: the token fetch is
// not a retry loop of its own inside the request's retry loop.
func TestAuth_outage_costs_one_token_request_per_attempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	e.Emu.InjectFault(emulator.FaultRule{PathPrefix: "/oauth/token", Status: http.StatusServiceUnavailable, Times: 1000, RetryAfter: time.Millisecond})
	cnt := newCounter(t, e.URL)
	c := e.client("svc", "svc-pw", encPassword, func(cfg *Config) { cfg.BaseURL = cnt.URL; cfg.Retries = 3; cfg.MaxBackoff = 20 * time.Millisecond })
	_, err := c.Account(context.Background())
	if err == nil || !errclass.IsTransient(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
	if got := cnt.count("POST /oauth/token"); got != 4 {
		t.Errorf("%d token requests for one call with 3 retries, want 4", got)
	}
	checkOneExchange(t, e)
}

// checkOneExchange makes one API exchange that the OpenAPI checker sees
// (it checks /api only), for tests that otherwise talk to /oauth alone.
func checkOneExchange(t *testing.T, e *env) {
	t.Helper()
	if _, err := e.svc().SystemInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAuth_wrong_credentials_are_permanent_and_not_retried.
func TestAuth_wrong_credentials_are_permanent_and_not_retried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	cnt := newCounter(t, e.URL)
	tests := []struct {
		name          string
		login, pw, id string
	}{
		{"wrong password", "svc", "nope", testClientID},
		{"unknown user", "nobody", "nope", testClientID},
		{"invalid client", "svc", "svc-pw", "no-such-client"},
	}
	for i, tt := range tests {
		c := e.client(tt.login, tt.pw, encPassword, func(cfg *Config) { cfg.BaseURL = cnt.URL; cfg.ClientID = tt.id })
		_, err := c.Account(context.Background())
		if !errclass.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", tt.name, err)
		}
		if got := cnt.count("POST /oauth/token"); got != i+1 {
			t.Errorf("%s: %d token requests in all, want %d", tt.name, got, i+1)
		}
		if strings.Contains(err.Error(), tt.pw) && tt.pw != "svc-pw" {
			t.Errorf("%s: error shows the password: %v", tt.name, err)
		}
	}
	checkOneExchange(t, e)
}

// TestAuth_no_redirect_with_credentials: a token endpoint that redirects
// does not get the password form a second time.
func TestAuth_no_redirect_with_credentials(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere++
		mu.Unlock()
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer other.Close()
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.Path, status)
		}))
		c, err := New(Config{BaseURL: srv.URL, Login: "l", Password: "pw-secret", ClientID: "i", ClientSecret: "s", Retries: NoRetries})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Account(context.Background())
		srv.Close()
		if err == nil || !errclass.IsPermanent(err) {
			t.Errorf("%d: err = %v, want a permanent error", status, err)
		}
	}
	if elsewhere != 0 {
		t.Errorf("the redirect target got %d requests", elsewhere)
	}
}

// TestKeys_wrong_encryption_password_unlocks_once: the failure is permanent
// and remembered, so a run over many files costs one unlock.
func TestKeys_wrong_encryption_password_unlocks_once(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	ctx := context.Background()
	svc := e.svc()
	room, err := svc.EnsureRoomPath(ctx, roomRecordings, "wrongpw")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.bin", "b.bin", "c.bin"} {
		data, _ := randomData(t, 100)
		upload(t, svc, room.ID, name, data)
	}
	cnt := newCounter(t, e.URL)
	bad := e.client("svc", "svc-pw", "not-the-encryption-password", func(cfg *Config) { cfg.BaseURL = cnt.URL })
	for range 2 {
		_, err := bad.DistributeMissingKeys(ctx, KeyScope{RoomID: room.ID})
		if !errors.Is(err, crypto.ErrWrongPassword) || !errclass.IsPermanent(err) {
			t.Fatalf("err = %v, want a permanent ErrWrongPassword", err)
		}
	}
	_, err = bad.PrivateKey(ctx)
	if !errclass.IsPermanent(err) {
		t.Fatalf("PrivateKey: %v", err)
	}
	if got := cnt.count("GET /api/v4/user/account/keypair"); got != 1 {
		t.Errorf("key pair fetched (and unlocked) %d times, want 1", got)
	}
	if strings.Contains(err.Error(), "not-the-encryption-password") {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestKeys_refused_batch_is_split: a batch the server refuses is split so
// that the good items are stored.
func TestKeys_refused_batch_is_split(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	ctx := context.Background()
	svc := e.svc()
	room, err := svc.EnsureRoomPath(ctx, roomRecordings, "split")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.bin", "b.bin"} {
		data, _ := randomData(t, 10)
		upload(t, svc, room.ID, name, data)
	}
	// The first batch (4 pairs: alice and vec for two files) is refused once.
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/keys", Status: http.StatusBadRequest})
	st, err := svc.DistributeMissingKeys(ctx, KeyScope{RoomID: room.ID})
	if err != nil || st != (messages.KeyStats{Set: 4}) {
		t.Fatalf("stats %+v, err %v; want 4 set after the split", st, err)
	}
}

// TestKeys_lagging_listing_posts_each_pair_once: a server whose listing
// still shows pairs that were just served (here: each page's first answer
// replayed, pages of 3) gets each pair's key once, the run ends, and the
// pair it stepped over is served by the next run.
func TestKeys_lagging_listing_posts_each_pair_once(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	ctx := context.Background()
	svc := e.svc()
	room, err := svc.EnsureRoomPath(ctx, roomRecordings, "lagging")
	if err != nil {
		t.Fatal(err)
	}
	var files []int64
	for _, name := range []string{"a.bin", "b.bin"} {
		data, _ := randomData(t, 10)
		files = append(files, upload(t, svc, room.ID, name, data).ID)
	}
	cnt := newCounter(t, e.URL)
	cnt.stale = "/api/v4/nodes/missingFileKeys"
	lagging := e.svc(func(cfg *Config) { cfg.BaseURL = cnt.URL; cfg.MissingKeysPageSize = 3 })
	// Page 1 (offset 0) serves 3 of the 4 pairs (alice and vec, two files);
	// its replay lists them again, so the run steps over them to offset 3,
	// where the shrunk list ends.
	st, err := lagging.DistributeMissingKeys(ctx, KeyScope{RoomID: room.ID})
	if err != nil || st != (messages.KeyStats{Set: 3}) {
		t.Fatalf("stats %+v, err %v; want 3 set", st, err)
	}
	if got := cnt.count("GET /api/v4/nodes/missingFileKeys"); got < 2 {
		t.Fatalf("listed %d times: the replayed page was never asked for, so the test proves nothing", got)
	}
	if len(cnt.keysSet) != 3 {
		t.Errorf("keys posted for %d pairs, want 3: %v", len(cnt.keysSet), cnt.keysSet)
	}
	for p, n := range cnt.keysSet {
		if n != 1 {
			t.Errorf("user %d, file %d: key posted %d times, want once", p[0], p[1], n)
		}
	}
	if st, err := svc.DistributeMissingKeys(ctx, KeyScope{RoomID: room.ID}); err != nil || st != (messages.KeyStats{Set: 1}) {
		t.Fatalf("next run: stats %+v, err %v; want the last pair set", st, err)
	}
	for _, id := range files {
		if _, err := e.alice().UserFileKey(ctx, id); err != nil {
			t.Errorf("alice has no key for file %d: %v", id, err)
		}
	}
}

// TestKeys_transient_failure_reports_incomplete: keys that could not be
// stored make the run an error with the counts, not a silent success.
func TestKeys_transient_failure_reports_incomplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	ctx := context.Background()
	svc := e.svc(func(cfg *Config) { cfg.Retries = NoRetries })
	data, _ := randomData(t, 10)
	n := upload(t, svc, roomRecordings, "incomplete.bin", data)
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/keys", Status: http.StatusServiceUnavailable, Times: 10})
	st, err := svc.DistributeMissingKeys(ctx, KeyScope{FileID: n.ID})
	if !errors.Is(err, ErrIncomplete) || !errclass.IsTransient(err) || st.Failed != 2 || st.Set != 0 {
		t.Fatalf("stats %+v, err %v; want 2 failed and a transient ErrIncomplete", st, err)
	}
	if !strings.Contains(err.Error(), "2 of 2") {
		t.Errorf("error does not give the counts: %v", err)
	}
}

// TestNameRules_one_source: names the job parser accepts are accepted by the
// client, and the ones it refuses are refused, the same way.
func TestNameRules_one_source(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"Recordings 2024", true}, {" leading space", true}, {"trailing space ", true},
		{"CON", false}, {"a|b", false}, {"-x", false}, {"x.", false}, {"..", false}, {strings.Repeat("x", 151), false},
	}
	for _, tt := range tests {
		_, err := splitRoomPath("parent/" + tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("room %q: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errclass.IsPermanent(err) {
			t.Errorf("room %q: error not permanent: %v", tt.name, err)
		}
		spec := UploadSpec{ParentID: 1, Name: tt.name, Size: 1}
		if err := spec.check(); (err == nil) != tt.ok {
			t.Errorf("file %q: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestLookupRoomPath finds existing rooms and creates none.
func TestLookupRoomPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	ctx := context.Background()
	c := e.svc()
	made, err := c.EnsureRoomPath(ctx, roomRecordings, "look/up")
	if err != nil {
		t.Fatal(err)
	}
	n, found, err := c.LookupRoomPath(ctx, roomRecordings, "look/up")
	if err != nil || !found || n.ID != made.ID {
		t.Fatalf("existing path: %+v %v %v", n, found, err)
	}
	if _, found, err := c.LookupRoomPath(ctx, roomRecordings, "look/not/there"); err != nil || found {
		t.Fatalf("missing path: found=%v err=%v", found, err)
	}
	if _, found, _ := c.LookupRoomPath(ctx, roomRecordings, "look/not"); found {
		t.Fatal("LookupRoomPath created a room")
	}
}

// TestUpload_expired_presigned_url_is_renewed: a part PUT refused by the S3
// endpoint (403, as an expired presigned URL is) gets a new URL and
// succeeds.
func TestUpload_expired_presigned_url_is_renewed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, nil)
	cnt := newCounter(t, e.URL)
	c := e.svc(func(cfg *Config) { cfg.BaseURL = cnt.URL })
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPut, PathPrefix: emulator.S3PathPrefix, Status: http.StatusForbidden})
	data, sum := randomData(t, MinS3PartSize+10)
	n := upload(t, c, roomRecordings, "renewed.bin", data)
	if got := downloadSum(t, c, n.ID); got != sum {
		t.Fatal("downloaded content differs")
	}
	urls := 0
	cnt.mu.Lock()
	for k, v := range cnt.counts {
		if strings.HasSuffix(k, "/s3_urls") {
			urls += v
		}
	}
	cnt.mu.Unlock()
	if urls < 3 { // two parts of different sizes, and one renewal
		t.Errorf("%d presigned URL requests, want at least 3 (one a renewal)", urls)
	}
}

// TestErrors_carry_no_secret_url: a failed request to an upload or
// presigned URL names its route, never the URL (a bearer secret).
func TestErrors_carry_no_secret_url(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-t0ken"
	for _, route := range []string{"POST /v4/uploads/{token}", presignedRoute} {
		req := &request{method: http.MethodPut, rawURL: "http://127.0.0.1:1/api/v4/uploads/" + secret + "?X-Amz-Signature=" + secret, route: route}
		c, err := New(Config{BaseURL: "http://127.0.0.1:1", Login: "l", Password: "p", ClientID: "i", ClientSecret: "s", Retries: NoRetries})
		if err != nil {
			t.Fatal(err)
		}
		req.noAuth = true
		_, err = c.send(context.Background(), req)
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), route) {
			t.Errorf("%s: error %v", route, err)
		}
		if fmt.Sprintf("%+v", err) != err.Error() && strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("%s: %%+v shows the URL", route)
		}
	}
}
