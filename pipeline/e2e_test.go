package pipeline_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/configurator"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/infra/setup"
	"github.com/recording-storage/recording-storage/messages"
	"github.com/recording-storage/recording-storage/pipeline"
)

// The e2e instance: the fast seed's service account (testdata/dracoon) and
// a late member, carol, who joins a room after its upload.
const (
	e2eDomain    = "e2e.recording-storage.test"
	carolID      = 40
	carolPass    = "carol-password"
	carolEncrypt = "carol-encryption-password"
)

// e2e is the service on the stack's goaws and versitygw, with a DRACOON
// emulator of its own, on topics and queues of its own.
type e2e struct {
	t       *testing.T
	cfg     conf.Config
	emu     *emulatortest.Server
	s3      *s3.Client
	bucket  string
	svcAcct conf.DracoonAccount
	steps   *steps.Service
	log     *logrus.Logger
	reg     *prometheus.Registry // the metrics of the last service started
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	return newE2EMode(t, false)
}

// newE2EMode is newE2E with a DRACOON that takes S3 direct uploads (direct)
// or proxy chunks.
func newE2EMode(t *testing.T, direct bool) *e2e {
	t.Helper()
	return newE2EWith(t, direct, e2eOptions{})
}

// e2eOptions change what newE2EWith builds; the zero value builds
// newE2EMode's service.
type e2eOptions struct {
	// emulator changes the DRACOON emulator's configuration (faults).
	emulator func(*emulator.Config)
	// sourceS3 is the endpoint of the service's own S3 client, its reads
	// and deletes (a netsim link to the stack's S3); empty: the stack's.
	// The test's own client always talks to the stack's S3.
	sourceS3 string
	// stall is the service's s3.stall_timeout; zero: the default.
	stall time.Duration
}

// newE2EWith is newE2EMode changed by opts.
func newE2EWith(t *testing.T, direct bool, opts e2eOptions) *e2e {
	t.Helper()
	cfg := awstest.Config(t)
	cfg.Stages.Transport = conf.TransportAWS
	cfg.Stages.VisibilityTimeout = 6 * time.Second
	cfg.Stages.RetryDelay, cfg.Stages.RetryDelayMax = time.Second, 4*time.Second
	cfg.Stages.MaxDeliveries = 3
	cfg.Sharer.Interval = 2 * time.Second
	cfg.S3.ChunkSize = 5 << 20
	cfg.S3.Parallel = 2
	id := strings.ToLower(watermill.NewShortUUID())[:8]
	s := &cfg.Stages
	s.Parse.Queue = "e2e-jobs-" + id
	s.Resolve.Topic, s.Rooms.Topic, s.Transfer.Topic = "e2e-parsed-"+id, "e2e-resolved-"+id, "e2e-ready-"+id
	s.Share.Topic, s.Transferred, s.Poison = "e2e-share-"+id, "e2e-transferred-"+id, "e2e-poison-"+id

	seed := emulatortest.FastSeed(t, direct)
	kp, err := crypto.GenerateKeyPair(crypto.KeyPairVersionRSA4096, carolEncrypt, crypto.WithIterations(1000))
	if err != nil {
		t.Fatal(err)
	}
	rawKP, _ := json.Marshal(kp)
	seed.Users = append(seed.Users, emulator.SeedUser{ID: carolID, UserName: "carol", Password: carolPass,
		KeyPairs: []json.RawMessage{rawKP}})
	emuCfg := emulator.Config{DataDir: t.TempDir(), Seed: seed, S3FinishDelay: -1}
	if opts.emulator != nil {
		opts.emulator(&emuCfg)
	}
	emu := emulatortest.Start(t, emuCfg)

	acct := conf.DracoonAccount{BaseURL: emu.URL, Login: emulatortest.ServiceLogin, Password: emulatortest.ServicePassword,
		EncryptionPassword: emulatortest.ServiceEncryptionPassword, ClientID: emulatortest.ClientID,
		ClientSecret: emulatortest.ClientSecret, ParentRoomID: emulatortest.ParentRoomID}
	inst := map[string]any{e2eDomain: map[string]any{"storage": "dracoon", "dracoon": map[string]any{
		"baseUrl": acct.BaseURL, "login": acct.Login, "password": emulatortest.ServicePassword,
		"encryptionPassword": emulatortest.ServiceEncryptionPassword, "clientId": acct.ClientID,
		"clientSecret": emulatortest.ClientSecret, "parentRoomId": acct.ParentRoomID, "targets": []any{map[string]any{"meetingTypeId": "any",
			"copyTo": []any{map[string]any{"path": "$instance/$meetingType", "expiration": "1 year"}}}}}}}
	raw, _ := json.Marshal(inst)
	cfg.Instances.File = filepath.Join(t.TempDir(), "instances.json")
	if err := os.WriteFile(cfg.Instances.File, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	instances, err := configurator.NewFile(cfg.Instances.File)
	if err != nil {
		t.Fatal(err)
	}
	client := awstest.S3(t, cfg.AWS)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	if os.Getenv("RS_E2E_DEBUG") != "" {
		log.SetLevel(logrus.DebugLevel)
	}
	source := client
	if opts.sourceS3 != "" {
		a := cfg.AWS
		a.Endpoints.S3 = opts.sourceS3
		source = awstest.S3(t, a)
	}
	objects := s3source.New(source, s3source.Options{StallTimeout: opts.stall})
	return &e2e{t: t, cfg: cfg, emu: emu, s3: client, bucket: awstest.Bucket(t, client, "e2e"), svcAcct: acct,
		steps: steps.New(cfg, instances, objects, setup.Accounts(cfg, log), nil, log), log: log}
}

// start runs the given stages (all when none) until the test ends or the
// returned stop is called.
func (e *e2e) start(stages ...string) (*pipeline.Service, func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.reg = prometheus.NewRegistry()
	svc, err := pipeline.New(ctx, pipeline.Options{Config: e.cfg, Stages: stages, Steps: e.steps,
		Instances: func(context.Context) ([]string, error) { return []string{e2eDomain}, nil },
		Registry:  e.reg, Logger: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Running():
	case err := <-done:
		e.t.Fatalf("service stopped at start: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("service stopped with %v", err)
			}
		case <-time.After(45 * time.Second):
			e.t.Error("service did not stop within 45 s")
		}
	}
	e.t.Cleanup(stop)
	return svc, stop
}

// put stores a recording and returns its SHA-256.
func (e *e2e) put(key string, size int) [32]byte {
	e.t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		e.t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// job returns the original README's example message for key, on this
// instance and bucket, with the given meeting id.
func (e *e2e) job(meetingID int, keys ...string) []byte {
	e.t.Helper()
	raw, err := os.ReadFile("../testdata/messages/original-example.json")
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		e.t.Fatal(err)
	}
	extra := m["storage"].(map[string]any)["extra"].(map[string]any)
	extra["aws.s3"] = map[string]any{"bucket": e.bucket, "keys": keys}
	m["instance"] = map[string]any{"domain": e2eDomain}
	m["meeting"].(map[string]any)["id"] = meetingID
	out, _ := json.Marshal(m)
	return out
}

// send sends a body to the inbound queue as a producer would.
func (e *e2e) send(body []byte) {
	e.t.Helper()
	tr, err := pipeline.NewTransport(context.Background(), e.cfg, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tr.Close()
	pub, err := tr.InboundPublisher()
	if err != nil {
		e.t.Fatal(err)
	}
	defer pub.Close()
	queue := tr.InboundQueue()
	if err := pub.Publish(queue, message.NewMessage(watermill.NewUUID(), body)); err != nil {
		e.t.Fatal(err)
	}
}

// client logs in to the emulator as login.
func (e *e2e) client(login, password, encryption string) *dracoon.Client {
	e.t.Helper()
	acct := e.svcAcct
	acct.Login, acct.Password, acct.EncryptionPassword = login, conf.Secret(password), conf.Secret(encryption)
	c, err := dracoon.New(dracoon.NewConfig(e.cfg.Dracoon, acct, 5<<20, nil))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// files waits until the file name is in every room path (below the parent
// room) and returns the nodes, failing after the timeout.
func (e *e2e) files(name string, timeout time.Duration, paths ...string) []dracoon.Node {
	e.t.Helper()
	c := e.client(emulatortest.ServiceLogin, emulatortest.ServicePassword, emulatortest.ServiceEncryptionPassword)
	deadline := time.Now().Add(timeout)
	for {
		var nodes []dracoon.Node
		for _, p := range paths {
			room, found, err := c.LookupRoomPath(context.Background(), 1, p)
			if err != nil || !found {
				break
			}
			n, found, err := c.FindFile(context.Background(), room.ID, name)
			if err != nil || !found {
				break
			}
			nodes = append(nodes, n)
		}
		if len(nodes) == len(paths) {
			return nodes
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("file %q not in every room of %v after %s", name, paths, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// decrypts checks that member decrypts node to sum, waiting for its key up
// to timeout.
func (e *e2e) decrypts(member *dracoon.Client, who string, nodeID int64, sum [32]byte, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := sha256.New()
		_, err := member.DownloadDecrypted(context.Background(), nodeID, h)
		if err == nil {
			if !bytes.Equal(h.Sum(nil), sum[:]) {
				e.t.Fatalf("%s: file %d decrypts to other content", who, nodeID)
			}
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s cannot decrypt file %d after %s: %v", who, nodeID, timeout, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// poisoned lists the poison queue until it holds n messages or timeout has
// passed, and returns the longest listing.
func (e *e2e) poisoned(n int, timeout time.Duration) []pipeline.PoisonMessage {
	e.t.Helper()
	tr, err := pipeline.NewTransport(context.Background(), e.cfg, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tr.Close()
	q, err := tr.PoisonQueue(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	// A listing can miss messages that another reader, or the listing
	// before it, still hides; it never shows too many: the longest
	// listing is the queue.
	deadline := time.Now().Add(timeout)
	var best []pipeline.PoisonMessage
	for {
		msgs, err := q.List(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if len(msgs) > len(best) {
			best = msgs
		}
		if len(best) >= n || time.Now().After(deadline) {
			return best
		}
		time.Sleep(time.Second)
	}
}

// TestE2E is the service end to end on goaws, versitygw and the emulator:
// the example message in every room, decrypted by every member; a resend
// adds nothing; bad messages poisoned with their reasons beside a good one;
// a requeue; a late room member served by the sweep; a stopped stage
// reported; a stage restarted resumes from its queue.
func TestE2E(t *testing.T) {
	e := newE2E(t)
	svc, stop := e.start()
	const file = "2017-09-11_20-24-43_%d_%s"
	rooms := []string{"some room/sub-room", e2eDomain + "/live now"}

	// The example message, and bad ones beside it.
	sum := e.put("sandbox/test-video.mp4", 7<<20+3)
	good := e.job(1001, "sandbox/test-video.mp4")
	e.send([]byte(`{"storage": `))
	e.send(good)
	e.send([]byte(strings.Replace(string(e.job(1002, "x.mp4")), `"type":"dracoon"`, `"type":"s3"`, 1)))
	e.send(e.job(1003, "sandbox/missing.mp4"))
	unknown := strings.Replace(string(e.job(1004, "sandbox/test-video.mp4")), e2eDomain, "nobody.example", 1)
	e.send([]byte(unknown))

	nodes := e.files(fmt.Sprintf(file, 1001, "test-video.mp4"), 60*time.Second, rooms...)
	members := map[string]*dracoon.Client{"alice": e.client("alice", "alice-password", "alice-encryption-password"),
		"bob": e.client("bob", "bob-password", "bob-encryption-password")}
	for who, m := range members {
		for _, n := range nodes {
			e.decrypts(m, who, n.ID, sum, 30*time.Second)
		}
	}
	msgs := e.poisoned(4, 60*time.Second)
	want := map[string]string{"invalid JSON": "parse", `storage.type: must be "dracoon"`: "parse",
		"no such key": "resolve", "unknown instance": "resolve"}
	for reason, stage := range want {
		found := false
		for _, m := range msgs {
			if strings.Contains(m.Reason, reason) && m.Stage == stage && m.Class == "permanent" && m.Payload != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("no poisoned message from stage %s with reason %q in %+v", stage, reason, msgs)
		}
	}
	if len(msgs) != 4 {
		t.Errorf("%d poisoned messages, want 4", len(msgs))
	}

	// The same message again: no second file, nothing poisoned.
	e.send(good)
	time.Sleep(8 * time.Second)
	c := e.client(emulatortest.ServiceLogin, emulatortest.ServicePassword, emulatortest.ServiceEncryptionPassword)
	for i, p := range rooms {
		oneFile(t, c, p, fmt.Sprintf(file, 1001, "test-video.mp4"))
		if n := e.files(fmt.Sprintf(file, 1001, "test-video.mp4"), time.Second, p)[0]; n.ID != nodes[i].ID {
			t.Errorf("room %s: file %d, want the first delivery's %d", p, n.ID, nodes[i].ID)
		}
	}
	if got := len(e.poisoned(5, 6*time.Second)); got != 4 {
		t.Errorf("%d poisoned messages after the resend, want 4", got)
	}

	// Requeue the missing-source job once its source exists.
	sum3 := e.put("sandbox/missing.mp4", 1<<20)
	tr, _ := pipeline.NewTransport(context.Background(), e.cfg, nil)
	q, err := tr.PoisonQueue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var missingID string
	for _, m := range msgs {
		if strings.Contains(m.Reason, "no such key") {
			missingID = m.ID
		}
	}
	if done, err := q.Requeue(context.Background(), missingID); err != nil || len(done) != 1 {
		t.Fatalf("requeue: %v, %v", done, err)
	}
	_ = tr.Close()
	n3 := e.files(fmt.Sprintf(file, 1003, "missing.mp4"), 60*time.Second, rooms...)
	e.decrypts(members["alice"], "alice", n3[0].ID, sum3, 30*time.Second)
	// The three others stay (a listing may miss messages the requeue's
	// listing still hides on a loaded machine: wait for them), and no
	// fourth appears.
	if got := len(e.poisoned(3, 30*time.Second)); got != 3 {
		t.Errorf("%d poisoned messages after the requeue, want 3", got)
	} else if got := len(e.poisoned(4, 3*time.Second)); got != 3 {
		t.Errorf("%d poisoned messages after the requeue, want 3", got)
	}

	// A member added to a room after the upload gets the key from the sweep.
	room, _, _ := c.LookupRoomPath(context.Background(), 1, rooms[0])
	addRoomUser(t, e.svcAcct, room.ID, carolID)
	e.decrypts(e.client("carol", carolPass, carolEncrypt), "carol", nodes[0].ID, sum, 30*time.Second)

	// A stopped service reports its stages down.
	checks := svc.StageChecks()
	for _, ch := range checks {
		if err := ch.Func(context.Background()); err != nil {
			t.Errorf("%s while running: %v", ch.Name, err)
		}
	}
	stop()
	for _, ch := range checks {
		if ch.Func(context.Background()) == nil {
			t.Errorf("%s passes after the service stopped", ch.Name)
		}
	}

	// A transfer stage stopped mid-transfer, restarted later, resumes from
	// its queue: one file per room.
	e.emu.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/", Latency: 300 * time.Millisecond, Times: 6})
	sum5 := e.put("sandbox/long.mp4", 12<<20)
	_, stopFront := e.start("parse", "resolve", "rooms")
	_, stopTransfer := e.start("transfer")
	e.send(e.job(1005, "sandbox/long.mp4"))
	waitFor(t, 30*time.Second, func() bool { return e.emu.Emu.OpenUploads() > 0 })
	stopTransfer() // like a killed process: the message is not acked
	stopFront()
	e.start("transfer", "share")
	n5 := e.files(fmt.Sprintf(file, 1005, "long.mp4"), 60*time.Second, rooms...)
	for _, p := range rooms {
		oneFile(t, c, p, fmt.Sprintf(file, 1005, "long.mp4"))
	}
	if n := e.emu.Emu.OpenUploads(); n != 0 {
		t.Errorf("%d upload channels left open", n)
	}
	e.decrypts(members["bob"], "bob", n5[1].ID, sum5, 30*time.Second)
}

// oneFile checks that room holds name once: no renamed copy "stem (1).ext".
func oneFile(t *testing.T, c *dracoon.Client, roomPath, name string) {
	t.Helper()
	room, found, err := c.LookupRoomPath(context.Background(), 1, roomPath)
	if err != nil || !found {
		t.Fatalf("room %s: found=%v err=%v", roomPath, found, err)
	}
	ext := filepath.Ext(name)
	for _, n := range []string{name, strings.TrimSuffix(name, ext) + " (1)" + ext} {
		_, found, err := c.FindFile(context.Background(), room.ID, n)
		if err != nil {
			t.Fatal(err)
		}
		if found != (n == name) {
			t.Errorf("room %s: file %q found=%v", roomPath, n, found)
		}
	}
}

// addRoomUser adds a user to a room with read permission, as the service
// account (a room manager) would in DRACOON's web app.
func addRoomUser(t *testing.T, acct conf.DracoonAccount, roomID, userID int64) {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {acct.Login}, "password": {acct.Password.Reveal()}}
	req, _ := http.NewRequest(http.MethodPost, acct.BaseURL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(acct.ClientID, acct.ClientSecret.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	body := fmt.Sprintf(`{"items":[{"id":%d,"permissions":{"manage":false,"read":true,"create":false,"change":false,"delete":false,"manageDownloadShare":false,"manageUploadShare":false,"readRecycleBin":false,"restoreRecycleBin":false,"deleteRecycleBin":false}}]}`, userID)
	req, _ = http.NewRequest(http.MethodPut, fmt.Sprintf("%s/api/v4/nodes/rooms/%d/users", acct.BaseURL, roomID), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("adding user %d to room %d: status %d", userID, roomID, resp.StatusCode)
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2E_provenance: through the running service, a second key whose file
// name and size are those of a file already in the rooms is a recording of
// its own: it goes in under its own name before its source is removed, and
// a redelivery after the removal finds it, not the other file.
func TestE2E_provenance(t *testing.T) {
	for _, mode := range []struct {
		name   string
		direct bool
	}{{"proxy", false}, {"s3", true}} {
		t.Run(mode.name, func(t *testing.T) { testE2EProvenance(t, newE2EMode(t, mode.direct)) })
	}
}

func testE2EProvenance(t *testing.T, e *e2e) {
	e.start()
	rooms := []string{"some room/sub-room", e2eDomain + "/live now"}
	const name = "2017-09-11_20-24-43_8801_rec.mp4"
	sumA, sumB := e.put("a/rec.mp4", 300<<10), e.put("b/rec.mp4", 300<<10)
	head, err := e.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &e.bucket, Key: aws.String("b/rec.mp4")})
	if err != nil {
		t.Fatal(err)
	}
	alt := messages.AlternateName(name, messages.StampOf(e.bucket, "b/rec.mp4", aws.ToString(head.ETag), ""))

	e.send(e.job(8801, "a/rec.mp4"))
	nodesA := e.files(name, 60*time.Second, rooms...)
	waitFor(t, 30*time.Second, func() bool { return e.gone("a/rec.mp4") })
	e.send(e.job(8801, "b/rec.mp4"))
	nodesB := e.files(alt, 60*time.Second, rooms...)
	waitFor(t, 30*time.Second, func() bool { return e.gone("b/rec.mp4") })

	alice := e.client("alice", "alice-password", "alice-encryption-password")
	for i := range rooms {
		e.decrypts(alice, "alice", nodesA[i].ID, sumA, 30*time.Second)
		e.decrypts(alice, "alice", nodesB[i].ID, sumB, 30*time.Second)
	}

	// Redelivered after its source is gone: done, no third file.
	e.send(e.job(8801, "b/rec.mp4"))
	time.Sleep(8 * time.Second)
	c := e.client(emulatortest.ServiceLogin, emulatortest.ServicePassword, emulatortest.ServiceEncryptionPassword)
	for _, p := range rooms {
		room, _, err := c.LookupRoomPath(context.Background(), 1, p)
		if err != nil {
			t.Fatal(err)
		}
		files, err := c.FindFiles(context.Background(), room.ID, "8801")
		if err != nil || len(files) != 2 {
			t.Fatalf("room %s holds %+v (%v), want the two recordings", p, files, err)
		}
	}
	if msgs := e.poisoned(1, 4*time.Second); len(msgs) != 0 {
		t.Fatalf("poisoned: %+v", msgs)
	}
}

// gone reports whether the object key is gone from the bucket.
func (e *e2e) gone(key string) bool {
	_, err := e.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &e.bucket, Key: &key})
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}
