package emulator

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// handleCreateDownload is POST /v4/nodes/files/{file_id}/downloads → 200
// DownloadTokenGenerateResponse {downloadUrl, token}; needs read permission.
// The URL can be used repeatedly until it expires (DefaultDownloadTokenLifetime).
func (s *Server) handleCreateDownload(w http.ResponseWriter, r *http.Request, uid int64, rawID string) error {
	id, err := parseID(rawID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.st.Nodes[id]
	if n == nil || n.Type != nodeTypeFile || !s.st.visible(uid, n) {
		return apiErr(http.StatusNotFound, codeFileNotFound, "File not found")
	}
	if !s.st.perms(uid, n).Read {
		return errForbidden("read permission is required")
	}
	token, err := randomToken(24)
	if err != nil {
		return err
	}
	s.st.Downloads[tokenKey(token)] = &downloadRec{NodeID: id, ExpiresAt: time.Now().Add(DefaultDownloadTokenLifetime)}
	if err := s.commitLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"downloadUrl": s.baseURL(r) + "/api/v4/downloads/" + token,
		"token":       token,
	})
	return nil
}

// handleDownload is GET /v4/downloads/{token} (no authentication): streams the
// stored bytes (ciphertext for encrypted rooms). A single "Range: bytes=" range
// is answered with 206; an unsatisfiable one with 416. A file uploaded with
// Config.DiscardContent has no content to send: 404 without errorCode.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	d := s.st.Downloads[tokenKey(r.PathValue("token"))]
	var n *nodeRec
	if d != nil && time.Now().Before(d.ExpiresAt) {
		n = s.st.Nodes[d.NodeID]
	}
	s.mu.Unlock()
	if d == nil || time.Now().After(d.ExpiresAt) {
		return apiErr(http.StatusUnauthorized, codeInvalidTransferToken, "Invalid (up-) download token")
	}
	if n == nil {
		return apiErr(http.StatusNotFound, codeFileNotFound, "File not found")
	}
	if n.ContentDiscarded {
		return apiErrNull(http.StatusNotFound, "File content was discarded: it was uploaded while the emulator ran in benchmark mode (--discard-content)")
	}
	f, err := os.Open(s.contentPath(n.ID))
	if err != nil {
		return fmt.Errorf("cannot open content: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot stat content: %w", err)
	}
	size := info.Size()
	start, length, partial, ok := parseByteRange(r.Header.Get("Range"), size)
	if !ok {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return apiErrNull(http.StatusRequestedRangeNotSatisfiable, "Download range '"+r.Header.Get("Range")+"' is not satisfiable")
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(n.Name))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, size))
	}
	w.WriteHeader(status)
	_, _ = io.Copy(w, io.NewSectionReader(f, start, length))
	return nil
}

// parseByteRange understands one range of "bytes=a-b", "bytes=a-" or "bytes=-n".
// Without a header it returns the whole content.
func parseByteRange(h string, size int64) (start, length int64, partial, ok bool) {
	if h == "" {
		return 0, size, false, true
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size == 0 {
			return 0, 0, false, false
		}
		n = min(n, size)
		return size - n, n, true, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || first >= size {
		return 0, 0, false, false
	}
	last := size - 1
	if b != "" {
		if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
			return 0, 0, false, false
		}
		last = min(last, size-1)
	}
	return first, last - first + 1, true, true
}
