package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
)

// Files that name metrics of the service.
var metricSources = []string{"deploy/prometheus/alerts.yaml", "deploy/grafana/recording-storage.json"}

// metricName matches the service's metric names (all have its prefix).
var metricName = regexp.MustCompile(`\brecording_storage_[a-z0-9_]+`)

// TestMetrics_named_by_rules_and_dashboard runs every stage in one process
// on the stack, passes one job through them, and checks that every metric
// the alert rules and the dashboard name is on /metrics.
func TestMetrics_named_by_rules_and_dashboard(t *testing.T) {
	var named []string
	for _, f := range metricSources {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricName.FindAllString(string(raw), -1) {
			if !slices.Contains(named, m) {
				named = append(named, m)
			}
		}
	}
	if len(named) < 10 {
		t.Fatalf("only %d metric names found in %v: %v", len(named), metricSources, named)
	}

	addr := stackEnv(t)
	const domain = "metrics.recording-storage.test"
	emu := emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: emulatortest.FastSeed(t, false)})
	inst := map[string]any{domain: map[string]any{"storage": "dracoon", "dracoon": map[string]any{
		"baseUrl": emu.URL, "login": emulatortest.ServiceLogin, "password": emulatortest.ServicePassword,
		"encryptionPassword": emulatortest.ServiceEncryptionPassword, "clientId": emulatortest.ClientID,
		"clientSecret": emulatortest.ClientSecret, "parentRoomId": emulatortest.ParentRoomID,
		"targets": []any{map[string]any{"meetingTypeId": "any", "copyTo": []any{map[string]any{"path": "metrics"}}}}}}}
	raw, _ := json.Marshal(inst)
	instFile := filepath.Join(t.TempDir(), "instances.json")
	if err := os.WriteFile(instFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"RS_INSTANCES_FILE": instFile, "RS_SHARER_INSTANCES": domain,
		"RS_STAGES_RETRY_DELAY": "1s", "RS_S3_CHUNK_SIZE": "5MiB"} {
		t.Setenv(k, v)
	}
	cfg := awstest.Config(t)
	client := awstest.S3(t, cfg.AWS)
	bucket := awstest.Bucket(t, client, "metrics")
	key := "recording.mp4"
	if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key,
		Body: bytes.NewReader(bytes.Repeat([]byte("r"), 1<<20))}); err != nil {
		t.Fatal(err)
	}
	startRun(t)
	// Serving HTTP means the queues exist: submit creates none.
	if code, body := getUntil(t, addr, "/livez", http.StatusOK); code != http.StatusOK {
		t.Fatalf("GET /livez = %d %q, want 200", code, body)
	}

	job, err := os.ReadFile("testdata/messages/original-example.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(job, &m); err != nil {
		t.Fatal(err)
	}
	m["storage"].(map[string]any)["extra"].(map[string]any)["aws.s3"] = map[string]any{"bucket": bucket, "keys": []string{key}}
	m["instance"] = map[string]any{"domain": domain}
	job, _ = json.Marshal(m)
	jobFile := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(jobFile, job, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "submit", jobFile); code != 0 {
		t.Fatalf("submit exited %d: %s", code, errOut)
	}

	// Until the job is shared and every metric is there.
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		missing = missing[:0]
		body := ""
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			body = b.String()
		}
		for _, name := range named {
			if !strings.Contains(body, "\n"+name+" ") && !strings.Contains(body, "\n"+name+"{") {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("metrics named in %v but not on /metrics of a service that ran a job: %v", metricSources, missing)
	}
}
