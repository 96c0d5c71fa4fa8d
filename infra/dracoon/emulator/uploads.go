package emulator

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxGCMPlaintext is the largest plaintext one AES-GCM message can hold
// (2^36 - 32 bytes); larger uploads into encrypted rooms are 400 -80037.
const maxGCMPlaintext = 1<<36 - 32

// createUploadRequest is CreateFileUploadRequest.
type createUploadRequest struct {
	ParentID              *int64            `json:"parentId"`
	Name                  string            `json:"name"`
	Classification        *int              `json:"classification"`
	Size                  *int64            `json:"size"`
	Expiration            *objectExpiration `json:"expiration"`
	Notes                 *string           `json:"notes"`
	DirectS3Upload        *bool             `json:"directS3Upload"`
	TimestampCreation     *time.Time        `json:"timestampCreation"`
	TimestampModification *time.Time        `json:"timestampModification"`
}

// createUploadResponse is CreateFileUploadResponse.
type createUploadResponse struct {
	UploadURL string `json:"uploadUrl"`
	UploadID  string `json:"uploadId"`
	Token     string `json:"token"`
}

func (s *Server) proxyPath(id string) string {
	return filepath.Join(s.cfg.DataDir, uploadsDir, id+".bin")
}

func (s *Server) s3Dir(id string) string { return filepath.Join(s.cfg.DataDir, uploadsDir, id) }

func (s *Server) partPath(id string, part int) string {
	return filepath.Join(s.s3Dir(id), fmt.Sprintf("part-%05d", part))
}

func (s *Server) contentPath(nodeID int64) string {
	return filepath.Join(s.cfg.DataDir, filesDir, strconv.FormatInt(nodeID, 10)+".bin")
}

// handleCreateUpload is POST /v4/nodes/files/uploads → 201. The caller needs
// create permission in the parent room. directS3Upload is refused (400,
// no errorCode) when system info does not report S3 storage.
func (s *Server) handleCreateUpload(w http.ResponseWriter, r *http.Request, uid int64) error {
	var req createUploadRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.ParentID == nil {
		return apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: parentId")
	}
	if err := checkCommon(req.Name, req.Notes, req.Classification); err != nil {
		return err
	}
	if req.Size != nil && *req.Size < 0 {
		return apiErr(http.StatusBadRequest, codeInvalidPositiveNumber, "Invalid positive number: size")
	}
	var expireAt *time.Time
	if e := req.Expiration; e != nil && e.EnableExpiration && e.ExpireAt != nil {
		t, err := time.Parse(time.RFC3339, *e.ExpireAt)
		if err != nil {
			return apiErrNull(http.StatusBadRequest, "invalid expireAt")
		}
		if !t.After(time.Now()) {
			return apiErr(http.StatusBadRequest, codeExpirationInPast, "Expiration date is in the past")
		}
		expireAt = &t
	}
	direct := req.DirectS3Upload != nil && *req.DirectS3Upload
	s.mu.Lock()
	defer s.mu.Unlock()
	parent := s.st.Nodes[*req.ParentID]
	if parent == nil || parent.Type != nodeTypeRoom || !s.st.visible(uid, parent) {
		return apiErr(http.StatusNotFound, codeContainerNotFound, "Container not found")
	}
	if !s.st.perms(uid, parent).Create {
		return errForbidden("create permission in the parent room is required")
	}
	if parent.Encrypted && req.Size != nil && *req.Size > maxGCMPlaintext {
		return apiErr(http.StatusBadRequest, codeExceedsGCMLimit, "Exceeds maximum data length for AES GCM encryption")
	}
	if direct && !s.st.S3DirectUpload {
		return apiErrNull(http.StatusBadRequest, "directS3Upload requested but the emulator is not seeded with s3DirectUpload")
	}
	id, err := randomToken(16)
	if err != nil {
		return err
	}
	token, err := randomToken(24)
	if err != nil {
		return err
	}
	u := &uploadRec{ID: id, Token: token, UserID: uid, ParentID: parent.ID, Name: req.Name, DeclaredSize: req.Size,
		Classification: parent.Classification, ExpireAt: expireAt, DirectS3: direct, CreatedAt: time.Now().UTC(),
		TimestampC: req.TimestampCreation, TimestampM: req.TimestampModification, Status: uploadTransfer}
	if req.Classification != nil {
		u.Classification = *req.Classification
	}
	if req.Notes != nil {
		u.Notes = *req.Notes
	}
	if direct {
		err = os.MkdirAll(s.s3Dir(id), 0o755)
	} else {
		err = os.WriteFile(s.proxyPath(id), nil, 0o644)
	}
	if err != nil {
		return fmt.Errorf("cannot create upload storage: %w", err)
	}
	s.st.Uploads[id] = u
	if err := s.commitLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, createUploadResponse{
		UploadURL: s.baseURL(r) + "/api/v4/uploads/" + token, UploadID: id, Token: token})
	return nil
}

// uploadLockLocked returns the mutex that serializes writes to one upload.
// Call with mu held.
func (s *Server) uploadLockLocked(id string) *sync.Mutex {
	l := s.uploadLocks[id]
	if l == nil {
		l = &sync.Mutex{}
		s.uploadLocks[id] = l
	}
	return l
}

// lockUpload locks the write mutex of upload id and returns its unlock.
// Call without s.mu held.
func (s *Server) lockUpload(id string) (unlock func()) {
	s.mu.Lock()
	lock := s.uploadLockLocked(id)
	s.mu.Unlock()
	lock.Lock()
	return lock.Unlock
}

// uploadIDByToken resolves an upload token, or 404 -20501. The token is
// compared with every upload's token by subtle.ConstantTimeCompare, and the
// scan does not stop at a match, so the answer time tells nothing about how
// much of a guessed token is right (only its length, which is public). A map
// keyed by the token's SHA-256 (as tokenKey does for OAuth and download
// tokens) would be constant-time too, but would need an index kept in step
// with every upload change; the scan over the open uploads is cheap.
func (s *Server) uploadIDByToken(token string) (string, error) {
	notFound := apiErr(http.StatusNotFound, codeUploadNotFound, "Upload not found")
	if token == "" {
		return "", notFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	found := ""
	for id, u := range s.st.Uploads {
		if subtle.ConstantTimeCompare([]byte(u.Token), []byte(token)) == 1 {
			found = id
		}
	}
	if found == "" {
		return "", notFound
	}
	return found, nil
}

// ownUploadLocked checks that upload id exists and belongs to uid. Call with mu held.
func (s *Server) ownUploadLocked(id string, uid int64) (*uploadRec, error) {
	u := s.st.Uploads[id]
	if u == nil {
		return nil, apiErr(http.StatusNotFound, codeUploadNotFound, "Upload not found")
	}
	if u.UserID != uid {
		return nil, errForbidden("the upload channel belongs to another user")
	}
	return u, nil
}

// handleChunkByToken is POST /v4/uploads/{token} (no authentication).
func (s *Server) handleChunkByToken(w http.ResponseWriter, r *http.Request) error {
	id, err := s.uploadIDByToken(r.PathValue("token"))
	if err == nil {
		err = s.writeChunk(w, r, id)
	}
	return drainOnError(w, r, err)
}

// handleChunkByID is the deprecated POST /v4/nodes/files/uploads/{upload_id}.
func (s *Server) handleChunkByID(w http.ResponseWriter, r *http.Request, uid int64, id string) error {
	s.mu.Lock()
	_, err := s.ownUploadLocked(id, uid)
	s.mu.Unlock()
	if err == nil {
		err = s.writeChunk(w, r, id)
	}
	return drainOnError(w, r, err)
}

// drainOnError reads what is left of the request body before err is
// answered, so that a client still sending its chunk reads the error
// instead of running into a closed connection. A body too large to drain
// gets "Connection: close" with the answer.
func drainOnError(w http.ResponseWriter, r *http.Request, err error) error {
	if err != nil && !drainBody(r) {
		w.Header().Set("Connection", "close")
	}
	return err
}

// chunkResponse is ChunkUploadResponse: the chunk's size and MD5 (hex).
type chunkResponse struct {
	Size int64  `json:"size"`
	Hash string `json:"hash"`
}

// copyBufSize is the buffer size for streaming upload bodies.
const copyBufSize = 1 << 20

// chunkMap maps the start offset of every chunk a proxy upload received to
// the chunk's length.
type chunkMap map[int64]int64

// copyBody copies src to dst through a pooled copyBufSize buffer.
func (s *Server) copyBody(dst io.Writer, src io.Reader) (int64, error) {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

// writeChunk stores one chunk of a proxy upload, streaming it to disk (with
// Config.DiscardContent: only hashing and counting it). The body is either
// multipart/form-data with a part named "file" or the raw bytes with any
// Content-Type. The chunk's position is the start offset of Content-Range
// (no header: 0); the end and total are not checked, as clients send
// inclusive or exclusive ends. A chunk starting at the bytes received so far
// is appended. A chunk starting where an earlier chunk started and as long
// as that one is a resend and overwrites it (the official C# SDK resends a
// chunk up to three times). Any other start, and a resend of another length,
// is 400 -80021 [inferred: whether DRACOON accepts other overlapping or
// out-of-order ranges is not documented]. Chunk boundaries live in memory:
// after a restart only appending is accepted.
func (s *Server) writeChunk(w http.ResponseWriter, r *http.Request, id string) error {
	start, err := contentRangeStart(r.Header.Get("Content-Range"))
	if err != nil {
		return err
	}
	s.mu.Lock()
	u := s.st.Uploads[id]
	if u == nil {
		s.mu.Unlock()
		return apiErr(http.StatusNotFound, codeUploadNotFound, "Upload not found")
	}
	if u.DirectS3 {
		s.mu.Unlock()
		return apiErr(http.StatusBadRequest, codeS3DirectUploadEnforced, "S3 direct upload is enforced for this upload channel")
	}
	lock := s.uploadLockLocked(id)
	s.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	s.mu.Lock()
	u = s.st.Uploads[id]
	prevLen, known := s.chunks[id][start]
	s.mu.Unlock()
	if u == nil {
		return apiErr(http.StatusNotFound, codeUploadNotFound, "Upload not found")
	}
	body, err := chunkBody(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.proxyPath(id), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cannot open upload: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot stat upload: %w", err)
	}
	received := info.Size()
	var n int64
	var sum []byte
	switch {
	case start == received:
		n, sum, err = s.appendChunk(f, start, body)
	case known && start+prevLen <= received:
		n, sum, err = s.resendChunk(f, id, start, prevLen, body)
	default:
		return apiErr(http.StatusBadRequest, codeIncorrectContentRange,
			fmt.Sprintf("Incorrect upload Content-Range: chunk starts at %d, upload has %d bytes and no chunk started there", start, received))
	}
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		if start == received {
			_ = os.Truncate(s.proxyPath(id), start)
		}
		return fmt.Errorf("cannot write upload: %w", err)
	}
	s.mu.Lock()
	if s.chunks[id] == nil {
		s.chunks[id] = chunkMap{}
	}
	s.chunks[id][start] = n
	if s.cfg.DiscardContent && !u.Discarded {
		u.Discarded = true
		err = s.commitLocked()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, chunkResponse{Size: n, Hash: hex.EncodeToString(sum)})
	return nil
}

// appendChunk writes body at start, the end of the upload, and returns its
// length and MD5. With DiscardContent the file only grows (sparse). On an
// error the upload is cut back to start.
func (s *Server) appendChunk(f *os.File, start int64, body io.Reader) (int64, []byte, error) {
	h := md5.New()
	var dst io.Writer = h
	if !s.cfg.DiscardContent {
		dst = io.MultiWriter(io.NewOffsetWriter(f, start), h)
	}
	n, err := s.copyBody(dst, body)
	if err != nil {
		_ = f.Truncate(start)
		return 0, nil, apiErrNull(http.StatusBadRequest, "cannot read chunk: "+err.Error())
	}
	if s.cfg.DiscardContent {
		if err := f.Truncate(start + n); err != nil {
			_ = f.Truncate(start)
			return 0, nil, fmt.Errorf("cannot extend upload: %w", err)
		}
	}
	return n, h.Sum(nil), nil
}

// resendChunk replaces the want bytes at start, a chunk received before,
// with body. A body of another length is 400 -80021 and changes nothing, so
// it is buffered in a temporary file first.
func (s *Server) resendChunk(f *os.File, id string, start, want int64, body io.Reader) (int64, []byte, error) {
	h := md5.New()
	limited := io.LimitReader(body, want+1) // one byte more tells a longer body
	wrongLength := func(n int64) error {
		return apiErr(http.StatusBadRequest, codeIncorrectContentRange, fmt.Sprintf(
			"Incorrect upload Content-Range: a chunk resent at %d must have the %d bytes of the chunk received there, not %d", start, want, n))
	}
	if s.cfg.DiscardContent {
		n, err := s.copyBody(h, limited)
		if err != nil {
			return 0, nil, apiErrNull(http.StatusBadRequest, "cannot read chunk: "+err.Error())
		}
		if n != want {
			return 0, nil, wrongLength(n)
		}
		return n, h.Sum(nil), nil
	}
	tmp, err := os.CreateTemp(filepath.Join(s.cfg.DataDir, uploadsDir), id+".resend-*.tmp")
	if err != nil {
		return 0, nil, fmt.Errorf("cannot buffer resent chunk: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := s.copyBody(io.MultiWriter(tmp, h), limited)
	if err != nil {
		return 0, nil, apiErrNull(http.StatusBadRequest, "cannot read chunk: "+err.Error())
	}
	if n != want {
		return 0, nil, wrongLength(n)
	}
	if _, err := s.copyBody(io.NewOffsetWriter(f, start), io.NewSectionReader(tmp, 0, n)); err != nil {
		return 0, nil, fmt.Errorf("cannot overwrite resent chunk: %w", err)
	}
	return n, h.Sum(nil), nil
}

// contentRangeStart parses the start offset of "bytes a-b/c" (also "bytes=a-b/*").
func contentRangeStart(h string) (int64, error) {
	if h == "" {
		return 0, nil
	}
	bad := apiErr(http.StatusBadRequest, codeIncorrectContentRange, fmt.Sprintf("Incorrect upload Content-Range %q", h))
	v, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes")
	if !ok {
		return 0, bad
	}
	v = strings.TrimLeft(v, " =")
	first, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, bad
	}
	start, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil || start < 0 {
		return 0, bad
	}
	return start, nil
}

// chunkBody returns the chunk bytes of r: the "file" part of a multipart
// body, or the raw body.
func chunkBody(r *http.Request) (io.Reader, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return r.Body, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, apiErrNull(http.StatusBadRequest, "invalid multipart body: "+err.Error())
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, apiErr(http.StatusBadRequest, codeMandatoryField, `Mandatory fields cannot be empty: multipart part "file"`)
		}
		if err != nil {
			return nil, apiErrNull(http.StatusBadRequest, "invalid multipart body: "+err.Error())
		}
		if p.FormName() == "file" {
			return p, nil
		}
	}
}

// PreallocateUpload extends the proxy upload uploadID to size bytes with a
// sparse hole, as if that many bytes had been received. It exists for tests
// of offsets beyond 4 GiB without sending them.
func (s *Server) PreallocateUpload(uploadID string, size int64) error {
	s.mu.Lock()
	u := s.st.Uploads[uploadID]
	if u == nil || u.DirectS3 {
		s.mu.Unlock()
		return fmt.Errorf("no proxy upload %q", uploadID)
	}
	lock := s.uploadLockLocked(uploadID)
	s.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()
	if err := os.Truncate(s.proxyPath(uploadID), size); err != nil {
		return fmt.Errorf("cannot extend upload: %w", err)
	}
	return nil
}

// completeRequest is CompleteUploadRequest.
type completeRequest struct {
	ResolutionStrategy *string  `json:"resolutionStrategy"`
	KeepShareLinks     bool     `json:"keepShareLinks"`
	FileName           *string  `json:"fileName"`
	FileKey            *fileKey `json:"fileKey"`
	UserFileKeyList    *struct {
		Items []userKeyItem `json:"items"`
	} `json:"userFileKeyList"`
}

type userKeyItem struct {
	UserID  int64    `json:"userId"`
	FileKey *fileKey `json:"fileKey"`
}

// completion is what both upload modes need to turn an upload into a node.
type completion struct {
	Resolution string
	FileName   string
	FileKey    *fileKey
	UserKeys   []userKeyItem
}

func (c *completeRequest) completion() completion {
	out := completion{Resolution: "autorename", FileKey: c.FileKey}
	if c.ResolutionStrategy != nil {
		out.Resolution = *c.ResolutionStrategy
	}
	if c.FileName != nil {
		out.FileName = *c.FileName
	}
	if c.UserFileKeyList != nil {
		out.UserKeys = c.UserFileKeyList.Items
	}
	return out
}

// handleCompleteByToken is PUT /v4/uploads/{token} (no authentication) → 201 Node.
func (s *Server) handleCompleteByToken(w http.ResponseWriter, r *http.Request) error {
	id, err := s.uploadIDByToken(r.PathValue("token"))
	if err != nil {
		return err
	}
	return s.completeProxy(w, r, id)
}

// handleCompleteByID is the deprecated PUT /v4/nodes/files/uploads/{upload_id}.
func (s *Server) handleCompleteByID(w http.ResponseWriter, r *http.Request, uid int64) error {
	id := r.PathValue("upload_id")
	s.mu.Lock()
	_, err := s.ownUploadLocked(id, uid)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.completeProxy(w, r, id)
}

func (s *Server) completeProxy(w http.ResponseWriter, r *http.Request, id string) error {
	var req completeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c := req.completion()
	defer s.lockUpload(id)()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Uploads[id]
	if u == nil {
		return apiErr(http.StatusNotFound, codeUploadNotFound, "Upload not found")
	}
	if u.DirectS3 {
		return apiErr(http.StatusBadRequest, codeS3DirectUploadEnforced, "S3 direct upload is enforced for this upload channel")
	}
	n, err := s.finishUploadLocked(u, c, s.proxyPath(id))
	if err != nil {
		return err
	}
	delete(s.st.Uploads, id)
	delete(s.uploadLocks, id)
	delete(s.chunks, id)
	if err := s.commitLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.st.nodeForUser(u.UserID, n, true))
	return nil
}

// checkCompletionLocked validates a completion against the current state and
// returns the final name and the node it replaces (overwrite), if any.
// Call with mu held.
func (s *Server) checkCompletionLocked(u *uploadRec, c completion) (string, *nodeRec, error) {
	switch c.Resolution {
	case "autorename", "overwrite", "fail":
	default:
		return "", nil, apiErr(http.StatusBadRequest, codeIllegalResolution, "Illegal resolution strategy")
	}
	name := u.Name
	if c.FileName != "" {
		name = c.FileName
		if err := checkNodeName(name); err != nil {
			return "", nil, errBadName(err)
		}
	}
	parent := s.st.Nodes[u.ParentID]
	if parent == nil {
		return "", nil, apiErr(http.StatusNotFound, codeContainerNotFound, "Container not found")
	}
	if parent.Encrypted && !c.FileKey.valid() {
		return "", nil, apiErr(http.StatusBadRequest, codeFileKeyRequired, "File key must be set for an upload into encrypted room")
	}
	if !parent.Encrypted && (c.FileKey != nil || len(c.UserKeys) > 0) {
		return "", nil, apiErr(http.StatusBadRequest, codeRoomNotEncrypted, "(Target) room is not encrypted")
	}
	for _, k := range c.UserKeys {
		if s.st.Users[k.UserID] == nil {
			return "", nil, apiErr(http.StatusNotFound, codeUserNotFound, "User not found")
		}
		if !k.FileKey.valid() {
			return "", nil, apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: userFileKeyList.items.fileKey")
		}
	}
	existing := s.st.childByName(parent.ID, name)
	if existing == nil {
		return name, nil, nil
	}
	switch c.Resolution {
	case "overwrite":
		if existing.Type != nodeTypeFile {
			return "", nil, apiErr(http.StatusConflict, codeContainerNoOverwrite, "Container cannot be overwritten")
		}
		return name, existing, nil
	case "fail":
		// The document's only 409 example for completion is -40010.
		return "", nil, apiErr(http.StatusConflict, codeContainerNoOverwrite, "Node with specified name already exists")
	}
	ext := ""
	base := name
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i:]
	}
	for i := 1; ; i++ {
		candidate := fmt.Sprintf("%s (%d)%s", base, i, ext)
		if s.st.childByName(parent.ID, candidate) == nil {
			return candidate, nil, nil
		}
	}
}

// finishUploadLocked turns the content at src into a file node below the
// upload's parent, storing the uploader's file key and userFileKeyList.
// Overwriting replaces the old node (a new id; the old node and its keys are
// removed) [inferred: DRACOON keeps versions]. Call with mu held.
func (s *Server) finishUploadLocked(u *uploadRec, c completion, src string) (*nodeRec, error) {
	name, replaced, err := s.checkCompletionLocked(u, c)
	if err != nil {
		return nil, err
	}
	parent := s.st.Nodes[u.ParentID]
	info, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("cannot stat upload content: %w", err)
	}
	now := time.Now().UTC()
	n := &nodeRec{ID: s.st.NextNodeID, Type: nodeTypeFile, Name: name, ParentID: parent.ID, Encrypted: parent.Encrypted,
		Classification: u.Classification, Notes: u.Notes, Size: info.Size(), CreatedAt: now, CreatedBy: u.UserID,
		UpdatedAt: now, UpdatedBy: u.UserID, TimestampCreation: u.TimestampC, TimestampModification: u.TimestampM,
		ExpireAt: u.ExpireAt, ContentDiscarded: u.Discarded}
	if err := os.Rename(src, s.contentPath(n.ID)); err != nil {
		return nil, fmt.Errorf("cannot store file content: %w", err)
	}
	s.st.NextNodeID++
	if u.DeclaredSize != nil && *u.DeclaredSize != n.Size {
		s.log.WithField("upload_id", u.ID).WithField("declared_size", *u.DeclaredSize).
			WithField("size", n.Size).Warn("upload size differs from the size declared at channel creation")
	}
	if replaced != nil {
		s.st.deleteFileNode(replaced.ID)
		_ = os.Remove(s.contentPath(replaced.ID))
	}
	s.st.Nodes[n.ID] = n
	if c.FileKey != nil {
		s.st.putFileKey(n.ID, u.UserID, *c.FileKey)
	}
	for _, k := range c.UserKeys {
		s.st.putFileKey(n.ID, k.UserID, *k.FileKey)
	}
	return n, nil
}

// handleCancelByToken is DELETE /v4/uploads/{token} → 204.
func (s *Server) handleCancelByToken(w http.ResponseWriter, r *http.Request) error {
	id, err := s.uploadIDByToken(r.PathValue("token"))
	if err != nil {
		return err
	}
	return s.cancel(w, id)
}

// handleCancelByID is DELETE /v4/nodes/files/uploads/{upload_id} → 204.
func (s *Server) handleCancelByID(w http.ResponseWriter, r *http.Request, uid int64) error {
	id := r.PathValue("upload_id")
	s.mu.Lock()
	_, err := s.ownUploadLocked(id, uid)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.cancel(w, id)
}

// dropUploadLocked removes an upload and its stored bytes. Call with mu
// held.
func (s *Server) dropUploadLocked(id string) {
	delete(s.st.Uploads, id)
	delete(s.uploadLocks, id)
	delete(s.chunks, id)
	_ = os.Remove(s.proxyPath(id))
	_ = os.RemoveAll(s.s3Dir(id))
}

// cancel drops an upload and its stored bytes. An S3 upload that is being
// finished cannot be cancelled (400 -20503); one that is done is not found
// (404 -20501: its channel is consumed, only its status remains).
func (s *Server) cancel(w http.ResponseWriter, id string) error {
	defer s.lockUpload(id)()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Uploads[id]
	if u == nil {
		return apiErr(http.StatusNotFound, codeUploadNotFound, "Upload not found")
	}
	switch u.Status {
	case uploadFinishing:
		return apiErr(http.StatusBadRequest, codeUploadClosed, "Upload channel is closed")
	case uploadDone:
		return apiErr(http.StatusNotFound, codeUploadNotFound, "Upload not found")
	}
	s.dropUploadLocked(id)
	if err := s.commitLocked(); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleUploadStatus is GET /v4/nodes/files/uploads/{upload_id} → 200
// S3FileUploadStatus {status, node (done), errorDetails (error)}. A finished
// S3 upload keeps answering its final status; a completed proxy upload is
// gone (404 -20501).
func (s *Server) handleUploadStatus(w http.ResponseWriter, r *http.Request, uid int64, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.ownUploadLocked(id, uid)
	if err != nil {
		return err
	}
	out := map[string]any{"status": u.Status}
	if u.Status == uploadDone {
		if n := s.st.Nodes[u.NodeID]; n != nil {
			out["node"] = s.st.nodeForUser(uid, n, true)
		}
	}
	if u.Status == uploadError && u.Failure != nil {
		out["errorDetails"] = u.Failure
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
