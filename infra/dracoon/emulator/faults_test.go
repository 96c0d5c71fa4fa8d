package emulator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		want    emulator.Faults
		wantErr string
	}{
		{name: "empty", spec: ""},
		{name: "full", spec: "seed=42,500=0.05,429=0.05,retry-after=2,reset=0.02,latency=5ms,paths=/api/v4/uploads;/emulator-s3/",
			want: emulator.Faults{Seed: 42, StatusRates: map[int]float64{500: 0.05, 429: 0.05}, RetryAfter: 2 * time.Second,
				ResetRate: 0.02, Latency: 5 * time.Millisecond, PathPrefixes: []string{"/api/v4/uploads", "/emulator-s3/"}}},
		{name: "retry_after_duration", spec: "429=1,retry-after=1500ms", want: emulator.Faults{StatusRates: map[int]float64{429: 1}, RetryAfter: 1500 * time.Millisecond}},
		{name: "unknown_key", spec: "boom=1", wantErr: "unknown key"},
		{name: "not_an_error_status", spec: "404=0.1", wantErr: "not 429 or 5xx"},
		{name: "rate_above_one", spec: "500=1.5", wantErr: "not in [0,1]"},
		{name: "sum_above_one", spec: "500=0.6,503=0.6", wantErr: "add up"},
		{name: "no_equals", spec: "reset", wantErr: "key=value"},
		{name: "bad_latency", spec: "latency=fast", wantErr: "latency"},
		{name: "after_kinds", spec: "seed=5,after-reset=0.1,after-502=0.05,after-429=0.05,after-delay=0.1,after-delay-for=90s,reset=0.1,paths=/emulator-s3/",
			want: emulator.Faults{Seed: 5, ResetRate: 0.1, PathPrefixes: []string{"/emulator-s3/"}, AfterResetRate: 0.1,
				AfterStatusRates: map[int]float64{502: 0.05, 429: 0.05}, AfterDelayRate: 0.1, AfterDelay: 90 * time.Second}},
		{name: "cut", spec: "seed=2,cut=0.1,500=0.05", want: emulator.Faults{Seed: 2, CutRate: 0.1, StatusRates: map[int]float64{500: 0.05}}},
		{name: "cut_sum_above_one", spec: "cut=0.6,reset=0.6", wantErr: "add up"},
		{name: "after_not_an_error_status", spec: "after-404=0.1", wantErr: "after-status 404 is not 429 or 5xx"},
		{name: "after_unknown_key", spec: "after-everything=0.1", wantErr: "unknown key"},
		{name: "after_sum_above_one", spec: "500=0.5,after-reset=0.3,after-502=0.3", wantErr: "add up"},
		{name: "after_rate_above_one", spec: "after-delay=2", wantErr: "after-delay rate 2 is not in [0,1]"},
		{name: "after_negative_delay", spec: "after-delay=0.1,after-delay-for=-1s", wantErr: "must not be negative"},
		{name: "after_bad_delay", spec: "after-delay-for=soon", wantErr: "after-delay-for"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := emulator.ParseFaults(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(tc.want)
			if !bytes.Equal(a, b) {
				t.Fatalf("got %s, want %s", a, b)
			}
		})
	}
}

// statuses sends n GET system info requests one at a time and returns the
// statuses (-1 for a network error).
func statuses(t *testing.T, base string, n int) []int {
	t.Helper()
	out := make([]int, n)
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range out {
		resp, err := client.Get(base + "/api/v4/public/system/info")
		if err != nil {
			out[i] = -1
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out[i] = resp.StatusCode
	}
	return out
}

func TestFaults_deterministic(t *testing.T) {
	faults, err := emulator.ParseFaults("seed=7,500=0.1,429=0.1,reset=0.05,retry-after=3")
	if err != nil {
		t.Fatal(err)
	}
	run := func() []int {
		e := newEnv(t, emulator.Config{Faults: faults})
		return statuses(t, e.URL, 200)
	}
	first, second := run(), run()
	count := map[int]int{}
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("request %d: %d then %d with the same seed", i, first[i], second[i])
		}
		count[first[i]]++
	}
	for _, s := range []int{http.StatusOK, http.StatusInternalServerError, http.StatusTooManyRequests, -1} {
		if count[s] == 0 {
			t.Errorf("no %d among 200 requests: %v", s, count)
		}
	}
	if count[http.StatusOK] < 120 {
		t.Errorf("only %d of 200 requests succeeded: %v", count[http.StatusOK], count)
	}
	other, _ := emulator.ParseFaults("seed=8,500=0.1,429=0.1,reset=0.05")
	e := newEnv(t, emulator.Config{Faults: other})
	if third := statuses(t, e.URL, 200); equalInts(third, first) {
		t.Error("a different seed gave the same faults")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaults_shapes_and_injection(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true)})
	svc := e.svc()

	// 429 on the API: error shape, Retry-After, then normal service.
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodGet, PathPrefix: "/api/v4/nodes", Times: 2, Status: 429, RetryAfter: 2 * time.Second})
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/v4/nodes", nil)
		req.Header.Set("Authorization", "Bearer "+svc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ae apiError
		_ = json.NewDecoder(resp.Body).Decode(&ae)
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || ae.Code != 429 || resp.Header.Get(emulator.FaultHeader) == "" {
			t.Fatalf("injected 429: %d %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), ae)
		}
	}
	svc.call(http.MethodGet, "/api/v4/nodes", nil, http.StatusOK, nil)

	// 500 on the token endpoint: OAuth error shape.
	e.Emu.InjectFault(emulator.FaultRule{PathPrefix: "/oauth/token", Status: 500})
	status, tr := e.oauth(url.Values{"grant_type": {"password"}, "username": {"svc"}, "password": {"svc-pw"}}, stdBasic(clientID, clientSecret))
	if status != 500 || tr.Error != "server_error" {
		t.Fatalf("oauth fault: %d %+v", status, tr)
	}

	// Reset on a chunk: a network error, and the chunk had no effect.
	ch := svc.createChannel(roomRecordings, "faulty.bin", 8, false)
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/", Reset: true})
	req, _ := http.NewRequest(http.MethodPost, ch.UploadURL, bytes.NewReader(pattern(8, 1)))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("reset: got status %d, want a network error", resp.StatusCode)
	}
	sendChunk(t, ch.UploadURL, 0, pattern(8, 1), "8", false, http.StatusCreated)

	// 429 on the fake S3 endpoint becomes S3's 503 SlowDown.
	s3 := svc.createChannel(roomRecordings, "s3faulty.bin", 4, true)
	urls := svc.s3URLs(s3.UploadID, 4, 1, 1)
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPut, PathPrefix: emulator.S3PathPrefix, Status: 429})
	code, _, body := putPart(t, urls.URLs[0].URL, []byte("abcd"), 4)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "<Code>SlowDown</Code>") {
		t.Fatalf("S3 fault: %d %s", code, body)
	}
	if code, etag, _ := putPart(t, urls.URLs[0].URL, []byte("abcd"), 4); code != http.StatusOK || etag == "" {
		t.Fatalf("S3 retry: %d", code)
	}

	// Latency only delays.
	e.Emu.InjectFault(emulator.FaultRule{PathPrefix: "/api/v4/public/", Latency: 150 * time.Millisecond})
	start := time.Now()
	(&client{e: e}).call(http.MethodGet, "/api/v4/public/system/info", nil, http.StatusOK, nil)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("latency fault took %v", d)
	}
}

func TestFaults_queued_rules_apply_in_order(t *testing.T) {
	e := newEnv(t, emulator.Config{Seed: testSeed(true)})
	svc := e.svc()
	// Two queued rules on one path: the first (one 503) must not take the
	// second's status when it is used up and removed.
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodGet, PathPrefix: "/api/v4/nodes", Times: 1, Status: 503})
	e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodGet, PathPrefix: "/api/v4/nodes", Times: 1, Status: 429, RetryAfter: time.Second})
	for _, want := range []int{503, 429, 200} {
		req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/v4/nodes", nil)
		req.Header.Set("Authorization", "Bearer "+svc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
	}
}
