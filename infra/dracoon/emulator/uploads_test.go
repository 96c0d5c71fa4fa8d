package emulator_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

func TestProxyUpload_sizes(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	tests := []struct {
		name      string
		size      int
		chunk     int
		multipart bool
		total     string // Content-Range total
	}{
		{name: "empty_raw", size: 0, chunk: 1, total: "0"},
		{name: "empty_multipart", size: 0, chunk: 1, multipart: true, total: "*"},
		{name: "one_byte", size: 1, chunk: 1, total: "1"},
		{name: "one_chunk_multipart", size: 100_000, chunk: 1 << 20, multipart: true, total: "*"},
		{name: "several_chunks_raw", size: 1<<20 + 12345, chunk: 256 << 10, total: "*"},
		{name: "several_chunks_multipart", size: 700_001, chunk: 200_000, multipart: true, total: "700001"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := pattern(tc.size, byte(i))
			ch := svc.createChannel(roomRecordings, tc.name+".bin", int64(tc.size), false)
			for off := 0; ; off += tc.chunk {
				end := min(off+tc.chunk, tc.size)
				cr := sendChunk(t, ch.UploadURL, int64(off), data[off:end], tc.total, tc.multipart, http.StatusCreated)
				sum := md5.Sum(data[off:end])
				if cr.Size != int64(end-off) || cr.Hash != hex.EncodeToString(sum[:]) {
					t.Fatalf("chunk at %d: %+v", off, cr)
				}
				if end == tc.size {
					break
				}
			}
			key := testKey("RSA-4096/AES-256-GCM", "svc")
			var n node
			complete(t, ch.UploadURL, map[string]any{"fileKey": key, "resolutionStrategy": "fail"}, http.StatusCreated, &n)
			if n.Type != "file" || n.Name != tc.name+".bin" || n.Size != int64(tc.size) || !n.IsEncrypted || *n.ParentID != roomRecordings {
				t.Fatalf("node = %+v", n)
			}
			if got := svc.download(n.ID, "", http.StatusOK); !bytes.Equal(got, data) {
				t.Fatalf("downloaded %d bytes differ from the %d uploaded", len(got), len(data))
			}
			var k fileKey
			svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/files/%d/user_file_key", n.ID), nil, http.StatusOK, &k)
			if k != key {
				t.Fatalf("user_file_key = %+v, want %+v", k, key)
			}
		})
	}
}

func TestProxyUpload_rules(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	key := testKey("RSA-4096/AES-256-GCM", "svc")

	// Channel creation checks.
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/uploads", map[string]any{"parentId": 424242, "name": "x"}, http.StatusNotFound, code(-40000))
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/uploads", map[string]any{"parentId": roomRecordings, "name": "a:b"}, http.StatusBadRequest, code(-40755))
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/uploads", map[string]any{"parentId": roomRecordings, "name": "x",
		"expiration": map[string]any{"enableExpiration": true, "expireAt": "2001-01-01T00:00:00Z"}}, http.StatusBadRequest, code(-80006))
	e.alice().expectError(http.MethodPost, "/api/v4/nodes/files/uploads", map[string]any{"parentId": roomRecordings, "name": "x"}, http.StatusForbidden, nil)
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/uploads", map[string]any{"parentId": roomRecordings, "name": "x", "directS3Upload": true}, http.StatusBadRequest, nil)

	// Chunks must come in order.
	ch := svc.createChannel(roomRecordings, "order.bin", 20, false)
	sendChunk(t, ch.UploadURL, 0, pattern(10, 1), "20", false, http.StatusCreated)
	sendChunk(t, ch.UploadURL, 5, pattern(10, 1), "20", false, http.StatusBadRequest)
	sendChunk(t, ch.UploadURL, 20, pattern(10, 1), "20", false, http.StatusBadRequest)
	sendChunk(t, ch.UploadURL, 10, pattern(10, 2), "20", false, http.StatusCreated)

	// Encrypted room: completion needs a fileKey.
	var ae apiError
	complete(t, ch.UploadURL, map[string]any{"resolutionStrategy": "autorename"}, http.StatusBadRequest, &ae)
	checkAPIError(t, ae, http.StatusBadRequest, code(-40763))
	var first node
	complete(t, ch.UploadURL, map[string]any{"fileKey": key}, http.StatusCreated, &first)
	complete(t, ch.UploadURL, map[string]any{"fileKey": key}, http.StatusNotFound, &ae)
	checkAPIError(t, ae, http.StatusNotFound, code(-20501))

	// Name conflicts: fail, autorename, overwrite.
	ch = svc.createChannel(roomRecordings, "order.bin", 1, false)
	sendChunk(t, ch.UploadURL, -1, []byte("x"), "", false, http.StatusCreated)
	complete(t, ch.UploadURL, map[string]any{"fileKey": key, "resolutionStrategy": "fail"}, http.StatusConflict, &ae)
	checkAPIError(t, ae, http.StatusConflict, code(-40010))
	var renamed node
	complete(t, ch.UploadURL, map[string]any{"fileKey": key, "resolutionStrategy": "autorename"}, http.StatusCreated, &renamed)
	if renamed.Name != "order (1).bin" {
		t.Errorf("autorename gave %q", renamed.Name)
	}
	ch = svc.createChannel(roomRecordings, "order.bin", 1, false)
	sendChunk(t, ch.UploadURL, 0, []byte("y"), "1", false, http.StatusCreated)
	var over node
	complete(t, ch.UploadURL, map[string]any{"fileKey": key, "resolutionStrategy": "overwrite"}, http.StatusCreated, &over)
	if over.Name != "order.bin" || over.Size != 1 {
		t.Errorf("overwrite gave %+v", over)
	}
	svc.expectError(http.MethodGet, fmt.Sprintf("/api/v4/nodes/%d", first.ID), nil, http.StatusNotFound, code(-41000))

	// Unencrypted room: no fileKey needed, none accepted.
	plain := svc.uploadFile(roomPlain, "plain.txt", []byte("hello"), 2, nil)
	if plain.IsEncrypted || plain.Size != 5 {
		t.Errorf("plain file %+v", plain)
	}
	ch = svc.createChannel(roomPlain, "keyed.txt", 0, false)
	complete(t, ch.UploadURL, map[string]any{"fileKey": key}, http.StatusBadRequest, &ae)
	checkAPIError(t, ae, http.StatusBadRequest, code(-40001))

	// Cancel by token and by id; both 204, then the upload is gone.
	ch = svc.createChannel(roomRecordings, "cancel.bin", 3, false)
	sendChunk(t, ch.UploadURL, 0, []byte("abc"), "3", false, http.StatusCreated)
	req, _ := http.NewRequest(http.MethodDelete, ch.UploadURL, nil)
	doExpect(t, req, http.StatusNoContent, nil)
	sendChunk(t, ch.UploadURL, 3, []byte("d"), "4", false, http.StatusNotFound)
	ch = svc.createChannel(roomRecordings, "cancel.bin", 3, false)
	e.alice().expectError(http.MethodDelete, "/api/v4/nodes/files/uploads/"+ch.UploadID, nil, http.StatusForbidden, nil)
	svc.call(http.MethodDelete, "/api/v4/nodes/files/uploads/"+ch.UploadID, nil, http.StatusNoContent, nil)
	svc.expectError(http.MethodDelete, "/api/v4/nodes/files/uploads/"+ch.UploadID, nil, http.StatusNotFound, code(-20501))

	// Downloads: ranges and permissions.
	data := pattern(1000, 9)
	f := svc.uploadFile(roomRecordings, "range.bin", data, 300, &key)
	if got := svc.download(f.ID, "bytes=100-199", http.StatusPartialContent); !bytes.Equal(got, data[100:200]) {
		t.Error("range 100-199 differs")
	}
	if got := svc.download(f.ID, "bytes=-10", http.StatusPartialContent); !bytes.Equal(got, data[990:]) {
		t.Error("suffix range differs")
	}
	svc.download(f.ID, "bytes=5000-", http.StatusRequestedRangeNotSatisfiable)
	e.alice().download(f.ID, "", http.StatusOK)
	e.login("dave", "dave-pw").expectError(http.MethodPost, fmt.Sprintf("/api/v4/nodes/files/%d/downloads", f.ID), nil, http.StatusNotFound, code(-40751))
	req, _ = http.NewRequest(http.MethodGet, e.URL+"/api/v4/downloads/not-a-token", nil)
	doExpect(t, req, http.StatusUnauthorized, nil)
}

// TestProxyUpload_offset_beyond_4GiB extends an upload to 5 GiB as a sparse
// file, appends a chunk at that offset and reads it back with a range.
func TestProxyUpload_offset_beyond_4GiB(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	const big = int64(5) << 30
	tail := pattern(4096, 3)
	ch := svc.createChannel(roomRecordings, "huge.bin", big+int64(len(tail)), false)
	if err := e.Emu.PreallocateUpload(ch.UploadID, big); err != nil {
		t.Fatal(err)
	}
	sendChunk(t, ch.UploadURL, 0, tail, "*", false, http.StatusBadRequest)
	cr := sendChunk(t, ch.UploadURL, big, tail, fmt.Sprint(big+int64(len(tail))), false, http.StatusCreated)
	if cr.Size != int64(len(tail)) {
		t.Fatalf("chunk response %+v", cr)
	}
	key := testKey("RSA-4096/AES-256-GCM", "svc")
	var n node
	complete(t, ch.UploadURL, map[string]any{"fileKey": key}, http.StatusCreated, &n)
	if n.Size != big+int64(len(tail)) {
		t.Fatalf("size %d, want %d", n.Size, big+int64(len(tail)))
	}
	got := svc.download(n.ID, fmt.Sprintf("bytes=%d-", big-2), http.StatusPartialContent)
	if !bytes.Equal(got, append([]byte{0, 0}, tail...)) {
		t.Fatalf("tail differs (%d bytes)", len(got))
	}
}

// TestProxyUpload_chunk_resend sends the chunks [0,10) [10,20) [20,25), then
// one more chunk, and checks which chunks are accepted as resends, what the
// client sees for refused ones (a JSON error even for large bodies, never a
// reset), and the final content.
func TestProxyUpload_chunk_resend(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	key := testKey("RSA-4096/AES-256-GCM", "svc")
	orig := pattern(25, 1)
	fresh := pattern(10, 2)
	big := pattern(8<<20, 3)
	tests := []struct {
		name      string
		start     int64
		data      []byte
		multipart bool
		wantCode  int    // 0: 201
		want      []byte // final content; nil: orig
	}{
		{name: "last_same_bytes", start: 20, data: orig[20:]},
		{name: "first_same_bytes", start: 0, data: orig[:10]},
		{name: "middle_new_bytes", start: 10, data: fresh, want: concat(orig[:10], fresh, orig[20:])},
		{name: "first_new_bytes_multipart", start: 0, data: fresh, multipart: true, want: concat(fresh, orig[10:])},
		{name: "shorter_at_boundary", start: 10, data: fresh[:5], wantCode: -80021},
		{name: "longer_at_boundary", start: 20, data: fresh, wantCode: -80021},
		{name: "large_at_boundary", start: 0, data: big, wantCode: -80021},
		{name: "not_a_boundary", start: 5, data: fresh[:5], wantCode: -80021},
		{name: "gap", start: 30, data: fresh, wantCode: -80021},
		{name: "large_gap", start: 30, data: big, wantCode: -80021},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := svc.createChannel(roomRecordings, tc.name+".bin", 0, false)
			for _, c := range [][2]int{{0, 10}, {10, 20}, {20, 25}} {
				sendChunk(t, ch.UploadURL, int64(c[0]), orig[c[0]:c[1]], "*", false, http.StatusCreated)
			}
			var body io.Reader = bytes.NewReader(tc.data)
			ctype := "application/octet-stream"
			if tc.multipart {
				var buf bytes.Buffer
				ctype = newMultipart(&buf, tc.data)
				body = &buf
			}
			req, _ := http.NewRequest(http.MethodPost, ch.UploadURL, body)
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", tc.start, tc.start+int64(len(tc.data))-1))
			got := send(oneShot(30*time.Second), req)
			if got.err != nil {
				t.Fatalf("the client saw %v, want an answer", got.err)
			}
			if tc.wantCode != 0 {
				var ae apiError
				if err := json.Unmarshal(got.body, &ae); err != nil || got.status != http.StatusBadRequest {
					t.Fatalf("status %d body %q, want a 400 JSON error", got.status, got.body)
				}
				checkAPIError(t, ae, http.StatusBadRequest, code(tc.wantCode))
			} else {
				var cr chunkResp
				sum := md5.Sum(tc.data)
				if err := json.Unmarshal(got.body, &cr); err != nil || got.status != http.StatusCreated ||
					cr.Size != int64(len(tc.data)) || cr.Hash != hex.EncodeToString(sum[:]) {
					t.Fatalf("status %d body %s, want 201 with the chunk's size and MD5", got.status, got.body)
				}
			}
			// Appending still continues at 25.
			sendChunk(t, ch.UploadURL, 25, []byte("!"), "26", false, http.StatusCreated)
			want := tc.want
			if want == nil {
				want = orig
			}
			var n node
			complete(t, ch.UploadURL, map[string]any{"fileKey": key}, http.StatusCreated, &n)
			if got := svc.download(n.ID, "", http.StatusOK); !bytes.Equal(got, concat(want, []byte("!"))) {
				t.Fatalf("content %x, want %x!", got, want)
			}
		})
	}
}

// TestProxyUpload_large_refused_chunk_gets_answer checks that refusals
// before the chunk is looked at (unknown token) still reach a client that is
// sending a large body.
func TestProxyUpload_large_refused_chunk_gets_answer(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v4/uploads/no-such-token", bytes.NewReader(pattern(16<<20, 4)))
	req.Header.Set("Content-Type", "application/octet-stream")
	got := send(oneShot(30*time.Second), req)
	var ae apiError
	if got.err != nil || json.Unmarshal(got.body, &ae) != nil {
		t.Fatalf("the client saw %d %q %v, want a JSON error", got.status, got.body, got.err)
	}
	checkAPIError(t, ae, http.StatusNotFound, code(-20501))
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
