package emulator_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// oneShot returns a client that opens a new connection per request, so that
// a reset is never hidden by a transparent retry on a reused connection.
func oneShot(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

// request builds an API request with c's token and a JSON body (nil: none).
func (c *client) request(method, path string, body any) *http.Request {
	c.e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			c.e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = c.e.URL + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req
}

// seen is what a client saw of one request: a status and body, or an error.
type seen struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func send(c *http.Client, req *http.Request) seen {
	resp, err := c.Do(req)
	if err != nil {
		return seen{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return seen{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// spoiled is one request whose answer a test spoils, with the check that
// it took effect nevertheless.
type spoiled struct {
	method, prefix string // for the FaultRule
	req            *http.Request
	verify         func(t *testing.T)
}

// TestFaults_after_handler spoils the answer of real routes in each
// after-handler way and shows that every request took full effect although
// the client saw a reset, a 502 or a timeout.
func TestFaults_after_handler(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true), S3FinishDelay: -1})
	svc := e.svc()
	key := testKey("RSA-4096/AES-256-GCM", "svc")

	// s3Channel opens an S3 channel for one 1000-byte part and returns it
	// with the part's URL.
	s3Channel := func(name string) (uploadChannel, string) {
		ch := svc.createChannel(roomRecordings, name, 1000, true)
		urls := svc.s3URLs(ch.UploadID, 1000, 1, 1)
		return ch, urls.URLs[0].URL
	}
	completeS3 := func(t *testing.T, ch uploadChannel, etag string, want int) {
		svc.call(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
			map[string]any{"parts": []map[string]any{{"partNumber": 1, "partEtag": etag}}, "fileKey": key}, want, nil)
	}
	md5hex := func(b []byte) string {
		sum := md5.Sum(b)
		return hex.EncodeToString(sum[:])
	}

	routes := []struct {
		name    string
		prepare func(tag string) spoiled
	}{
		{name: "room_create", prepare: func(tag string) spoiled {
			name := "room-" + tag
			return spoiled{method: http.MethodPost, prefix: "/api/v4/nodes/rooms",
				req: svc.request(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": name, "parentId": roomRecordings}),
				verify: func(t *testing.T) {
					var list nodeList
					svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes?parent_id=%d&filter=name:eq:%s", roomRecordings, name), nil, http.StatusOK, &list)
					if list.Range.Total != 1 || list.Items[0].Type != "room" {
						t.Fatalf("room %q not created: %+v", name, list)
					}
				}}
		}},
		{name: "chunk_post", prepare: func(tag string) spoiled {
			ch := svc.createChannel(roomRecordings, "chunk-"+tag+".bin", 8, false)
			req, _ := http.NewRequest(http.MethodPost, ch.UploadURL, bytes.NewReader(pattern(8, 1)))
			req.Header.Set("Content-Range", "bytes 0-7/8")
			return spoiled{method: http.MethodPost, prefix: "/api/v4/uploads/", req: req,
				verify: func(t *testing.T) {
					var n node
					complete(t, ch.UploadURL, map[string]any{"fileKey": key}, http.StatusCreated, &n)
					if n.Size != 8 || !bytes.Equal(svc.download(n.ID, "", http.StatusOK), pattern(8, 1)) {
						t.Fatalf("chunk not stored: node %+v", n)
					}
				}}
		}},
		{name: "proxy_complete", prepare: func(tag string) spoiled {
			name := "proxy-" + tag + ".bin"
			ch := svc.createChannel(roomRecordings, name, 3, false)
			sendChunk(t, ch.UploadURL, 0, []byte("abc"), "3", false, http.StatusCreated)
			raw, _ := json.Marshal(map[string]any{"fileKey": key})
			req, _ := http.NewRequest(http.MethodPut, ch.UploadURL, bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/json")
			return spoiled{method: http.MethodPut, prefix: "/api/v4/uploads/", req: req,
				verify: func(t *testing.T) {
					var ae apiError
					complete(t, ch.UploadURL, map[string]any{"fileKey": key}, http.StatusNotFound, &ae)
					checkAPIError(t, ae, http.StatusNotFound, code(-20501))
					var list nodeList
					svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes?parent_id=%d&filter=name:eq:%s", roomRecordings, name), nil, http.StatusOK, &list)
					if list.Range.Total != 1 || list.Items[0].Size != 3 {
						t.Fatalf("file %q not created: %+v", name, list)
					}
				}}
		}},
		{name: "s3_part_put", prepare: func(tag string) spoiled {
			ch, u := s3Channel("part-" + tag + ".bin")
			data := pattern(1000, 2)
			req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(data))
			return spoiled{method: http.MethodPut, prefix: emulator.S3PathPrefix, req: req,
				verify: func(t *testing.T) {
					completeS3(t, ch, md5hex(data), http.StatusAccepted) // the stored part has the data's ETag
					st, _ := pollStatus(svc, ch.UploadID)
					if st.Status != "done" || st.Node.Size != 1000 {
						t.Fatalf("status %+v", st)
					}
				}}
		}},
		{name: "s3_complete", prepare: func(tag string) spoiled {
			ch, u := s3Channel("s3-" + tag + ".bin")
			data := pattern(1000, 3)
			if status, _, body := putPart(t, u, data, 1000); status != http.StatusOK {
				t.Fatalf("part: %d %s", status, body)
			}
			req := svc.request(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
				map[string]any{"parts": []map[string]any{{"partNumber": 1, "partEtag": md5hex(data)}}, "fileKey": key})
			return spoiled{method: http.MethodPut, prefix: "/api/v4/nodes/files/uploads/", req: req,
				verify: func(t *testing.T) {
					st, _ := pollStatus(svc, ch.UploadID)
					if st.Status != "done" || st.Node == nil || st.Node.Size != 1000 {
						t.Fatalf("status %+v", st)
					}
					// The retry a client would send: the channel is consumed.
					var ae apiError
					svc.call(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
						map[string]any{"parts": []map[string]any{{"partNumber": 1, "partEtag": md5hex(data)}}, "fileKey": key}, http.StatusNotFound, &ae)
					checkAPIError(t, ae, http.StatusNotFound, code(-20501))
				}}
		}},
	}
	kinds := []struct {
		name    string
		rule    emulator.FaultRule
		timeout time.Duration
		check   func(t *testing.T, got seen, s3 bool)
	}{
		{name: "reset", rule: emulator.FaultRule{After: emulator.AfterReset}, timeout: 10 * time.Second,
			check: func(t *testing.T, got seen, _ bool) {
				if got.err == nil || isTimeout(got.err) {
					t.Fatalf("got %d %v, want a connection error", got.status, got.err)
				}
			}},
		{name: "status", rule: emulator.FaultRule{After: emulator.AfterStatus}, timeout: 10 * time.Second,
			check: func(t *testing.T, got seen, s3 bool) {
				if got.err != nil || got.status != http.StatusBadGateway || got.header.Get(emulator.FaultHeader) != "after-status-502" {
					t.Fatalf("got %d %v %v, want an injected 502", got.status, got.header, got.err)
				}
				if s3 {
					if !strings.Contains(string(got.body), "<Error>") {
						t.Fatalf("S3 502 body %s", got.body)
					}
					return
				}
				var body map[string]any
				if err := json.Unmarshal(got.body, &body); err != nil || body["code"] != 502.0 || body["message"] != "Bad Gateway" {
					t.Fatalf("API 502 body %s", got.body)
				}
				if _, ok := body["errorCode"]; ok {
					t.Fatalf("502 body has errorCode: %s", got.body)
				}
			}},
		{name: "delay", rule: emulator.FaultRule{After: emulator.AfterDelay, Delay: 5 * time.Second}, timeout: 300 * time.Millisecond,
			check: func(t *testing.T, got seen, _ bool) {
				if !isTimeout(got.err) {
					t.Fatalf("got %d %v, want a client timeout", got.status, got.err)
				}
			}},
	}
	for _, k := range kinds {
		for _, r := range routes {
			t.Run(k.name+"/"+r.name, func(t *testing.T) {
				sp := r.prepare(k.name)
				rule := k.rule
				rule.Method, rule.PathPrefix = sp.method, sp.prefix
				e.Emu.InjectFault(rule)
				start := time.Now()
				got := send(oneShot(k.timeout), sp.req)
				k.check(t, got, sp.prefix == emulator.S3PathPrefix)
				if d := time.Since(start); d > 4*time.Second {
					t.Errorf("the client waited %v", d)
				}
				sp.verify(t)
			})
		}
	}
}

// TestFaults_after_delay_delivers_late shows that a client that waits gets
// the real answer of a delayed response, marked as a fault.
func TestFaults_after_delay_delivers_late(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	const delay = 200 * time.Millisecond
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/rooms", After: emulator.AfterDelay, Delay: delay})
	start := time.Now()
	got := send(oneShot(5*time.Second), svc.request(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "late", "parentId": roomRecordings}))
	var n node
	if got.err != nil || got.status != http.StatusCreated || json.Unmarshal(got.body, &n) != nil || n.Name != "late" {
		t.Fatalf("got %d %s %v, want the real 201", got.status, got.body, got.err)
	}
	if d := time.Since(start); d < delay {
		t.Errorf("answered after %v, want at least %v", d, delay)
	}
	if h := got.header.Get(emulator.FaultHeader); h != "after-delay" {
		t.Errorf("fault header %q", h)
	}
	svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/%d", n.ID), nil, http.StatusOK, nil)
}

// TestFaults_after_spec drives after-handler faults from a --faults spec:
// paths restricts them, the requests take effect, and adding after- keys to
// a spec keeps every fault the other keys draw.
func TestFaults_after_spec(t *testing.T) {
	t.Run("paths_and_effect", func(t *testing.T) {
		faults, err := emulator.ParseFaults("seed=3,after-502=1,paths=/api/v4/nodes/rooms")
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, emulator.Config{Faults: faults})
		svc := e.svc() // /oauth is not in paths
		for i := range 3 {
			name := fmt.Sprintf("spec-%d", i)
			got := send(oneShot(5*time.Second), svc.request(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": name, "parentId": roomRecordings}))
			if got.status != http.StatusBadGateway {
				t.Fatalf("room %d: %d %v, want 502", i, got.status, got.err)
			}
		}
		var list nodeList
		svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes?parent_id=%d&filter=name:cn:spec-", roomRecordings), nil, http.StatusOK, &list)
		if list.Range.Total != 3 {
			t.Fatalf("%d rooms created, want 3", list.Range.Total)
		}
	})
	t.Run("draw_order", func(t *testing.T) {
		const base = "seed=11,500=0.1,429=0.1,reset=0.05"
		run := func(spec string) []int {
			faults, err := emulator.ParseFaults(spec)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, emulator.Config{Faults: faults})
			out := make([]int, 150)
			for i := range out {
				got := send(oneShot(500*time.Millisecond), (&client{e: e}).request(http.MethodGet, "/api/v4/public/system/info", nil))
				switch {
				case isTimeout(got.err):
					out[i] = -2
				case got.err != nil:
					out[i] = -1
				default:
					out[i] = got.status
				}
			}
			return out
		}
		before := run(base)
		withAfter := run(base + ",after-reset=0.05,after-503=0.1,after-delay=0.03,after-delay-for=3s")
		again := run(base + ",after-reset=0.05,after-503=0.1,after-delay=0.03,after-delay-for=3s")
		count := map[int]int{}
		for i := range before {
			if withAfter[i] != again[i] {
				t.Fatalf("request %d: %d then %d with the same spec", i, withAfter[i], again[i])
			}
			if before[i] != http.StatusOK && withAfter[i] != before[i] {
				t.Fatalf("request %d: %d became %d when after- keys were added", i, before[i], withAfter[i])
			}
			if before[i] == http.StatusOK {
				count[withAfter[i]]++
			}
		}
		for _, s := range []int{http.StatusOK, http.StatusServiceUnavailable, -1, -2} {
			if count[s] == 0 {
				t.Errorf("no %d among the requests the base spec let through: %v", s, count)
			}
		}
	})
}

// TestFaults_cut: a cut answer carries the real status and headers and the
// first half of its body, then the connection closes, after the request
// took full effect. An answer without a body is sent whole and not counted
// as a fault. Faults are counted by kind in Requests.
func TestFaults_cut(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true), S3FinishDelay: -1})
	svc := e.svc()
	key := testKey("RSA-4096/AES-256-GCM", "svc")
	data := pattern(3000, 4)
	file := svc.uploadFile(roomRecordings, "cut-download.bin", data, 1000, &key)
	var d struct {
		DownloadURL string `json:"downloadUrl"`
	}
	svc.call(http.MethodPost, fmt.Sprintf("/api/v4/nodes/files/%d/downloads", file.ID), nil, http.StatusOK, &d)

	tests := []struct {
		name   string
		method string
		prefix string
		req    func() *http.Request
		status int
		whole  []byte // the real answer's body, when the test knows it
		cut    bool   // false: the answer has no body and comes whole
		verify func(t *testing.T)
	}{
		{name: "room_create", method: http.MethodPost, prefix: "/api/v4/nodes/rooms",
			req: func() *http.Request {
				return svc.request(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "cut-room", "parentId": roomRecordings})
			},
			status: http.StatusCreated, cut: true,
			verify: func(t *testing.T) {
				var list nodeList
				svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes?parent_id=%d&filter=name:eq:cut-room", roomRecordings), nil, http.StatusOK, &list)
				if list.Range.Total != 1 {
					t.Fatalf("room not created: %+v", list)
				}
			}},
		{name: "download", method: http.MethodGet, prefix: "/api/v4/downloads/",
			req: func() *http.Request {
				req, _ := http.NewRequest(http.MethodGet, d.DownloadURL, nil)
				return req
			},
			status: http.StatusOK, whole: data, cut: true, verify: func(*testing.T) {}},
		{name: "s3_complete_without_body", method: http.MethodPut, prefix: "/api/v4/nodes/files/uploads/",
			req: func() *http.Request {
				ch := svc.createChannel(roomRecordings, "cut-s3.bin", 4, true)
				urls := svc.s3URLs(ch.UploadID, 4, 1, 1)
				_, etag, _ := putPart(t, urls.URLs[0].URL, []byte("abcd"), 4)
				return svc.request(http.MethodPut, "/api/v4/nodes/files/uploads/"+ch.UploadID+"/s3",
					map[string]any{"parts": []map[string]any{{"partNumber": 1, "partEtag": etag}}, "fileKey": key})
			},
			status: http.StatusAccepted, verify: func(*testing.T) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req()
			before := e.Emu.Requests().Faults["cut"]
			e.Emu.InjectFault(emulator.FaultRule{Method: tc.method, PathPrefix: tc.prefix, After: emulator.AfterCut})
			got := send(oneShot(10*time.Second), req)
			counted := e.Emu.Requests().Faults["cut"] - before
			if got.status != tc.status {
				t.Fatalf("status %d (%v), want %d", got.status, got.err, tc.status)
			}
			switch {
			case tc.cut:
				if !errors.Is(got.err, io.ErrUnexpectedEOF) || got.header.Get(emulator.FaultHeader) != "cut" {
					t.Fatalf("body %d bytes, error %v, fault %q; want a body cut off", len(got.body), got.err, got.header.Get(emulator.FaultHeader))
				}
				if full := got.header.Get("Content-Length"); full == "" || full == strconv.Itoa(len(got.body)) || len(got.body) == 0 {
					t.Fatalf("got %d bytes of Content-Length %s", len(got.body), full)
				}
				if tc.whole != nil && !bytes.HasPrefix(tc.whole, got.body) {
					t.Fatal("the cut body is not the start of the real one")
				}
				if counted != 1 {
					t.Errorf("%d cuts counted, want 1", counted)
				}
			default:
				if got.err != nil || len(got.body) != 0 || got.header.Get(emulator.FaultHeader) != "" || counted != 0 {
					t.Fatalf("error %v, body %q, fault %q, %d counted; want the whole empty answer, not counted",
						got.err, got.body, got.header.Get(emulator.FaultHeader), counted)
				}
			}
			tc.verify(t)
		})
	}

	t.Run("spec", func(t *testing.T) {
		faults, err := emulator.ParseFaults("seed=3,cut=1,paths=/api/v4/nodes/rooms")
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, emulator.Config{Faults: faults})
		svc := e.svc()
		for i := range 3 {
			got := send(oneShot(5*time.Second), svc.request(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": fmt.Sprintf("cut-%d", i), "parentId": roomRecordings}))
			if !errors.Is(got.err, io.ErrUnexpectedEOF) {
				t.Fatalf("room %d: %d %v, want a cut body", i, got.status, got.err)
			}
		}
		var list nodeList
		svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes?parent_id=%d&filter=name:cn:cut-", roomRecordings), nil, http.StatusOK, &list)
		if list.Range.Total != 3 {
			t.Fatalf("%d rooms created, want 3", list.Range.Total)
		}
		if got := e.Emu.Requests().Faults; got["cut"] != 3 || len(got) != 1 {
			t.Fatalf("faults counted %v, want 3 cuts", got)
		}
	})
}
