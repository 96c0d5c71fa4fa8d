package emulator_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// TestDiscardContent_proxy uploads, resends and completes in benchmark mode:
// chunk answers and the node size are real, the stored file holds no
// content, and a download is refused.
func TestDiscardContent_proxy(t *testing.T) {
	e := newEnv(t, emulator.Config{DiscardContent: true})
	svc := e.svc()
	data := pattern(3<<20+5, 1)
	ch := svc.createChannel(roomRecordings, "bench.bin", int64(len(data)), false)
	for off := 0; off < len(data); off += 1 << 20 {
		end := min(off+1<<20, len(data))
		cr := sendChunk(t, ch.UploadURL, int64(off), data[off:end], "*", false, http.StatusCreated)
		if sum := md5.Sum(data[off:end]); cr.Size != int64(end-off) || cr.Hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("chunk at %d: %+v", off, cr)
		}
	}
	other := pattern(1<<20, 2)
	cr := sendChunk(t, ch.UploadURL, 1<<20, other, "*", false, http.StatusCreated)
	if sum := md5.Sum(other); cr.Hash != hex.EncodeToString(sum[:]) {
		t.Fatalf("resent chunk: %+v", cr)
	}
	sendChunk(t, ch.UploadURL, 1<<20, other[:10], "*", false, http.StatusBadRequest)

	var n node
	complete(t, ch.UploadURL, map[string]any{"fileKey": testKey("RSA-4096/AES-256-GCM", "svc")}, http.StatusCreated, &n)
	if n.Size != int64(len(data)) {
		t.Fatalf("node size %d, want %d", n.Size, len(data))
	}
	stored, err := os.ReadFile(filepath.Join(e.Config.DataDir, "files", fmt.Sprintf("%d.bin", n.ID)))
	if err != nil || len(stored) != len(data) || !bytes.Equal(stored, make([]byte, len(data))) {
		t.Fatalf("stored file: %d bytes, err %v; want %d zero bytes (a sparse file)", len(stored), err, len(data))
	}
	checkDiscardedDownload(t, svc, n.ID)
}

// TestDiscardContent_s3 uploads parts in benchmark mode: ETags are cheap
// (CRC-32C and length, not MD5) but tell parts apart, no part is stored,
// completion is not delayed although S3FinishDelay is long.
func TestDiscardContent_s3(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true), DiscardContent: true, S3FinishDelay: time.Minute})
	svc := e.svc()
	const part = 5 << 20
	data := pattern(part+100, 3)
	ch := svc.createChannel(roomRecordings, "bench-s3.bin", int64(len(data)), true)
	urls := svc.s3URLs(ch.UploadID, part, 1, 1)
	last := svc.s3URLs(ch.UploadID, 100, 2, 2)
	var parts []map[string]any
	for i, p := range [][]byte{data[:part], data[part:]} {
		u := append(urls.URLs, last.URLs...)[i].URL
		status, etag, body := putPart(t, u, p, int64(len(p)))
		want := fmt.Sprintf(`"%08x%024x"`, crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)), len(p))
		if status != http.StatusOK || etag != want {
			t.Fatalf("part %d: %d %s %s, want ETag %s", i+1, status, etag, body, want)
		}
		parts = append(parts, map[string]any{"partNumber": i + 1, "partEtag": etag})
	}
	entries, err := os.ReadDir(filepath.Join(e.Config.DataDir, "uploads", ch.UploadID))
	if err != nil || len(entries) != 0 {
		t.Fatalf("parts stored: %v %v", entries, err)
	}
	start := time.Now()
	svc.call(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
		map[string]any{"parts": parts, "fileKey": testKey("RSA-4096/AES-256-GCM", "svc")}, http.StatusAccepted, nil)
	st, _ := pollStatus(svc, ch.UploadID)
	if st.Status != "done" || st.Node == nil || st.Node.Size != int64(len(data)) {
		t.Fatalf("status %+v", st)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("finishing took %v", d)
	}
	checkDiscardedDownload(t, svc, st.Node.ID)
}

func checkDiscardedDownload(t *testing.T, svc *client, id int64) {
	t.Helper()
	var d struct {
		DownloadURL string `json:"downloadUrl"`
	}
	svc.call(http.MethodPost, fmt.Sprintf("/api/v4/nodes/files/%d/downloads", id), nil, http.StatusOK, &d)
	var ae apiError
	svc.call(http.MethodGet, d.DownloadURL, nil, http.StatusNotFound, &ae)
	checkAPIError(t, ae, http.StatusNotFound, nil)
	if !strings.Contains(ae.DebugInfo, "discarded") {
		t.Fatalf("debugInfo %q does not say the content was discarded", ae.DebugInfo)
	}
}
