// Package emulator is a local, persistent emulator of the DRACOON REST API
// (version 4.26.7 of the OpenAPI document) for tests, the local stack and the
// demo. It covers what this project's client uses: OAuth password and refresh
// grants, system and account information, user key pairs, node listing and
// search, rooms, proxy and S3-direct uploads (with its own presigned-URL
// endpoint), file keys and downloads. It stores only what clients send —
// ciphertext and wrapped keys — and never needs a private key.
//
// A Server is an http.Handler; serve it with httptest.NewServer in tests or
// with net/http in the CLI. State lives in Config.DataDir and survives restarts.
package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Defaults for Config fields left zero.
const (
	// DefaultAccessTokenLifetime is DRACOON's default for new OAuth clients.
	DefaultAccessTokenLifetime = 8 * time.Hour
	// DefaultRefreshTokenLifetime is DRACOON's default for new OAuth clients.
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	// DefaultS3FinishDelay is how long an S3 upload stays "finishing".
	DefaultS3FinishDelay = 300 * time.Millisecond
	// DefaultDownloadTokenLifetime is how long a download URL stays valid.
	DefaultDownloadTokenLifetime = time.Hour
	// DefaultPresignedURLLifetime is how long a presigned part URL stays valid.
	DefaultPresignedURLLifetime = time.Hour
	// DefaultUploadLifetime is how long an upload channel stays open
	// without being completed or cancelled before the emulator drops it,
	// as DRACOON expires abandoned channels.
	DefaultUploadLifetime = 24 * time.Hour
)

// S3PathPrefix is the path of the emulator's fake presigned S3 endpoint. It is
// not part of the DRACOON API (speccheck skips it explicitly).
const S3PathPrefix = "/emulator-s3/"

// maxJSONBody bounds JSON request bodies.
const maxJSONBody = 4 << 20

// Config configures a Server. Only DataDir is required.
type Config struct {
	// DataDir holds state.json, file contents and in-progress uploads. It is
	// created when missing; an existing one is reused.
	DataDir string
	// Seed, if not nil, creates what it describes and is missing from DataDir.
	Seed *Seed
	// Faults injects random faults; the zero value injects none.
	Faults Faults
	// PublicURL is the scheme://host[:port] that clients reach the emulator at,
	// used in uploadUrl, downloadUrl and presigned URLs. Empty means: taken from
	// each request's Host header.
	PublicURL string
	// S3FinishDelay is how long a completed S3 upload reports "finishing"
	// before "done". Zero means DefaultS3FinishDelay; negative means none.
	// DiscardContent overrides it with none.
	S3FinishDelay time.Duration
	// DiscardContent is the benchmark storage mode: uploaded bytes (proxy
	// chunks and S3 parts) are hashed and counted but not stored, so that
	// the emulator does not limit the throughput of an uploading client.
	// Proxy chunks are answered with their real MD5 (clients check it); S3
	// parts get a cheap ETag (CRC-32C and length) instead of their MD5.
	// Files keep their sizes; downloading them fails with 404.
	DiscardContent bool
	// AccessTokenLifetime: zero means DefaultAccessTokenLifetime.
	AccessTokenLifetime time.Duration
	// UploadLifetime is how long an open upload channel lives; zero means
	// DefaultUploadLifetime.
	UploadLifetime time.Duration
	// RefreshTokenLifetime: zero means DefaultRefreshTokenLifetime.
	RefreshTokenLifetime time.Duration
	// Logger receives one line per request and lifecycle events. Nil discards.
	Logger logrus.FieldLogger
}

func (c *Config) setDefaults() {
	if c.S3FinishDelay == 0 {
		c.S3FinishDelay = DefaultS3FinishDelay
	}
	if c.S3FinishDelay < 0 || c.DiscardContent {
		c.S3FinishDelay = 0
	}
	if c.UploadLifetime == 0 {
		c.UploadLifetime = DefaultUploadLifetime
	}
	if c.AccessTokenLifetime == 0 {
		c.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if c.RefreshTokenLifetime == 0 {
		c.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	if c.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Logger = l
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("emulator.Config.DataDir is empty"))
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		errs = append(errs, fmt.Errorf("emulator.Config.PublicURL %q is not an http(s) URL", c.PublicURL))
	}
	if c.AccessTokenLifetime < 0 || c.RefreshTokenLifetime < 0 || c.UploadLifetime < 0 {
		errs = append(errs, errors.New("emulator.Config token and upload lifetimes must not be negative"))
	}
	if err := c.Faults.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Server is the emulator. It is an http.Handler and safe for concurrent use.
// Call Close when done so that pending S3 completions stop.
type Server struct {
	cfg     Config
	log     logrus.FieldLogger
	handler http.Handler
	faults  *faultInjector
	bufs    sync.Pool // *[]byte of copyBufSize, for streaming upload bodies
	counter requestCounter

	mu          sync.Mutex
	st          *state
	uploadLocks map[string]*sync.Mutex // per upload id: serializes chunk and part writes
	chunks      map[string]chunkMap    // per proxy upload id: the chunks received (not persisted)
	timers      map[string]*time.Timer // pending S3 completions
	lastExpiry  time.Time              // of abandoned upload channels
	closed      bool
	wg          sync.WaitGroup
}

// New opens (or creates) the state in cfg.DataDir, applies cfg.Seed and
// returns the server. It resumes S3 completions that were pending.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	st, err := loadState(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		st:          st,
		uploadLocks: map[string]*sync.Mutex{},
		chunks:      map[string]chunkMap{},
		timers:      map[string]*time.Timer{},
		faults:      newFaultInjector(cfg.Faults),
	}
	s.bufs.New = func() any {
		b := make([]byte, copyBufSize)
		return &b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.pruneExpired(time.Now())
	if cfg.Seed != nil {
		if err := applySeed(st, cfg.Seed); err != nil {
			return nil, fmt.Errorf("cannot apply seed: %w", err)
		}
	}
	if err := saveState(cfg.DataDir, st); err != nil {
		return nil, err
	}
	for id, u := range st.Uploads {
		if u.Status == uploadFinishing {
			s.scheduleFinishLocked(id, time.Until(u.FinishAt))
		}
	}
	s.handler = s.logRequests(s.faults.middleware(s.log, s.routes()))
	return s, nil
}

// ServeHTTP serves the DRACOON API, the OAuth endpoints and the fake S3 endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.expireUploads()
	s.handler.ServeHTTP(w, r)
}

// expireUploads drops the upload channels open for longer than
// Config.UploadLifetime, at most once a second.
func (s *Server) expireUploads() {
	now := time.Now()
	s.mu.Lock()
	if now.Sub(s.lastExpiry) < time.Second {
		s.mu.Unlock()
		return
	}
	s.lastExpiry = now
	var expired []string
	for id, u := range s.st.Uploads {
		if u.Status == uploadTransfer && now.Sub(u.CreatedAt) > s.cfg.UploadLifetime {
			expired = append(expired, id)
		}
	}
	s.mu.Unlock()
	for _, id := range expired {
		s.expireUpload(id, now)
	}
}

// expireUpload drops the upload id if it is still open and expired.
func (s *Server) expireUpload(id string, now time.Time) {
	defer s.lockUpload(id)()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Uploads[id]
	if u == nil || u.Status != uploadTransfer || now.Sub(u.CreatedAt) <= s.cfg.UploadLifetime {
		return
	}
	s.dropUploadLocked(id)
	if err := s.commitLocked(); err != nil {
		s.log.WithError(err).Error("cannot save the state after expiring an upload channel")
		return
	}
	s.log.WithField("upload_id", id).Info("upload channel expired")
}

// Close stops pending S3 completions (they resume on the next New with the
// same DataDir) and waits for running ones.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for id, t := range s.timers {
		if t.Stop() {
			s.wg.Done()
		}
		delete(s.timers, id)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// InjectFault makes the next rule.Times requests that match rule fail as the
// rule says, independent of Config.Faults. Meant for client tests.
func (s *Server) InjectFault(rule FaultRule) { s.faults.inject(rule) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", s.handleToken)
	mux.HandleFunc("POST /oauth/revoke", s.handleRevoke)

	mux.HandleFunc("GET /api/v4/public/system/info", s.public(s.handleSystemInfo))
	mux.HandleFunc("GET /api/v4/config/info/general", s.authed(s.handleGeneralInfo))
	mux.HandleFunc("GET /api/v4/config/info/policies/algorithms", s.authed(s.handleAlgorithms))
	mux.HandleFunc("GET /api/v4/user/account", s.authed(s.handleAccount))
	mux.HandleFunc("GET /api/v4/user/account/keypair", s.authed(s.handleGetKeyPair))
	mux.HandleFunc("POST /api/v4/user/account/keypair", s.authed(s.handleSetKeyPair))
	mux.HandleFunc("DELETE /api/v4/user/account/keypair", s.authed(s.handleDeleteKeyPair))
	mux.HandleFunc("GET /api/v4/user/account/keypairs", s.authed(s.handleGetKeyPairs))

	mux.HandleFunc("GET /api/v4/nodes", s.authed(s.handleListNodes))
	mux.HandleFunc("GET /api/v4/nodes/search", s.authed(s.handleSearchNodes))
	mux.HandleFunc("GET /api/v4/nodes/{node_id}", s.authed(s.handleGetNode))
	mux.HandleFunc("GET /api/v4/nodes/missingFileKeys", s.authed(s.handleMissingFileKeys))
	mux.HandleFunc("POST /api/v4/nodes/files/keys", s.authed(s.handleSetFileKeys))

	mux.HandleFunc("POST /api/v4/nodes/rooms", s.authed(s.handleCreateRoom))
	mux.HandleFunc("PUT /api/v4/nodes/rooms/{room_id}/encrypt", s.authed(s.handleEncryptRoom))
	mux.HandleFunc("GET /api/v4/nodes/rooms/{room_id}/users", s.authed(s.handleRoomUsers))
	mux.HandleFunc("PUT /api/v4/nodes/rooms/{room_id}/users", s.authed(s.handleSetRoomUsers))

	mux.HandleFunc("POST /api/v4/nodes/files/uploads", s.authed(s.handleCreateUpload))
	// /nodes/files/{file_id}/X and /nodes/files/uploads/{upload_id} overlap as
	// ServeMux patterns, so the two-segment form is dispatched by hand.
	mux.HandleFunc("GET /api/v4/nodes/files/{a}/{b}", s.authed(s.dispatchFilesGet))
	mux.HandleFunc("POST /api/v4/nodes/files/{a}/{b}", s.authed(s.dispatchFilesPost))
	mux.HandleFunc("PUT /api/v4/nodes/files/uploads/{upload_id}", s.authed(s.handleCompleteByID))
	mux.HandleFunc("DELETE /api/v4/nodes/files/uploads/{upload_id}", s.authed(s.handleCancelByID))
	mux.HandleFunc("POST /api/v4/nodes/files/uploads/{upload_id}/s3_urls", s.authed(s.handleS3URLs))
	mux.HandleFunc("PUT /api/v4/nodes/files/uploads/{upload_id}/s3", s.authed(s.handleCompleteS3))

	mux.HandleFunc("POST /api/v4/uploads/{token}", s.public(s.handleChunkByToken))
	mux.HandleFunc("PUT /api/v4/uploads/{token}", s.public(s.handleCompleteByToken))
	mux.HandleFunc("DELETE /api/v4/uploads/{token}", s.public(s.handleCancelByToken))

	mux.HandleFunc("GET /api/v4/downloads/{token}", s.public(s.handleDownload))
	mux.HandleFunc("PUT "+S3PathPrefix+"{upload_id}/{part}", s.handleS3Put)
	mux.HandleFunc("GET "+RequestsPath, s.handleRequests)

	mux.HandleFunc("/api/", s.public(func(w http.ResponseWriter, r *http.Request) error {
		return apiErrNull(http.StatusNotFound, "no such route in the emulator: "+r.Method+" "+r.URL.Path)
	}))
	return mux
}

// apiHandler handles an authenticated /api request for user uid.
type apiHandler func(w http.ResponseWriter, r *http.Request, uid int64) error

// authed authenticates the request (Authorization: Bearer or X-Sds-Auth-Token)
// and answers errors in the API's error shape.
func (s *Server) authed(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		uid, err := s.authenticate(r)
		if err == nil {
			err = h(w, r, uid)
		}
		if err != nil {
			writeAPIError(w, err)
		}
	}
}

// public is authed without authentication (upload and download tokens, system info).
func (s *Server) public(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeAPIError(w, err)
		}
	}
}

func (s *Server) dispatchFilesGet(w http.ResponseWriter, r *http.Request, uid int64) error {
	a, b := r.PathValue("a"), r.PathValue("b")
	switch {
	case a == "uploads":
		return s.handleUploadStatus(w, r, uid, b)
	case b == "user_file_key":
		return s.handleUserFileKey(w, r, uid, a)
	}
	return apiErrNull(http.StatusNotFound, "no such route in the emulator")
}

func (s *Server) dispatchFilesPost(w http.ResponseWriter, r *http.Request, uid int64) error {
	a, b := r.PathValue("a"), r.PathValue("b")
	switch {
	case a == "uploads":
		return s.handleChunkByID(w, r, uid, b)
	case b == "downloads":
		return s.handleCreateDownload(w, r, uid, a)
	}
	return apiErrNull(http.StatusNotFound, "no such route in the emulator")
}

// commitLocked persists the state. Call with mu held after every mutation.
func (s *Server) commitLocked() error {
	if err := saveState(s.cfg.DataDir, s.st); err != nil {
		s.log.WithError(err).Error("cannot persist emulator state")
		return err
	}
	return nil
}

// baseURL is the public scheme://host of the emulator for r.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// decodeJSON reads a JSON request body into v.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJSONBody))
	if err := dec.Decode(v); err != nil {
		return apiErrNull(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	return nil
}

// fmtTime formats t the way DRACOON does (RFC 3339, milliseconds, UTC).
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

// parseID parses a positive int64 path or query value.
func parseID(v string) (int64, error) {
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, apiErr(http.StatusBadRequest, codeInvalidPositiveNumber, fmt.Sprintf("invalid positive number %q", v))
	}
	return id, nil
}

// parseRange reads offset and limit. A missing limit is defLimit; a limit
// above maxLimit, below 1, or a negative offset is 400 -80024.
func parseRange(r *http.Request, defLimit, maxLimit int64) (offset, limit int64, err error) {
	q := r.URL.Query()
	limit = defLimit
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.ParseInt(v, 10, 64); err != nil || offset < 0 {
			return 0, 0, apiErr(http.StatusBadRequest, codeInvalidRangeParameters, "invalid range parameters: offset")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.ParseInt(v, 10, 64); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, apiErr(http.StatusBadRequest, codeInvalidRangeParameters,
				fmt.Sprintf("invalid range parameters: limit must be 1..%d", maxLimit))
		}
	}
	return offset, limit, nil
}

// page returns the [offset, offset+limit) window of n items.
func page(n int, offset, limit int64) (lo, hi int) {
	if offset >= int64(n) {
		return n, n
	}
	lo = int(offset)
	hi = n
	if int64(hi-lo) > limit {
		hi = lo + int(limit)
	}
	return lo, hi
}

// statusRecorder remembers the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the first status.
func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Hijack and Flush.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests logs one line per request with its route (never the path:
// upload and download paths carry secret tokens) and counts it by route.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := routeOf(r)
		if route != "GET "+RequestsPath {
			s.counter.add(route)
		}
		s.log.WithFields(logrus.Fields{
			"route":       route,
			"status":      rec.status,
			"duration_ms": time.Since(start).Milliseconds(),
			"remote_addr": r.RemoteAddr,
		}).Debug("request")
	})
}

// OpenUploads returns how many upload channels are open: created and
// neither completed nor cancelled (a test hook: a client must not leave
// channels behind).
func (s *Server) OpenUploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, u := range s.st.Uploads {
		if u.Status == uploadTransfer {
			n++
		}
	}
	return n
}

// DeleteNode deletes the node id and every node below it, with their
// members and file keys, as a user deleting a room would (a test hook:
// the emulator has no delete route).
func (s *Server) DeleteNode(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := map[int64]bool{id: true}
	for changed := true; changed; {
		changed = false
		for nid, n := range s.st.Nodes {
			if !gone[nid] && gone[n.ParentID] {
				gone[nid], changed = true, true
			}
		}
	}
	for nid := range gone {
		delete(s.st.Nodes, nid)
		delete(s.st.Members, nid)
		delete(s.st.FileKeys, nid)
	}
	_ = s.commitLocked()
}
