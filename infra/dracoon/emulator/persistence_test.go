package emulator_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

func TestRestart_keeps_state_and_tokens(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true)})
	svc := e.svc()
	var room node
	svc.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "kept", "parentId": roomRecordings}, http.StatusCreated, &room)
	key := testKey("RSA-4096/AES-256-GCM", "svc")
	data := pattern(70_000, 4)
	f := svc.uploadFile(room.ID, "kept.bin", data, 30_000, &key)
	svc.call(http.MethodPost, "/api/v4/nodes/files/keys", map[string]any{"items": []any{
		map[string]any{"fileId": f.ID, "userId": userAlice, "fileKey": testKey("RSA-4096/AES-256-GCM", "alice")}}}, http.StatusNoContent, nil)
	// An upload in progress survives too.
	ch := svc.createChannel(room.ID, "later.bin", 6, false)
	sendChunk(t, ch.UploadURL, 0, []byte("abc"), "6", false, http.StatusCreated)
	alice := e.alice()

	e.Restart()

	svc.call(http.MethodGet, "/api/v4/user/account", nil, http.StatusOK, nil)
	if got := svc.download(f.ID, "", http.StatusOK); !bytes.Equal(got, data) {
		t.Fatal("content changed across restart")
	}
	var k fileKey
	alice.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/files/%d/user_file_key", f.ID), nil, http.StatusOK, &k)
	var list nodeList
	svc.call(http.MethodGet, "/api/v4/nodes?parent_id=0", nil, http.StatusOK, &list)
	if list.Range.Total != 2 {
		t.Fatalf("seeding again duplicated rooms: %d top-level rooms", list.Range.Total)
	}
	svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/%d", room.ID), nil, http.StatusOK, nil)
	// The old upload URL has the old port; the token path still works.
	upload := e.URL + "/api/v4/uploads/" + ch.Token
	sendChunk(t, upload, 3, []byte("def"), "6", false, http.StatusCreated)
	var n node
	complete(t, upload, map[string]any{"fileKey": key}, http.StatusCreated, &n)
	if n.Size != 6 {
		t.Fatalf("resumed upload size %d", n.Size)
	}
	var fresh node
	svc.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "after", "parentId": roomRecordings}, http.StatusCreated, &fresh)
	if fresh.ID <= n.ID {
		t.Fatalf("node ids reused: %d after %d", fresh.ID, n.ID)
	}
}

func TestRestart_resumes_finishing_s3_upload(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, emulator.Config{DataDir: dir, Seed: testSeed(true), S3FinishDelay: 400 * time.Millisecond})
	svc := e.svc()
	ch := svc.createChannel(roomRecordings, "resume.bin", 10, true)
	urls := svc.s3URLs(ch.UploadID, 10, 1, 1)
	_, etag, _ := putPart(t, urls.URLs[0].URL, pattern(10, 1), 10)
	svc.call(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3", map[string]any{"parts": []map[string]any{
		{"partNumber": 1, "partEtag": etag}}, "fileKey": testKey("RSA-4096/AES-256-GCM", "svc")}, http.StatusAccepted, nil)
	e.Restart()
	st, _ := pollStatus(svc, ch.UploadID)
	if st.Status != "done" || st.Node == nil || st.Node.Size != 10 {
		t.Fatalf("status after restart %+v", st)
	}
}

func TestSeed_files(t *testing.T) {
	sd, err := emulator.LoadSeed(filepath.Join("..", "..", "..", "testdata", "dracoon", "seed.example.json"))
	if err != nil {
		t.Fatalf("example seed: %v", err)
	}
	if len(sd.Users) == 0 || len(sd.Rooms) == 0 || len(sd.Clients) == 0 {
		t.Fatalf("example seed is empty: %+v", sd)
	}
	tests := []struct {
		name, json, wantErr string
	}{
		{name: "unknown_field", json: `{"clients":[],"userz":[]}`, wantErr: "unknown field"},
		{name: "member_without_user", json: `{"rooms":[{"id":1,"name":"r","parentId":null,"members":[{"userId":9,"permissions":{"read":true}}]}]}`, wantErr: "unknown user 9"},
		{name: "child_before_parent", json: `{"rooms":[{"id":2,"name":"c","parentId":1},{"id":1,"name":"p","parentId":null}]}`, wantErr: "parent 1"},
		{name: "bad_key_pair", json: `{"users":[{"id":1,"userName":"u","password":"p","keyPairs":[{"publicKeyContainer":{"version":"A","publicKey":"x"}}]}]}`, wantErr: "Invalid public key"},
		{name: "bad_room_name", json: `{"rooms":[{"id":1,"name":"a/b","parentId":null}]}`, wantErr: "illegal character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := emulator.ParseSeed([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestProxyUpload_streams_to_disk uploads and downloads 64 MiB and checks
// that the process allocated far less than that: chunks are streamed to
// disk, never held whole.
func TestProxyUpload_streams_to_disk(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	const size, chunk = 64 << 20, 16 << 20
	ch := svc.createChannel(roomRecordings, "big.bin", size, false)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for off := int64(0); off < size; off += chunk {
		req, _ := http.NewRequest(http.MethodPost, ch.UploadURL, &zeroReader{n: chunk})
		req.ContentLength = chunk
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+chunk-1, size))
		doExpect(t, req, http.StatusCreated, nil)
	}
	var n node
	complete(t, ch.UploadURL, map[string]any{"fileKey": testKey("RSA-4096/AES-256-GCM", "svc")}, http.StatusCreated, &n)
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 24<<20 {
		t.Fatalf("uploading 64 MiB allocated %d MiB", grown>>20)
	}
	info, err := os.Stat(filepath.Join(e.Config.DataDir, "files", fmt.Sprintf("%d.bin", n.ID)))
	if err != nil || info.Size() != size || n.Size != size {
		t.Fatalf("stored %v (%v), node size %d", info, err, n.Size)
	}
}

// zeroReader yields n zero bytes.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}
