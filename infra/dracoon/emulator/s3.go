package emulator

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// S3 limits (AWS: parts of 5 MiB or more except the last, at most 10,000
// parts, at most 5 GiB per part).
const (
	minS3PartSize = 5 << 20
	maxS3PartSize = 5 << 30
	maxS3Parts    = 10000
)

// presignedURLsRequest is GeneratePresignedUrlsRequest.
type presignedURLsRequest struct {
	Size            *int64 `json:"size"`
	FirstPartNumber *int   `json:"firstPartNumber"`
	LastPartNumber  *int   `json:"lastPartNumber"`
}

type presignedURL struct {
	URL        string `json:"url"`
	PartNumber int    `json:"partNumber"`
}

// sign is the HMAC that binds a presigned URL to upload, part, size and expiry.
func sign(key []byte, id string, part int, size, expires int64) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s\n%d\n%d\n%d", id, part, size, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// handleS3URLs is POST /v4/nodes/files/uploads/{upload_id}/s3_urls → 201
// PresignedUrlList: one URL per part number, each signed for exactly size bytes.
func (s *Server) handleS3URLs(w http.ResponseWriter, r *http.Request, uid int64) error {
	id := r.PathValue("upload_id")
	var req presignedURLsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Size == nil || req.FirstPartNumber == nil || req.LastPartNumber == nil {
		return apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: size, firstPartNumber, lastPartNumber")
	}
	if *req.Size < 0 || *req.Size > maxS3PartSize {
		return apiErr(http.StatusBadRequest, codeInvalidSize, "Invalid size")
	}
	first, last := *req.FirstPartNumber, *req.LastPartNumber
	if first < 1 || last < first || last > maxS3Parts {
		return apiErr(http.StatusBadRequest, codeInvalidPositiveNumber, "Invalid positive number: part numbers must satisfy 1 <= first <= last <= 10000")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.openS3UploadLocked(id, uid); err != nil {
		return err
	}
	expires := time.Now().Add(DefaultPresignedURLLifetime).Unix()
	base := s.baseURL(r)
	out := struct {
		URLs []presignedURL `json:"urls"`
	}{}
	for p := first; p <= last; p++ {
		sig := sign(s.st.SigningKey, id, p, *req.Size, expires)
		out.URLs = append(out.URLs, presignedURL{PartNumber: p,
			URL: fmt.Sprintf("%s%s%s/%d?size=%d&expires=%d&signature=%s", base, S3PathPrefix, id, p, *req.Size, expires, sig)})
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// s3Error is the XML error body of S3.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
}

func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	body, _ := xml.Marshal(s3Error{Code: code, Message: msg, RequestID: "emulator"})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(body)
}

// handleS3Put is the fake presigned S3 endpoint: PUT S3PathPrefix{upload_id}/{part}.
// It needs no DRACOON authentication, checks the signature and expiry,
// requires Content-Length to equal the signed size (else 403
// SignatureDoesNotMatch, as S3 answers for a signed header that differs),
// streams the part to disk and answers 200 with ETag "<md5>" (with
// Config.DiscardContent it only hashes it, with the cheap discardETag). PUTting
// a part number again replaces the part, as S3 does.
func (s *Server) handleS3Put(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("upload_id")
	part, err := strconv.Atoi(r.PathValue("part"))
	q := r.URL.Query()
	size, err2 := strconv.ParseInt(q.Get("size"), 10, 64)
	expires, err3 := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || err2 != nil || err3 != nil || part < 1 {
		writeS3Error(w, http.StatusForbidden, "AccessDenied", "Malformed presigned URL")
		return
	}
	s.mu.Lock()
	want := sign(s.st.SigningKey, id, part, size, expires)
	s.mu.Unlock()
	if !hmac.Equal([]byte(want), []byte(q.Get("signature"))) {
		writeS3Error(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	if time.Now().Unix() > expires {
		writeS3Error(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	if r.ContentLength < 0 {
		writeS3Error(w, http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
		return
	}
	if r.ContentLength != size {
		writeS3Error(w, http.StatusForbidden, "SignatureDoesNotMatch",
			fmt.Sprintf("Content-Length %d does not match the signed size %d", r.ContentLength, size))
		return
	}
	if !s.s3UploadOpen(id) {
		writeS3Error(w, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}
	var (
		h   hash.Hash
		n   int64
		tmp *os.File
	)
	if s.cfg.DiscardContent {
		h = crc32.New(castagnoli)
		n, err = s.copyBody(h, r.Body)
	} else {
		h = md5.New()
		tmp, err = os.CreateTemp(s.s3Dir(id), fmt.Sprintf("part-%05d.*.tmp", part))
		if err != nil {
			writeS3Error(w, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
			return
		}
		defer os.Remove(tmp.Name())
		n, err = s.copyBody(io.MultiWriter(tmp, h), r.Body)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil || n != size {
		writeS3Error(w, http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
		return
	}
	etag := hex.EncodeToString(h.Sum(nil))
	if s.cfg.DiscardContent {
		etag = discardETag(h.Sum(nil), n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Uploads[id]
	if u == nil || !u.DirectS3 || u.Status != uploadTransfer {
		writeS3Error(w, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}
	if tmp != nil {
		if err := os.Rename(tmp.Name(), s.partPath(id, part)); err != nil {
			writeS3Error(w, http.StatusInternalServerError, "InternalError", "cannot store part")
			return
		}
	} else {
		_ = os.Remove(s.partPath(id, part)) // a part stored before is replaced by nothing
		u.Discarded = true
	}
	if u.Parts == nil {
		u.Parts = map[int]partRec{}
	}
	u.Parts[part] = partRec{Size: n, ETag: etag}
	if err := s.commitLocked(); err != nil {
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "cannot persist state")
		return
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

// castagnoli is the CRC-32C table (hardware-accelerated on amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// discardETag is the ETag of a part received with Config.DiscardContent:
// the part's CRC-32C and length in 32 hex digits, as long as an MD5. S3
// ETags are opaque to clients (they are not MD5s with SSE-KMS either);
// hashing every benchmark byte with MD5 made the emulator the bottleneck of
// the loopback benchmark. Proxy chunk answers keep the real MD5, which
// clients check.
func discardETag(crc []byte, n int64) string {
	return fmt.Sprintf("%s%024x", hex.EncodeToString(crc), n)
}

func (s *Server) s3UploadOpen(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Uploads[id]
	return u != nil && u.DirectS3 && u.Status == uploadTransfer
}

// completeS3Request is CompleteS3FileUploadRequest.
type completeS3Request struct {
	Parts              []s3Part `json:"parts"`
	ResolutionStrategy *string  `json:"resolutionStrategy"`
	KeepShareLinks     bool     `json:"keepShareLinks"`
	FileName           *string  `json:"fileName"`
	FileKey            *fileKey `json:"fileKey"`
}

// handleCompleteS3 is PUT /v4/nodes/files/uploads/{upload_id}/s3 → 202 (no
// body). Parts and ETags (quotes optional) must match uploaded parts (else 400
// -80045); name, resolution and file-key rules are checked now as for proxy
// uploads. The upload then reports "finishing" for Config.S3FinishDelay while
// the parts are assembled by part number; a part below 5 MiB other than the
// last makes the upload end in status "error" (as S3's EntityTooSmall arrives
// only at assembly) with errorDetails code 400 and no errorCode. Completing
// again is 400 -20503 while the upload is finishing and 404 -20501 once it is
// done or failed; its status stays readable.
func (s *Server) handleCompleteS3(w http.ResponseWriter, r *http.Request, uid int64) error {
	id := r.PathValue("upload_id")
	var req completeS3Request
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c := completion{Resolution: "autorename", FileKey: req.FileKey}
	if req.ResolutionStrategy != nil {
		c.Resolution = *req.ResolutionStrategy
	}
	if req.FileName != nil {
		c.FileName = *req.FileName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.openS3UploadLocked(id, uid)
	if err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: parts")
	}
	seen := map[int]bool{}
	for _, p := range req.Parts {
		stored, ok := u.Parts[p.PartNumber]
		if !ok || seen[p.PartNumber] || !strings.EqualFold(strings.Trim(p.PartEtag, `"`), stored.ETag) {
			return apiErr(http.StatusBadRequest, codeInvalidETags, fmt.Sprintf("Invalid Etag(s): part %d", p.PartNumber))
		}
		seen[p.PartNumber] = true
	}
	if _, _, err := s.checkCompletionLocked(u, c); err != nil {
		return err
	}
	u.Status = uploadFinishing
	u.Completion = &s3Completion{Parts: req.Parts, ResolutionStrategy: c.Resolution, FileName: c.FileName, FileKey: c.FileKey}
	u.FinishAt = time.Now().Add(s.cfg.S3FinishDelay)
	if err := s.commitLocked(); err != nil {
		return err
	}
	s.scheduleFinishLocked(id, s.cfg.S3FinishDelay)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// scheduleFinishLocked runs finishS3 after delay. Call with mu held.
func (s *Server) scheduleFinishLocked(id string, delay time.Duration) {
	if s.closed {
		return
	}
	if delay < 0 {
		delay = 0
	}
	s.wg.Add(1)
	s.timers[id] = time.AfterFunc(delay, func() {
		defer s.wg.Done()
		s.mu.Lock()
		delete(s.timers, id)
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			s.finishS3(id)
		}
	})
}

// finishS3 assembles the parts of a finishing S3 upload into a file node.
func (s *Server) finishS3(id string) {
	log := s.log.WithField("upload_id", id)
	s.mu.Lock()
	u := s.st.Uploads[id]
	if u == nil || u.Status != uploadFinishing || u.Completion == nil {
		s.mu.Unlock()
		return
	}
	parts := append([]s3Part(nil), u.Completion.Parts...)
	stored := map[int]partRec{}
	for k, v := range u.Parts {
		stored[k] = v
	}
	s.mu.Unlock()

	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	var failure *apiError
	for i, p := range parts {
		if i < len(parts)-1 && stored[p.PartNumber].Size < minS3PartSize {
			failure = apiErrNull(http.StatusBadRequest,
				fmt.Sprintf("EntityTooSmall: part %d has %d bytes, the minimum for all parts but the last is %d", p.PartNumber, stored[p.PartNumber].Size, minS3PartSize))
			break
		}
	}
	var assembled string
	if failure == nil {
		var err error
		if assembled, err = s.assemble(id, parts, stored); err != nil {
			log.WithError(err).Error("cannot assemble S3 parts")
			failure = apiErrNull(http.StatusInternalServerError, "cannot assemble parts")
		}
	}
	if assembled != "" {
		defer os.Remove(assembled) // no-op once renamed into files/
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	u = s.st.Uploads[id]
	if u == nil || u.Status != uploadFinishing {
		return
	}
	if failure == nil {
		fk := u.Completion.FileKey
		c := completion{Resolution: u.Completion.ResolutionStrategy, FileName: u.Completion.FileName, FileKey: fk}
		n, err := s.finishUploadLocked(u, c, assembled)
		if err == nil {
			u.Status, u.NodeID = uploadDone, n.ID
		} else if ae, ok := err.(*apiError); ok {
			failure = ae
		} else {
			log.WithError(err).Error("cannot finish S3 upload")
			failure = apiErrNull(http.StatusInternalServerError, "cannot finish upload")
		}
	}
	if failure != nil {
		resp := failure.response()
		u.Status, u.Failure = uploadError, &resp
	}
	u.Parts = nil
	_ = os.RemoveAll(s.s3Dir(id))
	delete(s.uploadLocks, id)
	if err := s.commitLocked(); err != nil {
		log.WithError(err).Error("cannot persist finished S3 upload")
	}
}

// assemble concatenates the parts in order into a temporary file in files/.
// Parts received with Config.DiscardContent have no stored bytes: an upload
// with any such part becomes a sparse file of the parts' total size.
func (s *Server) assemble(id string, parts []s3Part, stored map[int]partRec) (string, error) {
	out, err := os.CreateTemp(filepath.Join(s.cfg.DataDir, filesDir), "assemble-*.tmp")
	if err != nil {
		return "", fmt.Errorf("cannot create assembly file: %w", err)
	}
	s.mu.Lock()
	discarded := s.st.Uploads[id] != nil && s.st.Uploads[id].Discarded
	s.mu.Unlock()
	if discarded {
		var total int64
		for _, p := range parts {
			total += stored[p.PartNumber].Size
		}
		err := out.Truncate(total)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out.Name())
			return "", fmt.Errorf("cannot size assembly file: %w", err)
		}
		return out.Name(), nil
	}
	for _, p := range parts {
		in, err := os.Open(s.partPath(id, p.PartNumber))
		if err != nil {
			out.Close()
			os.Remove(out.Name())
			return "", fmt.Errorf("cannot open part %d: %w", p.PartNumber, err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if err != nil {
			out.Close()
			os.Remove(out.Name())
			return "", fmt.Errorf("cannot copy part %d: %w", p.PartNumber, err)
		}
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("cannot write assembly file: %w", err)
	}
	return out.Name(), nil
}

// openS3UploadLocked returns the caller's S3 direct upload id that still
// accepts parts, or the API error saying why not: 400 -20503 while it is
// being finished, 404 -20501 once it is done or failed (the channel is
// consumed; only its status remains). Call with s.mu held.
func (s *Server) openS3UploadLocked(id string, uid int64) (*uploadRec, error) {
	u, err := s.ownUploadLocked(id, uid)
	if err != nil {
		return nil, err
	}
	if !u.DirectS3 {
		return nil, apiErr(http.StatusNotFound, codeS3UploadNotFound, "Corresponding S3 upload ID not found")
	}
	switch u.Status {
	case uploadTransfer:
		return u, nil
	case uploadFinishing:
		return nil, apiErr(http.StatusBadRequest, codeUploadClosed, "Upload channel is closed")
	}
	return nil, apiErr(http.StatusNotFound, codeUploadNotFound, "Upload not found")
}
