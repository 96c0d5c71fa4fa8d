package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/pipeline"
)

// stackEnv points the commands at topics and queues of the test's own on
// the local stack, and at a free HTTP port, which it returns.
func stackEnv(t *testing.T) string {
	t.Helper()
	awstest.Config(t)
	id := "run-" + strings.ToLower(watermill.NewShortUUID()[:8]) + "-"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	for k, v := range map[string]string{
		"RS_STAGES_PARSE_QUEUE": id + "jobs", "RS_STAGES_RESOLVE_TOPIC": id + "parsed", "RS_STAGES_ROOMS_TOPIC": id + "resolved",
		"RS_STAGES_TRANSFER_TOPIC": id + "ready", "RS_STAGES_SHARE_TOPIC": id + "share", "RS_STAGES_TRANSFERRED": id + "transferred",
		"RS_STAGES_POISON": id + "poison", "RS_HTTP_LISTEN": addr, "RS_LOGGER_LEVEL": "warn",
	} {
		t.Setenv(k, v)
	}
	return addr
}

// setUpTransport returns the transport of cfg, its topics and queues
// created, closed when the test ends.
func setUpTransport(t *testing.T, cfg conf.Config) *pipeline.Transport {
	t.Helper()
	tr, err := pipeline.NewTransport(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if err := tr.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tr
}

// startRun runs `run` with args until the test ends; it fails the test if
// run stops before.
func startRun(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, _, errOut := runCtx(ctx, append([]string{"run"}, args...)...)
		if ctx.Err() == nil {
			t.Errorf("run %v exited %d before the test ended: %s", args, code, errOut)
		} else if code != 0 {
			t.Errorf("run %v exited %d when stopped: %s", args, code, errOut)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// getUntil polls GET http://addr+path until it answers want, and returns
// the last answer's status and body.
func getUntil(t *testing.T, addr, path string, want int) (int, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := 0, ""
		resp, err := http.Get("http://" + addr + path)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
		}
		if code == want || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRun_stages_alone: a process running one stage serves /healthcheck,
// /livez, /readyz and /metrics and is healthy with only that stage's
// dependencies: the sweep alone (it has no router), and parse alone without
// any instance configuration.
func TestRun_stages_alone(t *testing.T) {
	tests := []struct {
		name  string
		stage string
		env   map[string]string
		want  []string // on /metrics
	}{
		{name: "sweep", stage: "sweep", env: map[string]string{"RS_SHARER_INSTANCES": "local.recording-storage.test"},
			want: []string{"\nrecording_storage_sweep_interval_seconds 3600\n", "\nrecording_storage_sweep_last_success_timestamp_seconds 1."}},
		{name: "parse_without_instance_file", stage: "parse", env: map[string]string{"RS_INSTANCES_FILE": "/nonexistent/instances.yaml"},
			want: []string{`recording_storage_poisoned_total{class="permanent",stage="parse"} 0`, `recording_storage_retries_total{stage="parse"} 0`,
				`recording_storage_queue_messages{queue="run-`, `recording_storage_queue_oldest_message_age_seconds{queue="run-`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := stackEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			startRun(t, "--stages", tt.stage)
			for _, path := range []string{"/healthcheck", "/livez", "/readyz", "/metrics"} {
				if code, body := getUntil(t, addr, path, http.StatusOK); code != http.StatusOK {
					t.Errorf("GET %s = %d %q, want 200", path, code, body)
				}
			}
			_, metrics := getUntil(t, addr, "/metrics", http.StatusOK)
			for _, want := range append(tt.want, "recording_storage_healthcheck_up{") {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics has no %q", want)
				}
			}
			for _, dep := range []string{"dracoon_error", "s3_error"} {
				if strings.Contains(metrics, `check="`+dep+`"`) {
					t.Errorf("stage %s alone is checked for %s, which it does not need", tt.stage, dep)
				}
			}
		})
	}
}

// TestRun_create_resources_false: with stages.create_resources false, run
// creates nothing and exits 1 naming each missing queue and topic of its
// own stages; once they exist it starts.
func TestRun_create_resources_false(t *testing.T) {
	addr := stackEnv(t)
	t.Setenv("RS_STAGES_CREATE_RESOURCES", "false")
	cfg, err := conf.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "run", "--stages", "rooms")
	if code != 1 {
		t.Fatalf("run exited %d, want 1: %s", code, errOut)
	}
	s := cfg.Stages
	for _, want := range []string{
		"queue " + conf.SubscriptionQueue(s.Rooms.Topic, "rooms"), "topic " + s.Rooms.Topic,
		"topic " + s.Transfer.Topic, "topic " + s.Poison,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("run's error does not name %q: %s", want, errOut)
		}
	}
	for _, notOwn := range []string{s.Parse.Queue, s.Resolve.Topic, s.Share.Topic} {
		if strings.Contains(errOut, notOwn) {
			t.Errorf("run's error names %q, which stage rooms does not use: %s", notOwn, errOut)
		}
	}
	// Nothing was created: a second run fails the same way (the log entry
	// before the reason differs in its time).
	reason := func(errOut string) string { return errOut[strings.LastIndex(errOut, "\nrun: ")+1:] }
	if code, _, errOut2 := run(t, "run", "--stages", "rooms"); code != 1 || reason(errOut2) != reason(errOut) {
		t.Errorf("second run exited %d with %q, want 1 with %q", code, reason(errOut2), reason(errOut))
	}

	cfg.Stages.CreateResources = true
	setUpTransport(t, cfg)
	t.Setenv("RS_SHARER_INSTANCES", "none.test") // no DRACOON of the stack to check
	startRun(t, "--stages", "rooms")
	if code, body := getUntil(t, addr, "/livez", http.StatusOK); code != http.StatusOK {
		t.Errorf("GET /livez = %d %q, want 200", code, body)
	}
}

// TestRunCommand_refuses_configurator_without_sweep: with instances from a
// configurator the sweep must be told which instances to sweep, or a file
// key a share step failed to hand out would never reach the room's members
// once the source is removed: run refuses to start, naming both settings.
func TestRunCommand_refuses_configurator_without_sweep(t *testing.T) {
	t.Setenv("RS_INSTANCES_SOURCE", "configurator")
	t.Setenv("RS_INSTANCES_CONFIGURATOR_URL", "https://configurator.example")
	t.Setenv("RS_SHARER_INSTANCES", "")
	code, _, errOut := run(t, "run", "--stages", "parse")
	if code != 1 || !strings.Contains(errOut, "sharer.instances") || !strings.Contains(errOut, "instances.source is configurator") {
		t.Fatalf("exit %d: %s; want 1 naming sharer.instances and instances.source", code, errOut)
	}
}
