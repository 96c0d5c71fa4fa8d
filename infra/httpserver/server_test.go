package httpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/recording-storage/recording-storage/infra/httpserver"
)

// waitFor is how long a test waits for something that happens in the background.
const waitFor = 5 * time.Second

// started is a running Server with its base URL.
type started struct {
	srv  *httpserver.Server
	url  string
	stop context.CancelFunc
	done chan error // Run's result
}

// start builds a Server on 127.0.0.1:0 from cfg and runs it until the test ends.
func start(t *testing.T, cfg httpserver.Config) *started {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	srv, err := httpserver.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s := &started{srv: srv, url: "http://" + srv.Addr(), stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Run did not return within %s", waitFor)
		}
	})
	return s
}

type health struct {
	code int
	resp map[string]string
}

func getHealth(t *testing.T, url string) health {
	t.Helper()
	resp, err := http.Get(url + "/healthcheck")
	if err != nil {
		t.Fatalf("GET /healthcheck: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var h health
	h.code = resp.StatusCode
	if err := json.NewDecoder(resp.Body).Decode(&h.resp); err != nil {
		t.Fatalf("decode /healthcheck body: %v", err)
	}
	return h
}

// eventually polls /healthcheck until it answers want.
func eventually(t *testing.T, url string, want health) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var got health
	for time.Now().Before(deadline) {
		got = getHealth(t, url)
		if equal(got, want) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("/healthcheck = %d %v, want %d %v", got.code, got.resp, want.code, want.resp)
}

func equal(a, b health) bool {
	if a.code != b.code || len(a.resp) != len(b.resp) {
		return false
	}
	for k, v := range a.resp {
		if b.resp[k] != v {
			return false
		}
	}
	return true
}

var (
	success = health{200, map[string]string{"status": "success"}}
	errOf   = func(name string) health {
		return health{500, map[string]string{"status": "error", "error": name}}
	}
	pass    = func(context.Context) error { return nil }
	failErr = errors.New("boom")
	fail    = func(context.Context) error { return failErr }
)

func TestHealthcheck_results(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		checks []httpserver.Check
		want   health
	}{
		{name: "no_checks_is_success", want: success},
		{
			name:   "all_passing_is_success",
			checks: []httpserver.Check{{Name: "sqs_error", Func: pass}, {Name: "worker_error_file_transferer", Func: pass}},
			want:   success,
		},
		{
			name:   "failing_check_reports_its_name",
			checks: []httpserver.Check{{Name: "sqs_error", Func: pass}, {Name: "worker_error_file_transferer", Func: fail}},
			want:   errOf("worker_error_file_transferer"),
		},
		{
			name: "first_failing_in_order_wins",
			checks: []httpserver.Check{
				{Name: "sqs_error", Func: pass}, {Name: "s3_error", Func: fail}, {Name: "dracoon_error", Func: pass}, {Name: "worker_error_parser", Func: fail},
			},
			want: errOf("s3_error"),
		},
		{
			name:   "panicking_check_fails",
			checks: []httpserver.Check{{Name: "configurator_error", Func: func(context.Context) error { panic("oops") }}},
			want:   errOf("configurator_error"),
		},
		{
			name: "check_outliving_its_timeout_fails",
			checks: []httpserver.Check{{Name: "dracoon_error", Func: func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(10 * time.Millisecond) // still returns, but late
				return nil
			}}},
			want: errOf("dracoon_error"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, httpserver.Config{Checks: tt.checks, CheckTimeout: 50 * time.Millisecond})
			eventually(t, s.url, tt.want)
		})
	}
}

// blockedUntil is an sqs_error check that passes once release is closed
// and until then blocks (up to its context's end).
func blockedUntil(release <-chan struct{}) httpserver.Check {
	return httpserver.Check{Name: "sqs_error", Func: func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

func TestHealthcheck_starting_until_first_round(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := start(t, httpserver.Config{Checks: []httpserver.Check{blockedUntil(release)}, CheckTimeout: time.Minute})

	for range 3 {
		if got, want := getHealth(t, s.url), errOf("starting"); !equal(got, want) {
			t.Fatalf("/healthcheck before the first round = %d %v, want %d %v", got.code, got.resp, want.code, want.resp)
		}
	}
	close(release)
	eventually(t, s.url, success)
}

// toggle is a check whose result the test sets, counting its runs.
type toggle struct {
	failing atomic.Bool
	runs    atomic.Int64
}

func (c *toggle) check(context.Context) error {
	c.runs.Add(1)
	if c.failing.Load() {
		return errors.New(`Get "https://user:secret@configurator.example/instances/x?token=abc": connection refused`)
	}
	return nil
}

// waitRuns waits until c has run n more times.
func (c *toggle) waitRuns(t *testing.T, n int64) {
	t.Helper()
	target := c.runs.Load() + n
	deadline := time.Now().Add(waitFor)
	for c.runs.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("check ran %d times, want %d", c.runs.Load(), target)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHealthcheck_recovers_and_logs_once_per_change(t *testing.T) {
	t.Parallel()
	log, hook := logtest.NewNullLogger()
	c := &toggle{}
	c.failing.Store(true)
	s := start(t, httpserver.Config{
		Checks:        []httpserver.Check{{Name: "dracoon_error", Func: pass}, {Name: "configurator_error", Func: c.check}},
		CheckInterval: 2 * time.Millisecond,
		Logger:        log,
	})

	eventually(t, s.url, errOf("configurator_error"))
	c.waitRuns(t, 5)
	for range 5 {
		getHealth(t, s.url) // probes never log
	}
	c.failing.Store(false)
	eventually(t, s.url, success)
	c.waitRuns(t, 5)

	var entries []*logrus.Entry
	for _, e := range hook.AllEntries() {
		if _, ok := e.Data["check"]; ok {
			entries = append(entries, e)
		}
	}
	if len(entries) != 2 {
		for _, e := range entries {
			t.Logf("%s %q %v", e.Level, e.Message, e.Data)
		}
		t.Fatalf("got %d health log entries, want 2 (failing, recovered)", len(entries))
	}
	wantLevels := []logrus.Level{logrus.ErrorLevel, logrus.InfoLevel}
	for i, e := range entries {
		if e.Level != wantLevels[i] || e.Data["check"] != "configurator_error" || e.Data["code"] != 15014 {
			t.Errorf("entry %d = %s %q %v, want level %s, check configurator_error, code 15014",
				i, e.Level, e.Message, e.Data, wantLevels[i])
		}
	}
	logged, _ := entries[0].Data["error"].(string)
	if !strings.Contains(logged, "configurator.example/instances/x") || !strings.Contains(logged, "connection refused") {
		t.Errorf("logged error %q lost its detail", logged)
	}
	if strings.Contains(logged, "secret") || strings.Contains(logged, "abc") {
		t.Errorf("logged error %q carries a secret", logged)
	}
}

func TestHealthcheck_hung_check_is_not_called_again(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	unblock := make(chan struct{})
	t.Cleanup(func() { close(unblock) })
	s := start(t, httpserver.Config{
		Checks: []httpserver.Check{{Name: "s3_error", Func: func(context.Context) error {
			calls.Add(1)
			<-unblock // ignores its context
			return nil
		}}},
		CheckInterval: 2 * time.Millisecond,
		CheckTimeout:  5 * time.Millisecond,
	})
	eventually(t, s.url, errOf("s3_error"))
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("hung check called %d times, want 1", n)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	s := start(t, httpserver.Config{})
	eventually(t, s.url, success)
	tests := []struct {
		name, method, path string
		wantCode           int
		wantAllow          string
	}{
		{name: "get_healthcheck", method: http.MethodGet, path: "/healthcheck", wantCode: 200},
		{name: "head_healthcheck", method: http.MethodHead, path: "/healthcheck", wantCode: 200},
		{name: "post_healthcheck", method: http.MethodPost, path: "/healthcheck", wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "delete_healthcheck", method: http.MethodDelete, path: "/healthcheck", wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "head_metrics", method: http.MethodHead, path: "/metrics", wantCode: 200},
		{name: "put_metrics", method: http.MethodPut, path: "/metrics", wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "root", method: http.MethodGet, path: "/", wantCode: 404},
		{name: "unknown_path", method: http.MethodGet, path: "/debug/pprof/", wantCode: 404},
		{name: "healthcheck_subpath", method: http.MethodGet, path: "/healthcheck/x", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, s.url+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.wantCode)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if tt.method == http.MethodHead && len(body) != 0 {
				t.Errorf("HEAD answered a body of %d bytes", len(body))
			}
		})
	}
}

func TestMetrics_exposes_registry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: "Things."})
	reg.MustRegister(counter)
	counter.Add(3)
	s := start(t, httpserver.Config{Registry: reg, Checks: []httpserver.Check{{Name: "sqs_error", Func: fail}}})
	if s.srv.Registry() != reg {
		t.Fatal("Registry() is not the configured registry")
	}
	eventually(t, s.url, errOf("sqs_error"))

	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		"test_things_total 3",
		"go_goroutines ",
		"process_cpu_seconds_total ",
		`recording_storage_healthcheck_up{check="sqs_error"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestNew_default_registry_and_shared_registry(t *testing.T) {
	t.Parallel()
	a, err := httpserver.New(httpserver.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Registry() == nil {
		t.Fatal("nil default registry")
	}
	// A second server on the same registry reuses its collectors.
	b, err := httpserver.New(httpserver.Config{Listen: "127.0.0.1:0", Registry: a.Registry()})
	if err != nil {
		t.Fatalf("second New on the same registry: %v", err)
	}
	for _, s := range []*httpserver.Server{a, b} {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run with a done context: %v", err)
		}
	}
}

func TestNew_invalid_config(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     httpserver.Config
		wantErr string
	}{
		{name: "empty_check_name", cfg: httpserver.Config{Checks: []httpserver.Check{{Name: "", Func: pass}}}, wantErr: "Checks[0].Name is empty"},
		{name: "nil_check_func", cfg: httpserver.Config{Checks: []httpserver.Check{{Name: "s3_error", Func: nil}}}, wantErr: "Checks[0].Func is nil"},
		{name: "duplicate_check", cfg: httpserver.Config{Checks: []httpserver.Check{{Name: "s3_error", Func: pass}, {Name: "s3_error", Func: pass}}}, wantErr: "Checks[1].Name \"s3_error\" is a duplicate"},
		{name: "reserved_check_name", cfg: httpserver.Config{Checks: []httpserver.Check{{Name: "starting", Func: pass}}}, wantErr: "is reserved"},
		{name: "negative_interval", cfg: httpserver.Config{CheckInterval: -time.Second}, wantErr: "CheckInterval -1s is negative"},
		{name: "bad_listen", cfg: httpserver.Config{Listen: "8080"}, wantErr: "Listen \"8080\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.cfg.Listen == "" {
				tt.cfg.Listen = "127.0.0.1:0"
			}
			_, err := httpserver.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNew_port_in_use(t *testing.T) {
	t.Parallel()
	a, err := httpserver.New(httpserver.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_ = a.Run(ctx) // releases the address
	})
	if _, err := httpserver.New(httpserver.Config{Listen: a.Addr()}); err == nil {
		t.Fatal("New on a bound address succeeded")
	}
}

func TestRun_graceful_shutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		checks     []httpserver.Check
		silentConn bool // a connection that never sends a request
	}{
		{name: "idle"},
		{name: "silent_connection", silentConn: true},
		{name: "check_ignoring_its_context", checks: []httpserver.Check{{Name: "dracoon_error", Func: func(context.Context) error {
			time.Sleep(time.Hour)
			return nil
		}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := httpserver.New(httpserver.Config{Listen: "127.0.0.1:0", Checks: tt.checks, CheckTimeout: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			url := "http://" + srv.Addr()
			getHealth(t, url) // serving, with a kept-alive connection
			if tt.silentConn {
				conn, err := net.Dial("tcp", srv.Addr())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				time.Sleep(20 * time.Millisecond) // accepted
			}

			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("Run took %s to shut down", d)
				}
			case <-time.After(httpserver.DefaultShutdownTimeout):
				t.Fatalf("Run did not return within %s of cancel", httpserver.DefaultShutdownTimeout)
			}
			if err := srv.Run(t.Context()); err == nil {
				t.Error("second Run succeeded")
			}
			c := &http.Client{Transport: &http.Transport{}}
			if resp, err := c.Get(url + "/healthcheck"); err == nil {
				resp.Body.Close()
				t.Error("server still answers after Run returned")
			}
		})
	}
}

// blockingCollector blocks every scrape until release is closed.
type blockingCollector struct {
	entered chan struct{}
	release chan struct{}
}

func (c blockingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc("test_blocking", "Blocks scrapes.", nil, nil)
}

func (c blockingCollector) Collect(ch chan<- prometheus.Metric) {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-c.release
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("test_blocking", "Blocks scrapes.", nil, nil),
		prometheus.GaugeValue, 1)
}

func TestRun_in_flight_request(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		releaseLate bool // release the request only after the shutdown timeout
		wantRunErr  bool
		wantCode    int
	}{
		{name: "finishes_during_shutdown", wantCode: 200},
		{name: "outlives_shutdown_timeout", releaseLate: true, wantRunErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bc := blockingCollector{entered: make(chan struct{}, 1), release: make(chan struct{})}
			reg := prometheus.NewRegistry()
			reg.MustRegister(bc)
			const shutdownTimeout = 200 * time.Millisecond
			srv, err := httpserver.New(httpserver.Config{Listen: "127.0.0.1:0", Registry: reg, ShutdownTimeout: shutdownTimeout})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()

			code := make(chan int, 1)
			go func() {
				resp, err := http.Get("http://" + srv.Addr() + "/metrics")
				if err != nil {
					code <- 0
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code <- resp.StatusCode
			}()
			<-bc.entered
			cancel()

			if !tt.releaseLate {
				select {
				case err := <-done:
					t.Fatalf("Run returned %v while a request was in flight", err)
				case <-time.After(shutdownTimeout / 4):
				}
				close(bc.release)
			}
			select {
			case err := <-done:
				if (err != nil) != tt.wantRunErr {
					t.Errorf("Run = %v, want error: %t", err, tt.wantRunErr)
				}
			case <-time.After(shutdownTimeout + waitFor):
				t.Fatal("Run did not return")
			}
			if tt.releaseLate {
				close(bc.release)
			}
			if got := <-code; got != tt.wantCode {
				t.Errorf("in-flight GET /metrics = %d, want %d (0: connection closed)", got, tt.wantCode)
			}
		})
	}
}

// getProbe returns the status and body of GET url+path.
func getProbe(t *testing.T, url, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// TestProbes: /livez fails only while a Live check fails, /readyz while any
// check fails; /healthcheck keeps its answer.
func TestProbes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		checks     []httpserver.Check
		wantHealth health
		wantLive   int
		wantReady  string
	}{
		{name: "all_pass", checks: []httpserver.Check{{Name: "worker_error_parser", Func: pass, Live: true}, {Name: "sqs_error", Func: pass}},
			wantHealth: success, wantLive: 200, wantReady: "ok"},
		{name: "dependency_fails", checks: []httpserver.Check{{Name: "worker_error_parser", Func: pass, Live: true}, {Name: "sqs_error", Func: fail}},
			wantHealth: errOf("sqs_error"), wantLive: 200, wantReady: "not ready: sqs_error"},
		{name: "stage_fails", checks: []httpserver.Check{{Name: "worker_error_parser", Func: fail, Live: true}, {Name: "sqs_error", Func: pass}},
			wantHealth: errOf("worker_error_parser"), wantLive: 503, wantReady: "not ready: worker_error_parser"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, httpserver.Config{Checks: tt.checks})
			eventually(t, s.url, tt.wantHealth)
			if code, body := getProbe(t, s.url, "/livez"); code != tt.wantLive {
				t.Errorf("/livez = %d %q, want %d", code, body, tt.wantLive)
			}
			code, body := getProbe(t, s.url, "/readyz")
			if wantCode := map[bool]int{true: 200, false: 503}[tt.wantReady == "ok"]; code != wantCode || body != tt.wantReady {
				t.Errorf("/readyz = %d %q, want %d %q", code, body, wantCode, tt.wantReady)
			}
		})
	}
}

// TestProbes_starting: before the first round of checks ends the process
// is live but not ready.
func TestProbes_starting(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := start(t, httpserver.Config{Checks: []httpserver.Check{blockedUntil(release)}, CheckTimeout: time.Minute})
	defer close(release)
	if code, _ := getProbe(t, s.url, "/livez"); code != 200 {
		t.Errorf("/livez while starting = %d, want 200", code)
	}
	if code, body := getProbe(t, s.url, "/readyz"); code != 503 || body != "not ready: starting" {
		t.Errorf("/readyz while starting = %d %q, want 503 %q", code, body, "not ready: starting")
	}
}
