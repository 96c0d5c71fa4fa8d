package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/configurator"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/pipeline/demo"
)

// run runs the binary's dispatch with args and returns the exit code and
// both streams.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	return runCtx(ctx, args...)
}

// runCtx is run with the caller's context (a long-running command ends
// with it).
func runCtx(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut syncBuffer
	code := dispatch(ctx, args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// command's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTransferCommand transfers two keys to two rooms on the local stack,
// twice, and checks what a room member downloads.
func TestTransferCommand(t *testing.T) {
	cfg := awstest.Config(t)
	client := awstest.S3(t, cfg.AWS)
	bucket := awstest.Bucket(t, client, "cmd-transfer")
	ctx := context.Background()
	data := map[string][]byte{"rec/video.mp4": make([]byte, 3<<20+5), "rec/audio.m4a": make([]byte, 1000)}
	for k, b := range data {
		_, _ = rand.Read(b)
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	stamp := fmt.Sprint(time.Now().UnixNano())
	args := []string{"transfer", "--instance", localInstance, "--bucket", bucket,
		"--key", "rec/video.mp4", "--key", "rec/audio.m4a", "--target", "cmd-" + stamp + "/a=1 year",
		"--target", "cmd-" + stamp + "/b", "--meeting-id", "77", "--remove-source=false", "--json"}
	var first steps.Summary
	for i := range 2 {
		code, out, errOut := run(t, args...)
		if code != 0 {
			t.Fatalf("run %d exited %d: %s", i+1, code, errOut)
		}
		var sum steps.Summary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, out)
		}
		if len(sum.Files) != 2 || len(sum.Files[0].Targets) != 2 {
			t.Fatalf("run %d: summary %+v", i+1, sum)
		}
		for fi, f := range sum.Files {
			for ti, tg := range f.Targets {
				if tg.Existed != (i == 1) || f.SourceRemoved {
					t.Fatalf("run %d: %s -> %s: existed=%v removed=%v", i+1, f.Key, tg.RoomPath, tg.Existed, f.SourceRemoved)
				}
				if i == 1 && tg.NodeID != first.Files[fi].Targets[ti].NodeID {
					t.Fatalf("run 2 found file %d, run 1 made %d", tg.NodeID, first.Files[fi].Targets[ti].NodeID)
				}
			}
		}
		if i == 0 {
			first = sum
		}
		for _, secret := range []string{"service-password", "encryption-password", "local-client-secret"} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("output shows a secret (%s)", secret)
			}
		}
	}
	// A member of the rooms decrypts what was uploaded.
	alice := memberClient(t, localInstance, "alice")
	for _, f := range first.Files {
		want := sha256.Sum256(data[f.Key])
		for _, tg := range f.Targets {
			h := sha256.New()
			if _, err := alice.DownloadDecrypted(ctx, tg.NodeID, h); err != nil {
				t.Fatalf("alice: %s in %s: %v", f.Key, tg.RoomPath, err)
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("alice: %s in %s decrypts to other content", f.Key, tg.RoomPath)
			}
		}
	}

	// With removal, the sources go once every room has the files.
	args[len(args)-2] = "--remove-source=true"
	if code, _, errOut := run(t, args...); code != 0 {
		t.Fatalf("removing run exited %d: %s", code, errOut)
	}
	for k := range data {
		if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &k}); err == nil {
			t.Errorf("%s is still in S3", k)
		}
	}
	// Sources gone and files everywhere: done, not a missing source.
	if code, out, errOut := run(t, args...); code != 0 || !strings.Contains(out, `"existed": true`) {
		t.Fatalf("run after removal exited %d: %s%s", code, out, errOut)
	}
}

// TestTransferCommand_refusals: bad arguments and a missing source fail
// with the reason, and a missing source creates no room.
func TestTransferCommand_refusals(t *testing.T) {
	cfg := awstest.Config(t)
	bucket := awstest.Bucket(t, awstest.S3(t, cfg.AWS), "cmd-refuse")
	if code, _, errOut := run(t, "transfer", "--bucket", bucket, "--target", "x=1 hour"); code != 2 ||
		!strings.Contains(errOut, "instance: is required") || !strings.Contains(errOut, "keys: at least one") ||
		!strings.Contains(errOut, `unknown unit "hour"`) {
		t.Errorf("bad arguments: exit %d: %s", code, errOut)
	}
	room := fmt.Sprintf("missing-%d", time.Now().UnixNano())
	code, _, errOut := run(t, "transfer", "--instance", localInstance, "--bucket", bucket,
		"--key", "no/such.mp4", "--target", room)
	if code != 1 || !strings.Contains(errOut, "no such key") || !strings.Contains(errOut, "permanent") {
		t.Errorf("missing key: exit %d: %s", code, errOut)
	}
	svc := serviceClient(t, localInstance)
	if _, found, err := svc.LookupRoomPath(context.Background(), 1, room); err != nil || found {
		t.Errorf("a missing source created room %s (found=%v, err=%v)", room, found, err)
	}
	if code, _, errOut := run(t, "transfer", "--instance", "nobody.example", "--bucket", bucket, "--key", "k", "--target", "x"); code != 1 ||
		!strings.Contains(errOut, "unknown instance") {
		t.Errorf("unknown instance: exit %d: %s", code, errOut)
	}
}

// localInstance is the local stack's instance with proxy uploads.
const localInstance = "local.recording-storage.test"

// serviceClient is the DRACOON account of a local instance.
func serviceClient(t *testing.T, instance string) *dracoon.Client {
	t.Helper()
	cfg := awstest.Config(t)
	inst, err := mustInstances(t, cfg).Instance(context.Background(), instance)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dracoon.New(dracoon.NewConfig(cfg.Dracoon, inst.Dracoon, int64(cfg.S3.ChunkSize), nil))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// memberClient is a member of the local seed (testdata/dracoon/members.json)
// on a local instance's DRACOON.
func memberClient(t *testing.T, instance, login string) *dracoon.Client {
	t.Helper()
	cfg := awstest.Config(t)
	inst, err := mustInstances(t, cfg).Instance(context.Background(), instance)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/dracoon/members.json")
	if err != nil {
		t.Fatal(err)
	}
	var members []demo.Member
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.Login == login {
			acct := inst.Dracoon
			acct.Login, acct.Password, acct.EncryptionPassword = m.Login, m.Password, m.EncryptionPassword
			c, err := dracoon.New(dracoon.NewConfig(cfg.Dracoon, acct, int64(cfg.S3.ChunkSize), nil))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatalf("no member %s", login)
	return nil
}

func mustInstances(t *testing.T, cfg conf.Config) *configurator.File {
	t.Helper()
	f, err := configurator.NewFile(cfg.Instances.File)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestTransferCommand_provenance: the two ways a file of the right name and
// size used to be taken for a source's copy, in both upload modes. Another
// key of the same name and size, and a key replaced by a recording of the
// same size, each end in the room beside the first recording, and a source
// is removed only once its own bytes are there; a rerun after the removal
// finds the recording's own file.
func TestTransferCommand_provenance(t *testing.T) {
	cfg := awstest.Config(t)
	client := awstest.S3(t, cfg.AWS)
	bucket := awstest.Bucket(t, client, "cmd-prov")
	ctx := context.Background()
	put := func(key string, n int) [32]byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	gone := func(key string) bool {
		_, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
		return err != nil
	}
	transfer := func(instance, room, key, remove string) steps.Summary {
		t.Helper()
		code, out, errOut := run(t, "transfer", "--instance", instance, "--bucket", bucket, "--key", key, "--target", room,
			"--meeting-id", "8801", "--remove-source="+remove, "--json")
		if code != 0 {
			t.Fatalf("transfer %s to %s exited %d: %s", key, room, code, errOut)
		}
		var sum steps.Summary
		if err := json.Unmarshal([]byte(out), &sum); err != nil || len(sum.Files) != 1 || len(sum.Files[0].Targets) != 1 {
			t.Fatalf("summary %q: %v", out, err)
		}
		return sum
	}
	var alice, svc *dracoon.Client
	decrypts := func(nodeID int64, want [32]byte) {
		t.Helper()
		h := sha256.New()
		if _, err := alice.DownloadDecrypted(ctx, nodeID, h); err != nil || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("alice: file %d does not decrypt to its source (%v)", nodeID, err)
		}
	}
	filesIn := func(room string) int {
		r, _, err := svc.LookupRoomPath(ctx, 1, room)
		if err != nil {
			t.Fatal(err)
		}
		files, err := svc.FindFiles(ctx, r.ID, "8801_rec")
		if err != nil {
			t.Fatal(err)
		}
		return len(files)
	}

	for _, instance := range []string{localInstance, "local-s3.recording-storage.test"} {
		alice, svc = memberClient(t, instance, "alice"), serviceClient(t, instance)
		stamp := fmt.Sprint(time.Now().UnixNano())
		prefix := stamp + "/" + instance[:strings.Index(instance, ".")]

		// Another key, same name and size.
		room := "prov-" + stamp + "/keys"
		sumA, sumB := put(prefix+"/a/rec.mp4", 200<<10), put(prefix+"/b/rec.mp4", 200<<10)
		first := transfer(instance, room, prefix+"/a/rec.mp4", "true").Files[0]
		second := transfer(instance, room, prefix+"/b/rec.mp4", "true").Files[0]
		ft, st := first.Targets[0], second.Targets[0]
		if st.Existed || !st.NameTaken || st.FileName == ft.FileName || !second.SourceRemoved || !gone(prefix+"/b/rec.mp4") {
			t.Fatalf("%s: second key: %+v, removed %v; want its own file, then the source removed", instance, st, second.SourceRemoved)
		}
		decrypts(ft.NodeID, sumA)
		decrypts(st.NodeID, sumB)
		again := transfer(instance, room, prefix+"/b/rec.mp4", "true").Files[0].Targets[0]
		if !again.Existed || again.NodeID != st.NodeID {
			t.Fatalf("%s: rerun after removal: %+v, want file %d", instance, again, st.NodeID)
		}
		if n := filesIn(room); n != 2 {
			t.Fatalf("%s: room %s holds %d files, want 2", instance, room, n)
		}

		// The same key replaced by a recording of the same size.
		room = "prov-" + stamp + "/replaced"
		key := prefix + "/c/rec.mp4"
		sum1 := put(key, 150<<10)
		v1 := transfer(instance, room, key, "false").Files[0]
		sum2 := put(key, 150<<10)
		v2 := transfer(instance, room, key, "true").Files[0]
		if v2.Targets[0].Existed || v2.Targets[0].NodeID == v1.Targets[0].NodeID || !v2.SourceRemoved || !gone(key) {
			t.Fatalf("%s: replaced key: %+v; want the new version uploaded, then removed", instance, v2)
		}
		decrypts(v1.Targets[0].NodeID, sum1)
		decrypts(v2.Targets[0].NodeID, sum2)
		if n := filesIn(room); n != 2 {
			t.Fatalf("%s: room %s holds %d files, want both versions", instance, room, n)
		}
	}
}
