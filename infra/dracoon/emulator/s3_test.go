package emulator_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

type presigned struct {
	URLs []struct {
		URL        string `json:"url"`
		PartNumber int    `json:"partNumber"`
	} `json:"urls"`
}

// s3URLs asks for the presigned URLs of parts first to last, each of size
// bytes, of the S3 upload uploadID.
func (c *client) s3URLs(uploadID string, size int64, first, last int) presigned {
	var urls presigned
	c.call(http.MethodPost, "/api/v4/nodes/files/uploads/"+uploadID+"/s3_urls",
		map[string]any{"size": size, "firstPartNumber": first, "lastPartNumber": last}, http.StatusCreated, &urls)
	return urls
}

type uploadStatus struct {
	Status       string    `json:"status"`
	Node         *node     `json:"node"`
	ErrorDetails *apiError `json:"errorDetails"`
}

// putPart PUTs body to a presigned URL with the given Content-Length and
// returns status, ETag and body.
func putPart(t *testing.T, u string, body []byte, contentLength int64) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	req.ContentLength = contentLength
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag"), string(raw)
}

// pollStatus polls the upload status until it leaves "finishing" and
// records whether "finishing" was seen.
func pollStatus(c *client, id string) (uploadStatus, bool) {
	c.e.t.Helper()
	sawFinishing := false
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var st uploadStatus
		c.call(http.MethodGet, "/api/v4/nodes/files/uploads/"+id, nil, http.StatusOK, &st)
		if st.Status != "finishing" {
			return st, sawFinishing
		}
		sawFinishing = true
		time.Sleep(10 * time.Millisecond)
	}
	c.e.t.Fatal("upload stayed finishing")
	return uploadStatus{}, false
}

func TestS3Upload_flow(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true), S3FinishDelay: 200 * time.Millisecond})
	svc := e.svc()
	const part = 5 << 20
	data := pattern(2*part+777, 7)
	ch := svc.createChannel(roomRecordings, "s3.bin", int64(len(data)), true)

	// Parts 1-2 share one size; the last part is requested separately.
	urls := svc.s3URLs(ch.UploadID, part, 1, 2)
	last := svc.s3URLs(ch.UploadID, 777, 3, 3)
	if len(urls.URLs) != 2 || urls.URLs[1].PartNumber != 2 || len(last.URLs) != 1 {
		t.Fatalf("urls %+v %+v", urls, last)
	}
	e.alice().expectError(http.MethodPost, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3_urls",
		map[string]any{"size": part, "firstPartNumber": 1, "lastPartNumber": 1}, http.StatusForbidden, nil)
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3_urls",
		map[string]any{"size": -1, "firstPartNumber": 1, "lastPartNumber": 1}, http.StatusBadRequest, code(-80046))

	// A wrong Content-Length and a tampered URL are refused with S3 XML errors.
	status, _, body := putPart(t, urls.URLs[0].URL, data[:part-1], part-1)
	if status != http.StatusForbidden || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") {
		t.Fatalf("short part: %d %s", status, body)
	}
	status, _, body = putPart(t, strings.Replace(urls.URLs[0].URL, "size=", "size=1", 1), data[:part], part)
	if status != http.StatusForbidden || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Fatalf("tampered URL: %d %s", status, body)
	}

	// Parts in parallel, as clients do.
	chunks := [][]byte{data[:part], data[part : 2*part], data[2*part:]}
	all := append(urls.URLs, last.URLs...)
	etags := make([]string, 3)
	var wg sync.WaitGroup
	for i := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, etag, body := putPart(t, all[i].URL, chunks[i], int64(len(chunks[i])))
			sum := md5.Sum(chunks[i])
			if status != http.StatusOK || etag != `"`+hex.EncodeToString(sum[:])+`"` {
				t.Errorf("part %d: %d etag %s %s", i+1, status, etag, body)
			}
			etags[i] = strings.Trim(etag, `"`)
		}()
	}
	wg.Wait()

	key := testKey("RSA-4096/AES-256-GCM", "svc")
	parts := []map[string]any{{"partNumber": 3, "partEtag": etags[2]}, {"partNumber": 1, "partEtag": etags[0]}, {"partNumber": 2, "partEtag": `"` + etags[1] + `"`}}
	svc.expectError(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
		map[string]any{"parts": []map[string]any{{"partNumber": 1, "partEtag": "0000"}}, "fileKey": key}, http.StatusBadRequest, code(-80045))
	svc.expectError(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
		map[string]any{"parts": parts}, http.StatusBadRequest, code(-40763))
	svc.call(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
		map[string]any{"parts": parts, "fileKey": key, "resolutionStrategy": "autorename"}, http.StatusAccepted, nil)
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3_urls",
		map[string]any{"size": part, "firstPartNumber": 4, "lastPartNumber": 4}, http.StatusBadRequest, code(-20503))

	st, sawFinishing := pollStatus(svc, ch.UploadID)
	if !sawFinishing || st.Status != "done" || st.Node == nil || st.Node.Size != int64(len(data)) || st.Node.Name != "s3.bin" {
		t.Fatalf("status %+v (saw finishing: %v)", st, sawFinishing)
	}
	if got := svc.download(st.Node.ID, "", http.StatusOK); !bytes.Equal(got, data) {
		t.Fatal("downloaded content differs")
	}
	var k fileKey
	svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/files/%d/user_file_key", st.Node.ID), nil, http.StatusOK, &k)
	if k != key {
		t.Fatalf("file key %+v", k)
	}
}

func TestS3Upload_small_part_and_empty_file(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true), S3FinishDelay: -1})
	svc := e.svc()
	key := testKey("RSA-4096/AES-256-GCM", "svc")

	// Two 1 KiB parts: the first is below 5 MiB, so assembly fails.
	ch := svc.createChannel(roomRecordings, "small.bin", 2048, true)
	urls := svc.s3URLs(ch.UploadID, 1024, 1, 2)
	var parts []map[string]any
	for i, u := range urls.URLs {
		status, etag, body := putPart(t, u.URL, pattern(1024, byte(i)), 1024)
		if status != http.StatusOK {
			t.Fatalf("part %d: %d %s", i+1, status, body)
		}
		parts = append(parts, map[string]any{"partNumber": u.PartNumber, "partEtag": etag})
	}
	svc.call(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3", map[string]any{"parts": parts, "fileKey": key}, http.StatusAccepted, nil)
	st, _ := pollStatus(svc, ch.UploadID)
	if st.Status != "error" || st.ErrorDetails == nil || st.ErrorDetails.Code != http.StatusBadRequest {
		t.Fatalf("status %+v", st)
	}

	// An empty file is one part of size 0.
	ch = svc.createChannel(roomRecordings, "empty.bin", 0, true)
	urls = svc.s3URLs(ch.UploadID, 0, 1, 1)
	status, etag, body := putPart(t, urls.URLs[0].URL, nil, 0)
	if status != http.StatusOK {
		t.Fatalf("empty part: %d %s", status, body)
	}
	svc.call(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
		map[string]any{"parts": []map[string]any{{"partNumber": 1, "partEtag": etag}}, "fileKey": key}, http.StatusAccepted, nil)
	st, _ = pollStatus(svc, ch.UploadID)
	if st.Status != "done" || st.Node.Size != 0 {
		t.Fatalf("status %+v", st)
	}

	// Proxy chunks are refused on an S3 channel; S3 URLs on a proxy channel.
	ch = svc.createChannel(roomRecordings, "mixed.bin", 1, true)
	sendChunk(t, ch.UploadURL, 0, []byte("x"), "1", false, http.StatusBadRequest)
	proxy := svc.createChannel(roomRecordings, "proxy.bin", 1, false)
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/uploads/"+proxy.UploadID+"/s3_urls",
		map[string]any{"size": 1, "firstPartNumber": 1, "lastPartNumber": 1}, http.StatusNotFound, code(-90034))
}

// TestS3Upload_retries covers what a client retrying after a lost answer
// meets: a part PUT again replaces the part and returns its new ETag; a
// second completion is 400 -20503 while finishing and 404 -20501 when done;
// the "done" status with its node stays readable; cancelling a done upload
// is 404 and does not remove its status.
func TestS3Upload_retries(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true), S3FinishDelay: 300 * time.Millisecond})
	svc := e.svc()
	key := testKey("RSA-4096/AES-256-GCM", "svc")
	ch := svc.createChannel(roomRecordings, "retry.bin", 4, true)
	urls := svc.s3URLs(ch.UploadID, 4, 1, 1)
	_, first, _ := putPart(t, urls.URLs[0].URL, []byte("abcd"), 4)
	status, second, body := putPart(t, urls.URLs[0].URL, []byte("wxyz"), 4)
	if sum := md5.Sum([]byte("wxyz")); status != http.StatusOK || second != `"`+hex.EncodeToString(sum[:])+`"` || second == first {
		t.Fatalf("part PUT again: %d %s %s (first ETag %s)", status, second, body, first)
	}
	completion := func(etag string) map[string]any {
		return map[string]any{"parts": []map[string]any{{"partNumber": 1, "partEtag": etag}}, "fileKey": key}
	}
	path := "/api/v4/nodes/files/uploads/" + ch.UploadID
	svc.expectError(http.MethodPut, path+"/s3", completion(first), http.StatusBadRequest, code(-80045))
	svc.call(http.MethodPut, path+"/s3", completion(second), http.StatusAccepted, nil)
	svc.expectError(http.MethodPut, path+"/s3", completion(second), http.StatusBadRequest, code(-20503))

	st, _ := pollStatus(svc, ch.UploadID)
	if st.Status != "done" || st.Node == nil {
		t.Fatalf("status %+v", st)
	}
	if got := svc.download(st.Node.ID, "", http.StatusOK); string(got) != "wxyz" {
		t.Fatalf("content %q", got)
	}
	svc.expectError(http.MethodPut, path+"/s3", completion(second), http.StatusNotFound, code(-20501))
	svc.expectError(http.MethodPost, path+"/s3_urls", map[string]any{"size": 4, "firstPartNumber": 2, "lastPartNumber": 2}, http.StatusNotFound, code(-20501))
	svc.expectError(http.MethodDelete, path, nil, http.StatusNotFound, code(-20501))
	time.Sleep(100 * time.Millisecond)
	var again uploadStatus
	svc.call(http.MethodGet, path, nil, http.StatusOK, &again)
	if again.Status != "done" || again.Node == nil || again.Node.ID != st.Node.ID {
		t.Fatalf("status later %+v, want done with node %d", again, st.Node.ID)
	}
}
