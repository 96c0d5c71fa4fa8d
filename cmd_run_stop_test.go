package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/pipeline"
)

// buildOnce builds the binary for the tests that run it as a process.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "rs-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "recording-storage")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// TestRun_SIGTERM_drains_and_releases runs `recording-storage run` as a
// process with the default 15-minute visibility timeout, transferring a
// long recording over a slow DRACOON, and sends it SIGTERM three times
// mid-transfer, restarting it each time, with stages.max_deliveries 3:
// each run exits 0 within the drain timeout and a few seconds, the job is
// done soon after the last restart (not after a visibility timeout), with
// one file per room and nothing poisoned. Once with a drain timeout that
// the transfer outlasts (it is cancelled and released at the drain's end),
// once with 1 s (the release path at once).
func TestRun_SIGTERM_drains_and_releases(t *testing.T) {
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	for _, drain := range []time.Duration{8 * time.Second, time.Second} {
		t.Run(drain.String(), func(t *testing.T) {
			t.Parallel()
			testStopDrains(t, bin, drain)
		})
	}
}

func testStopDrains(t *testing.T, bin string, drain time.Duration) {
	base := awstest.Config(t)
	client := awstest.S3(t, base.AWS)
	bucket := awstest.Bucket(t, client, "stop")
	emu := emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: emulatortest.FastSeed(t, false), S3FinishDelay: -1})
	// A slow DRACOON: each 5 MiB chunk takes a second, a transfer about 17 s.
	emu.Emu.InjectFault(emulator.FaultRule{Method: "POST", PathPrefix: "/api/v4/uploads/", Latency: time.Second, Times: 1 << 30})

	const domain = "stop.recording-storage.test"
	instances := filepath.Join(t.TempDir(), "instances.json")
	raw, _ := json.Marshal(map[string]any{domain: map[string]any{"storage": "dracoon", "dracoon": map[string]any{
		"baseUrl": emu.URL, "login": emulatortest.ServiceLogin, "password": emulatortest.ServicePassword,
		"encryptionPassword": emulatortest.ServiceEncryptionPassword, "clientId": emulatortest.ClientID,
		"clientSecret": emulatortest.ClientSecret, "parentRoomId": emulatortest.ParentRoomID}}})
	if err := os.WriteFile(instances, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	id := strings.ToLower(watermill.NewShortUUID())[:8]
	env := map[string]string{
		"RS_STAGES_TRANSPORT": "aws", "RS_INSTANCES_SOURCE": "file", "RS_INSTANCES_FILE": instances,
		"RS_STAGES_PARSE_QUEUE": "stop-jobs-" + id, "RS_STAGES_RESOLVE_TOPIC": "stop-parsed-" + id,
		"RS_STAGES_ROOMS_TOPIC": "stop-resolved-" + id, "RS_STAGES_TRANSFER_TOPIC": "stop-ready-" + id,
		"RS_STAGES_SHARE_TOPIC": "stop-share-" + id, "RS_STAGES_TRANSFERRED": "stop-transferred-" + id,
		"RS_STAGES_POISON": "stop-poison-" + id, "RS_STAGES_MAX_DELIVERIES": "3",
		"RS_STAGES_DRAIN_TIMEOUT": drain.String(), "RS_S3_CHUNK_SIZE": "5MiB", "RS_HTTP_LISTEN": "127.0.0.1:0",
		"RS_LOGGER_FORMAT": "json", "RS_SHARER_INSTANCES": domain,
	}
	cfg, err := conf.Load("", func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stages.VisibilityTimeout != 15*time.Minute {
		t.Fatalf("visibility timeout %s, want the default 15m", cfg.Stages.VisibilityTimeout)
	}

	// The queues exist before the job is sent, as after a first start.
	ctx := context.Background()
	tr, err := pipeline.NewTransport(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 80<<20+7)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	key := "stop/long.mp4"
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	job, _ := json.Marshal(map[string]any{
		"storage": map[string]any{"type": "dracoon", "extra": map[string]any{"aws.s3": map[string]any{"bucket": bucket, "keys": key},
			"dracoon": map[string]any{"targets": []any{map[string]any{"path": "stop-" + id + "/a"}, map[string]any{"path": "stop-" + id + "/b"}}}}},
		"meeting":  map[string]any{"id": 4242, "date": "2026-12-03T10:00:00Z", "user": map[string]any{"email": "host@example.com"}},
		"instance": map[string]any{"domain": domain},
	})
	pub, err := tr.InboundPublisher()
	if err != nil {
		t.Fatal(err)
	}
	queue, _ := tr.Input(pipeline.StageParse)
	if err := pub.Publish(queue, message.NewMessage(watermill.NewUUID(), job)); err != nil {
		t.Fatal(err)
	}

	run := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, "run")
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stderr
	}
	for i := 1; i <= 3; i++ {
		cmd, stderr := run()
		// Mid-transfer: channels open and a few chunks through.
		deadline := time.Now().Add(90 * time.Second)
		for emu.Emu.OpenUploads() == 0 {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("run %d: no transfer started within 90 s:\n%s", i, stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d exited with %v after SIGTERM:\n%s", i, err, stderr)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("run %d did not exit within 30 s of SIGTERM:\n%s", i, stderr)
		}
		if d := time.Since(start); d > drain+10*time.Second {
			t.Errorf("run %d took %s to stop with a %s drain", i, d, drain)
		}
		if !strings.Contains(stderr.String(), "released") {
			t.Errorf("run %d released no message:\n%s", i, stderr)
		}
	}

	// The last restart finishes the job: not after the 15-minute
	// visibility timeout, not poisoned after 3 deliveries.
	cmd, stderr := run()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	svc, err := dracoon.New(dracoon.Config{BaseURL: emu.URL, Login: emulatortest.ServiceLogin,
		Password: conf.Secret(emulatortest.ServicePassword), EncryptionPassword: conf.Secret(emulatortest.ServiceEncryptionPassword),
		ClientID: emulatortest.ClientID, ClientSecret: emulatortest.ClientSecret, ChunkSize: 5 << 20, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, room := range []string{"stop-" + id + "/a", "stop-" + id + "/b"} {
		for {
			r, found, err := svc.LookupRoomPath(ctx, emulatortest.ParentRoomID, room)
			var files []dracoon.Node
			if err == nil && found {
				files, err = svc.FindFiles(ctx, r.ID, "long")
			}
			if err == nil && len(files) == 1 {
				h := sha256.New()
				if _, err := svc.DownloadDecrypted(ctx, files[0].ID, h); err != nil || !bytes.Equal(h.Sum(nil), sum[:]) {
					t.Fatalf("room %s: the file does not decrypt to the recording: %v", room, err)
				}
				break
			}
			if len(files) > 1 {
				t.Fatalf("room %s holds %d files: %+v", room, len(files), files)
			}
			if time.Now().After(deadline) {
				t.Fatalf("room %s: no file within 2 minutes of the last restart (%v):\n%s", room, err, stderr)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	q, err := tr.PoisonQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := q.List(ctx); err != nil || len(msgs) != 0 {
		t.Fatalf("poisoned: %+v, %v", msgs, err)
	}
}
