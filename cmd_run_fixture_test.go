package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
	"github.com/aws/aws-sdk-go-v2/aws"
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

// fixtureDomain is the instance of the process tests.
const fixtureDomain = "proc.recording-storage.test"

// runFixture is `recording-storage run` as a process on the local stack's
// goaws and versitygw, with a DRACOON emulator of the test's own (proxy
// uploads, slowed down so that transfers take a while) and queues and
// topics of its own.
type runFixture struct {
	t         *testing.T
	bin       string
	id        string
	emu       *emulatortest.Server
	latency   time.Duration
	faults    []emulator.FaultRule // injected again after a restart
	instances string
	env       map[string]string
	cfg       conf.Config
	tr        *pipeline.Transport
	s3        *s3.Client
	bucket    string
}

// newRunFixture prepares the queues, the bucket, the emulator and the
// configuration; env adds RS_* settings.
func newRunFixture(t *testing.T, latency time.Duration, env map[string]string) *runFixture {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	base := awstest.Config(t)
	f := &runFixture{t: t, bin: bin, id: strings.ToLower(watermill.NewShortUUID())[:8], latency: latency,
		instances: filepath.Join(t.TempDir(), "instances.json"), s3: awstest.S3(t, base.AWS)}
	f.bucket = awstest.Bucket(t, f.s3, "proc")
	f.emu = emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: emulatortest.FastSeed(t, false), S3FinishDelay: -1})
	f.slow()
	f.writeInstances()
	f.env = map[string]string{
		"RS_STAGES_TRANSPORT": "aws", "RS_INSTANCES_SOURCE": "file", "RS_INSTANCES_FILE": f.instances,
		"RS_STAGES_PARSE_QUEUE": "proc-jobs-" + f.id, "RS_STAGES_RESOLVE_TOPIC": "proc-parsed-" + f.id,
		"RS_STAGES_ROOMS_TOPIC": "proc-resolved-" + f.id, "RS_STAGES_TRANSFER_TOPIC": "proc-ready-" + f.id,
		"RS_STAGES_SHARE_TOPIC": "proc-share-" + f.id, "RS_STAGES_TRANSFERRED": "proc-transferred-" + f.id,
		"RS_STAGES_POISON": "proc-poison-" + f.id, "RS_S3_CHUNK_SIZE": "5MiB", "RS_HTTP_LISTEN": "127.0.0.1:0",
		"RS_LOGGER_FORMAT": "json", "RS_SHARER_INSTANCES": fixtureDomain,
	}
	for k, v := range env {
		f.env[k] = v
	}
	f.cfg, err = conf.Load("", func(k string) (string, bool) {
		if v, ok := f.env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The queues exist before a job is sent, as after a first start.
	f.tr = setUpTransport(t, f.cfg)
	return f
}

// slow makes every proxy chunk take f.latency, and injects f.faults.
func (f *runFixture) slow() {
	f.emu.Emu.InjectFault(emulator.FaultRule{Method: "POST", PathPrefix: "/api/v4/uploads/", Latency: f.latency, Times: 1 << 30})
	for _, r := range f.faults {
		f.emu.Emu.InjectFault(r)
	}
}

// inject adds a fault rule, kept across emulator restarts.
func (f *runFixture) inject(r emulator.FaultRule) {
	f.faults = append(f.faults, r)
	f.emu.Emu.InjectFault(r)
}

// writeInstances writes the instance file for the emulator's current URL.
func (f *runFixture) writeInstances() {
	raw, _ := json.Marshal(map[string]any{fixtureDomain: map[string]any{"storage": "dracoon", "dracoon": map[string]any{
		"baseUrl": f.emu.URL, "login": emulatortest.ServiceLogin, "password": emulatortest.ServicePassword,
		"encryptionPassword": emulatortest.ServiceEncryptionPassword, "clientId": emulatortest.ClientID,
		"clientSecret": emulatortest.ClientSecret, "parentRoomId": emulatortest.ParentRoomID}}})
	if err := os.WriteFile(f.instances, raw, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// restartEmulator restarts the emulator on its data (its state persists)
// and points the instance file at it.
func (f *runFixture) restartEmulator() {
	f.emu.Restart()
	f.slow()
	f.writeInstances()
}

// put stores size random bytes as key and returns their SHA-256 and ETag.
func (f *runFixture) put(key string, size int) ([32]byte, string) {
	f.t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	out, err := f.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &f.bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		f.t.Fatal(err)
	}
	return sha256.Sum256(data), aws.ToString(out.ETag)
}

// gone reports whether key is gone from the bucket; any other answer than
// 404 fails the test.
func (f *runFixture) gone(key string) bool {
	f.t.Helper()
	_, err := f.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &f.bucket, Key: &key})
	var re interface{ HTTPStatusCode() int }
	switch {
	case err == nil:
		return false
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound:
		return true
	}
	f.t.Fatalf("cannot tell whether s3://%s/%s is gone: %v", f.bucket, key, err)
	return false
}

// send sends a job of the fixture's instance for key to rooms, as a
// producer would.
func (f *runFixture) send(meetingID int, key string, rooms ...string) {
	f.t.Helper()
	f.sendTo(fixtureDomain, meetingID, key, rooms...)
}

// sendTo sends a job of instance domain for key to rooms.
func (f *runFixture) sendTo(domain string, meetingID int, key string, rooms ...string) {
	f.t.Helper()
	var targets []any
	for _, r := range rooms {
		targets = append(targets, map[string]any{"path": r})
	}
	job, _ := json.Marshal(map[string]any{
		"storage": map[string]any{"type": "dracoon", "extra": map[string]any{"aws.s3": map[string]any{"bucket": f.bucket, "keys": key},
			"dracoon": map[string]any{"targets": targets}}},
		"meeting":  map[string]any{"id": meetingID, "date": "2026-12-03T10:00:00Z", "user": map[string]any{"email": "host@example.com"}},
		"instance": map[string]any{"domain": domain},
	})
	pub, err := f.tr.InboundPublisher()
	if err != nil {
		f.t.Fatal(err)
	}
	queue := f.tr.InboundQueue()
	if err := pub.Publish(queue, message.NewMessage(watermill.NewUUID(), job)); err != nil {
		f.t.Fatal(err)
	}
}

// start starts `run` in a process group of its own.
func (f *runFixture) start() (*exec.Cmd, *bytes.Buffer) {
	f.t.Helper()
	cmd := exec.Command(f.bin, "run")
	cmd.Env = os.Environ()
	for k, v := range f.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd, &stderr
}

// service is the instance's DRACOON account.
func (f *runFixture) service() *dracoon.Client {
	f.t.Helper()
	c, err := dracoon.New(dracoon.Config{BaseURL: f.emu.URL, Login: emulatortest.ServiceLogin,
		Password: conf.Secret(emulatortest.ServicePassword), EncryptionPassword: conf.Secret(emulatortest.ServiceEncryptionPassword),
		ClientID: emulatortest.ClientID, ClientSecret: emulatortest.ClientSecret, ChunkSize: 5 << 20, PartSize: 5 << 20})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// roomFiles returns the files of a room whose names contain text; none
// when the room does not exist yet.
func (f *runFixture) roomFiles(c *dracoon.Client, room, text string) ([]dracoon.Node, error) {
	r, found, err := c.LookupRoomPath(context.Background(), emulatortest.ParentRoomID, room)
	if err != nil || !found {
		return nil, err
	}
	return c.FindFiles(context.Background(), r.ID, text)
}

// decrypts reports whether the file decrypts to sum for the service.
func (f *runFixture) decrypts(c *dracoon.Client, nodeID int64, sum [32]byte) bool {
	h := sha256.New()
	_, err := c.DownloadDecrypted(context.Background(), nodeID, h)
	return err == nil && bytes.Equal(h.Sum(nil), sum[:])
}

// poisoned lists the poison queue.
func (f *runFixture) poisoned() []pipeline.PoisonMessage {
	f.t.Helper()
	q, err := f.tr.PoisonQueue(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	msgs, err := q.List(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return msgs
}
