package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/netsim"
	"github.com/recording-storage/recording-storage/pipeline"
)

// plainRoomID is a top-level room of the configuration fault suite that is
// not encrypted.
const plainRoomID = 50

// configFaultJobs is how many jobs each configuration fault gets.
const configFaultJobs = 2

// maxDeliveries is stages.max_deliveries of the configuration fault suite.
const maxDeliveries = "2"

// TestRun_configuration_faults runs every stage with `run` against an
// instance configured wrongly in one way each and sends it jobs. Every job
// ends in the poison queue with one reason naming the part at fault, after
// one delivery (a permanent error); the DRACOON account is asked a bounded
// number of times (one login for the whole run, however many jobs and
// health checks); and /healthcheck fails naming the part. A configurator
// that cannot be reached is transient: the job is retried with backoff and
// given up after stages.max_deliveries (2 here) deliveries, shown with
// `process` (its memory transport counts deliveries; goaws reports every
// receive as the first, so on the stack's SQS only real SQS would).
func TestRun_configuration_faults(t *testing.T) {
	tests := []struct {
		name       string
		dracoon    func(acct map[string]any) // changes the instance's DRACOON settings
		unreached  bool                      // the instances come from a configurator nobody serves (see testUnreachedConfigurator)
		stage      string                    // where the jobs are poisoned
		class      string                    // the class recorded with them
		deliveries string                    // after how many deliveries
		reason     []string                  // what the reason names
		health     string                    // the check that fails
	}{
		{name: "wrong_dracoon_password", dracoon: func(a map[string]any) { a["password"] = "not-the-password" },
			stage: "rooms", class: "permanent", deliveries: "1", reason: []string{"login", "invalid_grant"}, health: "dracoon_error"},
		{name: "wrong_encryption_password", dracoon: func(a map[string]any) { a["encryptionPassword"] = "not-the-encryption-password" },
			stage: "transfer", class: "permanent", deliveries: "1", reason: []string{"private key", "unlock"}, health: "dracoon_error"},
		{name: "parent_room_missing", dracoon: func(a map[string]any) { a["parentRoomId"] = 999 },
			stage: "rooms", class: "permanent", deliveries: "1", reason: []string{"parent room 999", "404"}, health: "dracoon_error"},
		{name: "parent_room_not_encrypted", dracoon: func(a map[string]any) { a["parentRoomId"] = plainRoomID },
			stage: "rooms", class: "permanent", deliveries: "1", reason: []string{fmt.Sprintf("room %d", plainRoomID), "not encrypted"}, health: "dracoon_error"},
		{name: "configurator_unreachable", unreached: true,
			stage: "resolve", class: "transient", deliveries: "2", reason: []string{"configurator", "connection refused"}, health: "configurator_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			addr := stackEnv(t)
			const domain = "config.recording-storage.test"
			seed := emulatortest.FastSeed(t, false)
			seed.Rooms = append(seed.Rooms, emulator.SeedRoom{ID: plainRoomID, Name: "Plain", Members: []emulator.SeedMember{
				{UserID: 1, Permissions: emulator.SeedPermissions{Manage: true, Read: true, Create: true, Change: true, Delete: true}}}})
			emu := emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: seed, S3FinishDelay: -1})
			if tc.unreached {
				probeEmulator(t, emu.URL) // nothing reaches DRACOON without the instance configuration
			}
			acct := map[string]any{"baseUrl": emu.URL, "login": emulatortest.ServiceLogin, "password": emulatortest.ServicePassword,
				"encryptionPassword": emulatortest.ServiceEncryptionPassword, "clientId": emulatortest.ClientID,
				"clientSecret": emulatortest.ClientSecret, "parentRoomId": emulatortest.ParentRoomID}
			if tc.dracoon != nil {
				tc.dracoon(acct)
			}
			raw, _ := json.Marshal(map[string]any{domain: map[string]any{"storage": "dracoon", "dracoon": acct}})
			instFile := filepath.Join(t.TempDir(), "instances.json")
			if err := os.WriteFile(instFile, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"RS_INSTANCES_FILE": instFile, "RS_SHARER_INSTANCES": domain,
				"RS_STAGES_RETRY_DELAY": "1s", "RS_STAGES_RETRY_DELAY_MAX": "2s", "RS_STAGES_MAX_DELIVERIES": maxDeliveries,
				"RS_STAGES_VISIBILITY_TIMEOUT": "10s", "RS_S3_CHUNK_SIZE": "5MiB"}
			if tc.unreached {
				down, err := netsim.FreePort() // nothing listens there
				if err != nil {
					t.Fatal(err)
				}
				env["RS_INSTANCES_SOURCE"] = "configurator"
				env["RS_INSTANCES_CONFIGURATOR_URL"] = "http://" + down
				env["RS_INSTANCES_CONFIGURATOR_TIMEOUT"] = "1s"
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			cfg, err := conf.Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			client := awstest.S3(t, cfg.AWS)
			bucket := awstest.Bucket(t, client, "config")
			tr, err := pipeline.NewTransport(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tr.Close() })
			startRun(t)
			if code, body := getUntil(t, addr, "/livez", http.StatusOK); code != http.StatusOK {
				t.Fatalf("GET /livez = %d %q", code, body)
			}
			job := func(i int) []byte {
				key := fmt.Sprintf("rec-%d.mp4", i)
				if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key,
					Body: bytes.NewReader(bytes.Repeat([]byte("r"), 1000))}); err != nil {
					t.Fatal(err)
				}
				raw, _ := json.Marshal(map[string]any{
					"storage": map[string]any{"type": "dracoon", "extra": map[string]any{"aws.s3": map[string]any{"bucket": bucket, "keys": key},
						"dracoon": map[string]any{"targets": []any{map[string]any{"path": "config/a"}}}}},
					"meeting":  map[string]any{"id": 6100 + i, "date": "2026-12-03T10:00:00Z", "user": map[string]any{"email": "host@example.com"}},
					"instance": map[string]any{"domain": domain},
				})
				return raw
			}
			if tc.unreached {
				testUnreachedConfigurator(t, addr, job(0), tc.reason, start)
				return
			}
			pub, err := tr.InboundPublisher()
			if err != nil {
				t.Fatal(err)
			}
			queue := tr.InboundQueue()
			for i := range configFaultJobs {
				if err := pub.Publish(queue, message.NewMessage(watermill.NewUUID(), job(i))); err != nil {
					t.Fatal(err)
				}
			}

			q, err := tr.PoisonQueue(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var msgs []pipeline.PoisonMessage
			deadline := time.Now().Add(90 * time.Second)
			for len(msgs) < configFaultJobs {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d jobs poisoned within 90 s: %+v", len(msgs), configFaultJobs, msgs)
				}
				time.Sleep(time.Second)
				if got, err := q.List(context.Background()); err == nil && len(got) > len(msgs) {
					msgs = got
				}
			}
			for _, m := range msgs {
				ok := m.Stage == tc.stage && m.Class == tc.class && fmt.Sprint(m.Deliveries) == tc.deliveries
				for _, r := range tc.reason {
					ok = ok && strings.Contains(m.Reason, r)
				}
				if !ok {
					t.Errorf("poisoned in %s (%s) after %v deliveries: %s\nwant stage %s, class %s, %s deliveries, a reason naming %q",
						m.Stage, m.Class, m.Deliveries, m.Reason, tc.stage, tc.class, tc.deliveries, tc.reason)
				}
			}
			code, failing := healthFailing(t, addr)
			if code != http.StatusInternalServerError || failing != tc.health {
				t.Errorf("GET /healthcheck = %d naming %q, want 500 naming %s", code, failing, tc.health)
			}
			reqs := emu.Emu.Requests()
			logins := reqs.Routes["POST /oauth/token"]
			if logins > 1 || reqs.Total > 30 {
				t.Errorf("DRACOON asked %d times, %d logins; want at most 30 and 1:%v", reqs.Total, logins, reqs)
			}
			probeEmulator(t, emu.URL)
			t.Logf("%d jobs poisoned in %s after %v deliveries (%s), reason %q; health %s; DRACOON requests %d, logins %d; %s",
				len(msgs), msgs[0].Stage, msgs[0].Deliveries, msgs[0].Class, msgs[0].Reason, failing, reqs.Total, logins,
				time.Since(start).Round(time.Second))
		})
	}
}

// testUnreachedConfigurator checks a `run` whose configurator cannot be
// reached: /healthcheck names configurator_error, and `process` with job
// gives up after stages.max_deliveries deliveries with a reason naming the
// configurator and its failure (reason), having waited between them.
func testUnreachedConfigurator(t *testing.T, addr string, job []byte, reason []string, start time.Time) {
	t.Helper()
	if code, failing := healthFailing(t, addr); code != http.StatusInternalServerError || failing != "configurator_error" {
		t.Errorf("GET /healthcheck = %d naming %q, want 500 naming configurator_error", code, failing)
	}
	file := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(file, job, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	code, _, errOut := runCtx(ctx, "process", file)
	took := time.Since(began)
	want := append([]string{"stage resolve gave up after " + maxDeliveries + " deliveries", "(transient error)"}, reason...)
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("process exited %d, stderr lacks %q:\n%.3000s", code, w, errOut)
		}
	}
	// Each delivery is four attempts, with at least 1+2+4 s of in-process
	// backoff between them, and a redelivery delay between deliveries.
	if code != 1 || took < 14*time.Second {
		t.Errorf("process exited %d after %s, want 1 after the retries' backoff", code, took)
	}
	last := errOut[strings.LastIndex(errOut, "stage resolve"):]
	t.Logf("process gave up after %s: %.300s; health configurator_error; %s", took.Round(time.Second), last, time.Since(start).Round(time.Second))
}

// probeEmulator asks the emulator for its system information, an exchange
// the OpenAPI checker checks (a run that never reached DRACOON, or reached
// only its token endpoint, has none).
func probeEmulator(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/api/v4/public/system/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// healthFailing polls /healthcheck until its first round of checks is done
// (up to 45 s) and returns the status and the failing check it names.
func healthFailing(t *testing.T, addr string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		code, body := getUntil(t, addr, "/healthcheck", http.StatusInternalServerError)
		var h struct{ Status, Error string }
		_ = json.Unmarshal([]byte(body), &h)
		if h.Error != "starting" || time.Now().After(deadline) {
			return code, h.Error
		}
		time.Sleep(200 * time.Millisecond)
	}
}
