package dracoon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
)

// Seeded ids and credentials.
const (
	userSvc   = 1 // room manager, generated key pair, manages Recordings and Plain
	userAlice = 2 // generated key pair, read in Recordings
	userVec   = 3 // official RSA-4096 vector key pair, read in Recordings
	userCarol = 4 // no key pair, read in Recordings

	roomRecordings = 10 // encrypted
	roomPlain      = 20 // not encrypted

	testClientID     = "rs-test"
	testClientSecret = "s3cr3t+/=:"
	encPassword      = "enc-pw-ü"
)

// vectorDir holds the official DRACOON crypto SDK vectors.
const vectorDir = "../../testdata/vectors/dracoon-java-crypto-sdk/unit/data"

var (
	keyPairsOnce sync.Once
	keyPairs     [2]crypto.UserKeyPairContainer // svc, alice
	keyPairsErr  error
)

// generatedKeyPairs returns two fast (1000 iterations) RSA-4096 key pairs,
// generated once per test binary.
func generatedKeyPairs(t *testing.T) [2]crypto.UserKeyPairContainer {
	t.Helper()
	keyPairsOnce.Do(func() {
		var wg sync.WaitGroup
		var errs [2]error
		for i := range keyPairs {
			wg.Go(func() {
				keyPairs[i], errs[i] = crypto.GenerateKeyPair(crypto.KeyPairVersionRSA4096, encPassword, crypto.WithIterations(1000))
			})
		}
		wg.Wait()
		keyPairsErr = errorsJoin(errs[:]...)
	})
	if keyPairsErr != nil {
		t.Fatal(keyPairsErr)
	}
	return keyPairs
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// vectorKeyPair returns the official RSA-4096 unit key pair and its password.
func vectorKeyPair(t *testing.T) (crypto.UserKeyPairContainer, string) {
	t.Helper()
	var kp crypto.UserKeyPairContainer
	for _, f := range []struct {
		path string
		into any
	}{
		{"kp_rsa4096/private_key.json", &kp.PrivateKeyContainer},
		{"kp_rsa4096/public_key.json", &kp.PublicKeyContainer},
	} {
		raw, err := os.ReadFile(filepath.Join(vectorDir, f.path))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, f.into); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := os.ReadFile(filepath.Join(vectorDir, "kp_general/pw.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return kp, strings.TrimRight(string(pw), "\r\n")
}

func rawJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// testSeed builds the seed: see the constants above.
func testSeed(t *testing.T, s3 bool) *emulator.Seed {
	t.Helper()
	kps := generatedKeyPairs(t)
	vec, _ := vectorKeyPair(t)
	all := emulator.SeedPermissions{Manage: true, Read: true, Create: true, Change: true, Delete: true}
	read := emulator.SeedPermissions{Read: true}
	return &emulator.Seed{
		Clients: []emulator.SeedClient{{ClientID: testClientID, ClientSecret: testClientSecret}},
		Users: []emulator.SeedUser{
			{ID: userSvc, UserName: "svc", Password: "svc-pw", RoomManager: true, KeyPairs: []json.RawMessage{rawJSON(t, kps[0])}},
			{ID: userAlice, UserName: "alice", Password: "alice-pw", KeyPairs: []json.RawMessage{rawJSON(t, kps[1])}},
			{ID: userVec, UserName: "vec", Password: "vec-pw", KeyPairs: []json.RawMessage{rawJSON(t, vec)}},
			{ID: userCarol, UserName: "carol", Password: "carol-pw"},
		},
		Rooms: []emulator.SeedRoom{
			{ID: roomRecordings, Name: "Recordings", Encrypted: true, Members: []emulator.SeedMember{
				{UserID: userSvc, Permissions: all}, {UserID: userAlice, Permissions: read},
				{UserID: userVec, Permissions: read}, {UserID: userCarol, Permissions: read}}},
			{ID: roomPlain, Name: "Plain", Members: []emulator.SeedMember{{UserID: userSvc, Permissions: all}}},
		},
		S3DirectUpload: s3,
	}
}

// env is an emulator behind the OpenAPI checker on 127.0.0.1.
type env struct {
	*emulatortest.Server
	t *testing.T
}

// newEnv starts an emulator; every exchange is validated against the
// OpenAPI document and violations fail the test at cleanup.
func newEnv(t *testing.T, s3 bool, mod func(*emulator.Config)) *env {
	t.Helper()
	cfg := emulator.Config{DataDir: t.TempDir(), Seed: testSeed(t, s3), S3FinishDelay: 20 * time.Millisecond}
	if os.Getenv("DRACOON_TEST_DEBUG") != "" {
		l := logrus.New()
		l.SetLevel(logrus.DebugLevel)
		cfg.Logger = l
	}
	if mod != nil {
		mod(&cfg)
	}
	return &env{Server: emulatortest.Start(t, cfg), t: t}
}

// client returns a client logged in as user with fast test settings.
func (e *env) client(user, password, encPw string, mod ...func(*Config)) *Client {
	e.t.Helper()
	cfg := Config{
		BaseURL: e.URL, Login: user, Password: conf.Secret(password),
		ClientID: testClientID, ClientSecret: testClientSecret, EncryptionPassword: conf.Secret(encPw),
		Timeout: 10 * time.Second, MinBackoff: 5 * time.Millisecond, MaxBackoff: 1500 * time.Millisecond,
		ChunkSize: 64 << 10, PartSize: MinS3PartSize,
		HTTPClient: &http.Client{Transport: newTransport(10*time.Second, nil)},
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) svc(mod ...func(*Config)) *Client {
	return e.client("svc", "svc-pw", encPassword, mod...)
}
func (e *env) alice() *Client { return e.client("alice", "alice-pw", encPassword) }
func (e *env) vec() *Client {
	_, pw := vectorKeyPair(e.t)
	return e.client("vec", "vec-pw", pw)
}

// revoke revokes an access token at /oauth/revoke.
func (e *env) revoke(token string) {
	e.t.Helper()
	form := url.Values{"token_type_hint": {"access_token"}, "token": {token}}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/oauth/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(testClientID), url.QueryEscape(testClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("revoke: status %d", resp.StatusCode)
	}
}

// randomData returns n random bytes and their SHA-256.
func randomData(t *testing.T, n int) ([]byte, [32]byte) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, sha256.Sum256(b)
}

// testPartsInFlight is how many S3 direct parts the tests' uploads write
// at once.
const testPartsInFlight = 3

// upload encrypts and uploads data as name into room with a fresh key.
func upload(t *testing.T, c *Client, room int64, name string, data []byte) Node {
	t.Helper()
	n, err := putFile(context.Background(), c, UploadSpec{ParentID: room, Name: name, Size: int64(len(data)),
		ExpireAt: time.Now().Add(24 * time.Hour), Notes: "test upload", Resolution: ResolveFail}, data, testPartsInFlight, nil)
	if err != nil {
		t.Fatalf("upload %s (%d bytes): %v", name, len(data), err)
	}
	if n.Type != NodeTypeFile || n.Size != int64(len(data)) {
		t.Fatalf("upload %s: node %+v", name, n)
	}
	return n
}

// downloadSum downloads and decrypts a file as c and returns its SHA-256.
func downloadSum(t *testing.T, c *Client, fileID int64) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := c.DownloadDecrypted(context.Background(), fileID, h); err != nil {
		t.Fatalf("download %d: %v", fileID, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// uploadGone reports whether the upload channel no longer exists.
func uploadGone(t *testing.T, c *Client, id string) bool {
	t.Helper()
	var st uploadStatus
	err := c.call(context.Background(), &request{method: http.MethodGet, path: "/v4/nodes/files/uploads/" + id,
		route: "GET /v4/nodes/files/uploads/{upload_id}", idempotent: true}, &st)
	return IsStatus(err, http.StatusNotFound)
}

// countFiles returns how many files directly in room have a name starting
// with prefix (so "name (1).ext" counts with "name.ext").
func countFiles(t *testing.T, c *Client, room int64, prefix string) int {
	t.Helper()
	n := 0
	q := url.Values{"parent_id": {strconv.FormatInt(room, 10)}, "depth_level": {"0"}, "filter": {"type:eq:file"}, "limit": {"500"}}
	if err := c.listNodes(context.Background(), q, func(nd Node) bool {
		if strings.HasPrefix(nd.Name, prefix) {
			n++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// faultLog records the faults an emulator injected (its "injecting fault"
// log lines) by "METHOD fault", e.g. "PUT after-reset", so that a test can
// prove that its fault was hit.
type faultLog struct {
	mu     sync.Mutex
	faults map[string]int
}

// Levels makes faultLog a logrus hook for every level.
func (f *faultLog) Levels() []logrus.Level { return logrus.AllLevels }

// Fire counts an injected fault.
func (f *faultLog) Fire(e *logrus.Entry) error {
	if e.Message != "injecting fault" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[fmt.Sprintf("%v %v", e.Data["method"], e.Data["fault"])]++
	return nil
}

// count returns how often fault (e.g. "after-reset", "after-status-502",
// "status-503") was injected into requests of method.
func (f *faultLog) count(method, fault string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults[method+" "+fault]
}

// newFaultEnv starts an emulator like newEnv and records its injected faults.
func newFaultEnv(t *testing.T, s3 bool) (*env, *faultLog) {
	t.Helper()
	fl := &faultLog{faults: map[string]int{}}
	e := newEnv(t, s3, func(c *emulator.Config) {
		if l, ok := c.Logger.(*logrus.Logger); ok {
			l.AddHook(fl)
			return
		}
		l := logrus.New()
		l.SetOutput(io.Discard)
		l.AddHook(fl)
		c.Logger = l
	})
	return e, fl
}

// countNodes returns how many nodes of type typ directly below parent are
// named name or, as autorename would name a second one, "base (N)ext".
func countNodes(t *testing.T, c *Client, parent int64, typ, name string) int {
	t.Helper()
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i:]
	}
	n := 0
	q := url.Values{"parent_id": {strconv.FormatInt(parent, 10)}, "depth_level": {"0"}, "filter": {"type:eq:" + typ}, "limit": {"500"}}
	if err := c.listNodes(context.Background(), q, func(nd Node) bool {
		if nd.Name == name || (strings.HasPrefix(nd.Name, base+" (") && strings.HasSuffix(nd.Name, ")"+ext)) {
			n++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
