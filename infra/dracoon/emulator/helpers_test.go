package emulator_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
)

// Seeded ids.
const (
	userSvc   = 1 // room manager, RSA-4096 key pair, manages both rooms
	userAlice = 2 // RSA-4096 key pair, read in Recordings
	userBob   = 3 // key pairs A and RSA-4096, read in Recordings
	userCarol = 4 // no key pair, read in Recordings
	userDave  = 5 // no rooms

	roomRecordings = 10 // encrypted
	roomPlain      = 20 // not encrypted

	clientID     = "rs-client"
	clientSecret = "s3cr3t+/="
)

// keyPairJSON is a UserKeyPairContainer with placeholder PEMs: the emulator
// never parses keys.
func keyPairJSON(version string, user int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"privateKeyContainer":{"version":%q,"privateKey":"-----BEGIN ENCRYPTED PRIVATE KEY-----\nuser%d\n-----END ENCRYPTED PRIVATE KEY-----\n"},`+
		`"publicKeyContainer":{"version":%q,"publicKey":"-----BEGIN PUBLIC KEY-----\nuser%d-%s\n-----END PUBLIC KEY-----\n","createdAt":"2025-01-01T00:00:00.000Z","createdBy":%d}}`,
		version, user, version, user, version, user))
}

func testSeed(s3 bool) *emulator.Seed {
	all := emulator.SeedPermissions{Manage: true, Read: true, Create: true, Change: true, Delete: true}
	read := emulator.SeedPermissions{Read: true}
	nilParent := (*int64)(nil)
	return &emulator.Seed{
		Clients: []emulator.SeedClient{{ClientID: clientID, ClientSecret: clientSecret}},
		Users: []emulator.SeedUser{
			{ID: userSvc, UserName: "svc", Password: "svc-pw", Email: "svc@example.com", RoomManager: true,
				KeyPairs: []json.RawMessage{keyPairJSON("RSA-4096", userSvc)}},
			{ID: userAlice, UserName: "alice", Password: "alice-pw", KeyPairs: []json.RawMessage{keyPairJSON("RSA-4096", userAlice)}},
			{ID: userBob, UserName: "bob", Password: "bob-pw", KeyPairs: []json.RawMessage{keyPairJSON("A", userBob), keyPairJSON("RSA-4096", userBob)}},
			{ID: userCarol, UserName: "carol", Password: "carol-pw"},
			{ID: userDave, UserName: "dave", Password: "dave-pw"},
		},
		Rooms: []emulator.SeedRoom{
			{ID: roomRecordings, Name: "Recordings", ParentID: nilParent, Encrypted: true, Members: []emulator.SeedMember{
				{UserID: userSvc, Permissions: all}, {UserID: userAlice, Permissions: read},
				{UserID: userBob, Permissions: read}, {UserID: userCarol, Permissions: read}}},
			{ID: roomPlain, Name: "Plain", ParentID: nilParent, Members: []emulator.SeedMember{{UserID: userSvc, Permissions: all}}},
		},
		S3DirectUpload: s3,
	}
}

// env is one emulator behind the spec checker, served on 127.0.0.1.
type env struct {
	*emulatortest.Server
	t *testing.T
}

// newEnv starts an emulator with cfg (DataDir and Seed filled in when empty)
// and fails the test on any spec violation at cleanup.
func newEnv(t *testing.T, cfg emulator.Config) *env {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Seed == nil {
		cfg.Seed = testSeed(false)
	}
	if cfg.S3FinishDelay == 0 {
		cfg.S3FinishDelay = 50 * time.Millisecond
	}
	return &env{Server: emulatortest.Start(t, cfg), t: t}
}

// tokenResp is the OAuth token response.
type tokenResp struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

// oauth posts form to /oauth/token with Basic client auth.
func (e *env) oauth(form url.Values, basic string) (int, tokenResp) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		req.Header.Set("Authorization", "Basic "+basic)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResp
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		e.t.Fatalf("oauth: cannot decode body: %v", err)
	}
	return resp.StatusCode, tr
}

func stdBasic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// login returns a client authenticated as user.
func (e *env) login(user, password string) *client {
	e.t.Helper()
	status, tr := e.oauth(url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}}, stdBasic(clientID, clientSecret))
	if status != http.StatusOK {
		e.t.Fatalf("login %s: status %d (%s)", user, status, tr.Error)
	}
	return &client{e: e, token: tr.AccessToken, refresh: tr.RefreshToken}
}

func (e *env) svc() *client   { return e.login("svc", "svc-pw") }
func (e *env) alice() *client { return e.login("alice", "alice-pw") }
func (e *env) bob() *client   { return e.login("bob", "bob-pw") }
func (e *env) carol() *client { return e.login("carol", "carol-pw") }

// client sends API requests with a bearer token.
type client struct {
	e       *env
	token   string
	refresh string
}

// apiError is the error body of /api.
type apiError struct {
	Code      int    `json:"code"`
	Message   string `json:"message"`
	DebugInfo string `json:"debugInfo"`
	ErrorCode *int   `json:"errorCode"`
}

// call sends a JSON request to e.URL+path (path starting with /api or
// absolute) and checks the status; out, if not nil, receives the JSON body.
func (c *client) call(method, path string, body any, want int, out any) []byte {
	c.e.t.Helper()
	return doExpect(c.e.t, c.request(method, path, body), want, out)
}

func doExpect(t *testing.T, req *http.Request, want int, out any) []byte {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: cannot decode %s: %v", req.Method, req.URL.Path, raw, err)
		}
	}
	return raw
}

// expectError calls and checks status and errorCode (nil: absent).
func (c *client) expectError(method, path string, body any, status int, code *int) apiError {
	c.e.t.Helper()
	var ae apiError
	c.call(method, path, body, status, &ae)
	checkAPIError(c.e.t, ae, status, code)
	return ae
}

func checkAPIError(t *testing.T, ae apiError, status int, code *int) {
	t.Helper()
	if ae.Code != status || ae.Message != http.StatusText(status) {
		t.Errorf("error body code/message = %d/%q, want %d/%q", ae.Code, ae.Message, status, http.StatusText(status))
	}
	switch {
	case code == nil && ae.ErrorCode != nil:
		t.Errorf("errorCode = %d, want none", *ae.ErrorCode)
	case code != nil && (ae.ErrorCode == nil || *ae.ErrorCode != *code):
		t.Errorf("errorCode = %v, want %d (debugInfo %q)", deref(ae.ErrorCode), *code, ae.DebugInfo)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func code(c int) *int { return &c }

// node is the subset of Node the tests read.
type node struct {
	ID                 int64   `json:"id"`
	Type               string  `json:"type"`
	Name               string  `json:"name"`
	ParentID           *int64  `json:"parentId"`
	ParentPath         string  `json:"parentPath"`
	Size               int64   `json:"size"`
	IsEncrypted        bool    `json:"isEncrypted"`
	InheritPermissions *bool   `json:"inheritPermissions"`
	Permissions        perms   `json:"permissions"`
	EncryptionInfo     *encInf `json:"encryptionInfo"`
}

type perms struct {
	Manage, Read, Create, Change, Delete bool
}

type encInf struct {
	UserKeyState string `json:"userKeyState"`
}

type nodeList struct {
	Range struct{ Offset, Limit, Total int64 } `json:"range"`
	Items []node                               `json:"items"`
}

// fileKey is a wrapped file key as the API carries it (opaque to the emulator).
type fileKey struct {
	Key     string `json:"key"`
	IV      string `json:"iv"`
	Version string `json:"version"`
	Tag     string `json:"tag"`
}

func testKey(version, who string) fileKey {
	return fileKey{Key: base64.StdEncoding.EncodeToString([]byte("wrapped-for-" + who)), IV: "AAAAAAAAAAAAAAAA",
		Version: version, Tag: "AAAAAAAAAAAAAAAAAAAAAA=="}
}

type uploadChannel struct {
	UploadURL string `json:"uploadUrl"`
	UploadID  string `json:"uploadId"`
	Token     string `json:"token"`
}

// createChannel opens an upload channel.
func (c *client) createChannel(parent int64, name string, size int64, s3 bool) uploadChannel {
	c.e.t.Helper()
	body := map[string]any{"parentId": parent, "name": name, "size": size}
	if s3 {
		body["directS3Upload"] = true
	}
	var ch uploadChannel
	c.call(http.MethodPost, "/api/v4/nodes/files/uploads", body, http.StatusCreated, &ch)
	if !strings.HasPrefix(ch.UploadURL, c.e.URL+"/api/v4/uploads/") || ch.UploadID == "" || ch.Token == "" {
		c.e.t.Fatalf("bad channel %+v", ch)
	}
	return ch
}

type chunkResp struct {
	Size int64  `json:"size"`
	Hash string `json:"hash"`
}

// sendChunk posts a chunk raw or as multipart to the upload URL (no auth).
func sendChunk(t *testing.T, uploadURL string, offset int64, data []byte, total string, multipartBody bool, want int) chunkResp {
	t.Helper()
	var body io.Reader = bytes.NewReader(data)
	ctype := ""
	if multipartBody {
		var buf bytes.Buffer
		mw := newMultipart(&buf, data)
		body, ctype = &buf, mw
	}
	req, _ := http.NewRequest(http.MethodPost, uploadURL, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if offset >= 0 {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", offset, offset+int64(len(data)), total))
	}
	var cr chunkResp
	if want == http.StatusCreated {
		doExpect(t, req, want, &cr)
	} else {
		doExpect(t, req, want, nil)
	}
	return cr
}

// complete finishes a proxy upload through its upload URL.
func complete(t *testing.T, uploadURL string, body any, want int, out any) []byte {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, uploadURL, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	return doExpect(t, req, want, out)
}

// download fetches a file's bytes through a download URL.
func (c *client) download(fileID int64, rangeHeader string, want int) []byte {
	c.e.t.Helper()
	var d struct {
		DownloadURL string `json:"downloadUrl"`
	}
	c.call(http.MethodPost, fmt.Sprintf("/api/v4/nodes/files/%d/downloads", fileID), nil, http.StatusOK, &d)
	req, _ := http.NewRequest(http.MethodGet, d.DownloadURL, nil)
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
	}
	return doExpect(c.e.t, req, want, nil)
}

// pattern returns n deterministic bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// uploadFile uploads data in chunks of chunkSize into parent and completes
// with key (nil: no fileKey).
func (c *client) uploadFile(parent int64, name string, data []byte, chunkSize int, key *fileKey) node {
	c.e.t.Helper()
	ch := c.createChannel(parent, name, int64(len(data)), false)
	for off := 0; off < len(data) || off == 0; off += chunkSize {
		end := min(off+chunkSize, len(data))
		sendChunk(c.e.t, ch.UploadURL, int64(off), data[off:end], "*", false, http.StatusCreated)
		if len(data) == 0 {
			break
		}
	}
	body := map[string]any{"resolutionStrategy": "fail"}
	if key != nil {
		body["fileKey"] = key
	}
	var n node
	complete(c.e.t, ch.UploadURL, body, http.StatusCreated, &n)
	return n
}

// newMultipart writes data as the multipart part "file" and returns the Content-Type.
func newMultipart(buf *bytes.Buffer, data []byte) string {
	mw := multipart.NewWriter(buf)
	fw, _ := mw.CreateFormFile("file", "chunk.bin")
	_, _ = fw.Write(data)
	_ = mw.Close()
	return mw.FormDataContentType()
}
