package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/messages"
)

// membersFile holds the two members of the local seed (emulatortest.FastSeed)
// with key pairs, both in the encrypted parent room.
const membersFile = "../../testdata/dracoon/members.json"

// env is a bucket on the stack's versitygw and an emulator in the test.
type env struct {
	emu    *emulatortest.Server
	svc    *dracoon.Client
	s3     *s3.Client
	src    *s3source.Source
	bucket string
	chunk  int64
}

func newEnv(t *testing.T, direct bool, chunk int64, mod ...func(*emulator.Config)) *env {
	t.Helper()
	cfg := awstest.Config(t)
	ecfg := emulator.Config{DataDir: t.TempDir(), Seed: emulatortest.FastSeed(t, direct), S3FinishDelay: -1}
	for _, m := range mod {
		m(&ecfg)
	}
	e := &env{emu: emulatortest.Start(t, ecfg), s3: awstest.S3(t, cfg.AWS), chunk: chunk}
	e.svc = e.client(t, emulatortest.ServiceLogin, emulatortest.ServicePassword, emulatortest.ServiceEncryptionPassword)
	e.src = s3source.New(e.s3, s3source.Options{})
	e.bucket = awstest.Bucket(t, e.s3, "transfer")
	return e
}

// client logs in to the emulator with fast retries and the env's chunk size.
func (e *env) client(t *testing.T, login, password, encryption string, mod ...func(*dracoon.Config)) *dracoon.Client {
	t.Helper()
	cfg := dracoon.Config{BaseURL: e.emu.URL, Login: login, Password: conf.Secret(password),
		EncryptionPassword: conf.Secret(encryption), ClientID: emulatortest.ClientID, ClientSecret: emulatortest.ClientSecret,
		ChunkSize: e.chunk, PartSize: e.chunk, MinBackoff: 5 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Timeout: 10 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := dracoon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// put stores data as key and returns the object as Head sees it.
func (e *env) put(t *testing.T, key string, data []byte) s3source.Object {
	t.Helper()
	ctx := context.Background()
	if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	obj, err := e.src.Head(ctx, e.bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// remove deletes key from the bucket, as someone else (another delivery)
// would, whatever its version.
func (e *env) remove(ctx context.Context, key string) error {
	_, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &e.bucket, Key: &key})
	return err
}

// target returns the room path below the parent room, created.
func (e *env) target(t *testing.T, path string) Target {
	t.Helper()
	n, err := e.svc.EnsureRoomPath(context.Background(), emulatortest.ParentRoomID, path)
	if err != nil {
		t.Fatal(err)
	}
	return Target{RoomID: n.ID, Path: path}
}

// engine returns an engine with small buffers counts, so tests exercise the
// backpressure.
func (e *env) engine(opts ...func(*Options)) *Engine {
	o := Options{ReadAhead: 2, PartsInFlight: 2}
	for _, m := range opts {
		m(&o)
	}
	return New(e.src, Client(e.svc), o)
}

// members returns the seed's member clients.
func (e *env) members(t *testing.T) map[string]*dracoon.Client {
	t.Helper()
	raw, err := os.ReadFile(membersFile)
	if err != nil {
		t.Fatal(err)
	}
	var list []struct{ Login, Password, EncryptionPassword string }
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]*dracoon.Client{}
	for _, m := range list {
		out[m.Login] = e.client(t, m.Login, m.Password, m.EncryptionPassword)
	}
	return out
}

// checkDecrypts shares the keys of node and has every member download,
// decrypt and compare it with sum.
func (e *env) checkDecrypts(t *testing.T, members map[string]*dracoon.Client, nodeID int64, sum [32]byte) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.svc.DistributeMissingKeys(ctx, dracoon.KeyScope{FileID: nodeID}); err != nil {
		t.Fatal(err)
	}
	for name, m := range members {
		h := sha256.New()
		if _, err := m.DownloadDecrypted(ctx, nodeID, h); err != nil {
			t.Fatalf("%s: download %d: %v", name, nodeID, err)
		}
		if !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Fatalf("%s: file %d decrypts to other content", name, nodeID)
		}
	}
}

func randomBytes(t testing.TB, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTransfer_roundtrip: every edge size, both upload modes, two targets:
// each member decrypts each copy to the original; a second run uploads
// nothing and finds the same files.
func TestTransfer_roundtrip(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name   string
		direct bool
		chunk  int64
	}{{"proxy", false, 64 << 10}, {"s3", true, dracoon.MinS3PartSize}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, mode.direct, mode.chunk)
			members := e.members(t)
			targets := []Target{e.target(t, "rt/a"), e.target(t, "rt/b")}
			c := mode.chunk
			for _, size := range []int64{0, 1, c - 1, c, c + 1, 3*c + 5} {
				data := randomBytes(t, size)
				sum := sha256.Sum256(data)
				key := fmt.Sprintf("meetings/size-%d.mp4", size)
				job := Job{ID: key, Files: []File{{Object: e.put(t, key, data), Name: fmt.Sprintf("size-%d.mp4", size)}},
					Targets: targets}
				res, err := e.engine().Transfer(context.Background(), job)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				for _, u := range res.Files[0].Uploads {
					if u.Existed || u.NodeID == 0 {
						t.Fatalf("size %d: upload %+v", size, u)
					}
					e.checkDecrypts(t, members, u.NodeID, sum)
				}
				again, err := e.engine().Transfer(context.Background(), job)
				if err != nil {
					t.Fatalf("size %d, second run: %v", size, err)
				}
				for i, u := range again.Files[0].Uploads {
					if !u.Existed || u.NodeID != res.Files[0].Uploads[i].NodeID {
						t.Fatalf("size %d, second run: %+v, want the first run's file %d", size, u, res.Files[0].Uploads[i].NodeID)
					}
				}
			}
		})
	}
}

// TestTransfer_source_removal: the source goes only after every target is
// complete; a failure on a target leaves it, with no upload channel open.
func TestTransfer_source_removal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 64<<10)
	targets := []Target{e.target(t, "rm/a"), e.target(t, "rm/b")}
	data := randomBytes(t, 200<<10)
	ctx := context.Background()

	// A chunk refused for good (400 is permanent) fails the job.
	obj := e.put(t, "fail.mp4", data)
	e.emu.Emu.InjectFault(emulator.FaultRule{Method: "POST", PathPrefix: "/api/v4/uploads/", Status: 400, Times: 1})
	_, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: obj, Name: "fail.mp4"}}, Targets: targets, RemoveSource: true})
	if err == nil || !errclass.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	if _, err := e.src.Head(ctx, e.bucket, "fail.mp4"); err != nil {
		t.Fatalf("source gone after a failed transfer: %v", err)
	}
	if n := e.emu.Emu.OpenUploads(); n != 0 {
		t.Fatalf("%d upload channels left open", n)
	}
	for _, tg := range targets {
		if _, found, _ := e.svc.FindFile(ctx, tg.RoomID, "fail.mp4"); found {
			t.Fatalf("a file appeared in %s", tg.Path)
		}
	}

	res, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: obj, Name: "fail.mp4"}}, Targets: targets, RemoveSource: true})
	if err != nil || !res.Files[0].SourceRemoved() {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	if _, err := e.src.Head(ctx, e.bucket, "fail.mp4"); !errors.Is(err, s3source.ErrNoSuchKey) {
		t.Fatalf("source still there after a complete transfer: %v", err)
	}
}

// TestTransfer_done_elsewhere_removes_source: files complete everywhere
// but the source still there (the process died before removing it): the
// transfer uploads nothing and removes the source.
func TestTransfer_done_elsewhere_removes_source(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 64<<10)
	targets := []Target{e.target(t, "de/a")}
	obj := e.put(t, "done.mp4", randomBytes(t, 1000))
	job := Job{Files: []File{{Object: obj, Name: "done.mp4"}}, Targets: targets}
	if _, err := e.engine().Transfer(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	job.RemoveSource = true
	res, err := e.engine().Transfer(context.Background(), job)
	if err != nil || !res.Files[0].Uploads[0].Existed || !res.Files[0].SourceRemoved() {
		t.Fatalf("%+v, %v", res, err)
	}
}

// TestTransfer_refusals: what must fail, fails cleanly and permanently
// before leaving anything behind.
func TestTransfer_refusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 64<<10)
	ctx := context.Background()
	targets := []Target{e.target(t, "ref")}
	tg := targets[0]

	// The name and this version's alternate name both held by other files.
	bigger := e.put(t, "bigger.mp4", randomBytes(t, 11))
	e.holdNames(t, targets, "taken.mp4", bigger)
	_, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: bigger, Name: "taken.mp4"}}, Targets: targets})
	if !errors.Is(err, dracoon.ErrNameConflict) || !errclass.IsPermanent(err) {
		t.Errorf("names taken: %v", err)
	}

	// A key that is gone by the time it is read.
	gone := e.put(t, "gone.mp4", randomBytes(t, 100))
	if err := e.remove(ctx, "gone.mp4"); err != nil {
		t.Fatal(err)
	}
	_, err = e.engine().Transfer(ctx, Job{Files: []File{{Object: gone, Name: "gone.mp4"}}, Targets: targets})
	if !errors.Is(err, s3source.ErrNoSuchKey) || !errclass.IsPermanent(err) {
		t.Errorf("missing key: %v", err)
	}

	// An object replaced after it was looked up.
	obj := e.put(t, "replaced.mp4", randomBytes(t, 300<<10))
	e.put(t, "replaced.mp4", randomBytes(t, 300<<10))
	_, err = e.engine().Transfer(ctx, Job{Files: []File{{Object: obj, Name: "replaced.mp4"}}, Targets: targets})
	if !errors.Is(err, s3source.ErrObjectChanged) || !errclass.IsPermanent(err) {
		t.Errorf("replaced object: %v", err)
	}

	// Beyond the GCM limit: refused before any channel opens.
	huge := s3source.Object{Bucket: e.bucket, Key: "huge.mp4", Size: crypto.MaxFileSize + 1, ETag: `"x"`}
	_, err = e.engine().Transfer(ctx, Job{Files: []File{{Object: huge, Name: "huge.mp4"}}, Targets: targets})
	if !errors.Is(err, crypto.ErrFileTooLarge) || !errclass.IsPermanent(err) {
		t.Errorf("huge object: %v", err)
	}

	// A bucket the credentials may not read.
	cfg := awstest.Config(t)
	cfg.AWS.SecretAccessKey = "wrong-secret"
	denied := s3source.New(awstest.S3(t, cfg.AWS), s3source.Options{})
	obj = e.put(t, "denied.mp4", randomBytes(t, 100))
	_, err = New(denied, Client(e.svc), Options{}).Transfer(ctx, Job{Files: []File{{Object: obj, Name: "denied.mp4"}}, Targets: targets})
	if !errors.Is(err, s3source.ErrAccessDenied) || !errclass.IsPermanent(err) {
		t.Errorf("access denied: %v", err)
	}

	for _, name := range []string{"gone.mp4", "replaced.mp4", "huge.mp4", "denied.mp4"} {
		if _, found, _ := e.svc.FindFile(ctx, tg.RoomID, name); found {
			t.Errorf("%s: a file was left in the room", name)
		}
	}
	if n := e.emu.Emu.OpenUploads(); n != 0 {
		t.Errorf("%d upload channels left open", n)
	}
}

// holdNames has other recordings take name and obj's alternate name in
// every target.
func (e *env) holdNames(t *testing.T, targets []Target, name string, obj s3source.Object) {
	t.Helper()
	stamp := messages.StampOf(obj.Bucket, obj.Key, obj.ETag, obj.VersionID)
	for i, n := range []string{name, messages.AlternateName(name, stamp)} {
		other := e.put(t, fmt.Sprintf("holder-%d-%s", i, obj.Key), randomBytes(t, 10))
		if _, err := e.engine().Transfer(context.Background(), Job{Files: []File{{Object: other, Name: n}}, Targets: targets}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTransfer_cancel_leaks_nothing: cancelling a transfer mid-way stops
// every goroutine and cancels the channels.
func TestTransfer_cancel_leaks_nothing(t *testing.T) {
	e := newEnv(t, false, 64<<10)
	targets := []Target{e.target(t, "cx/a"), e.target(t, "cx/b")}
	obj := e.put(t, "cancel.mp4", randomBytes(t, 2<<20))
	e.emu.Emu.InjectFault(emulator.FaultRule{Method: "POST", PathPrefix: "/api/v4/uploads/", Latency: 50 * time.Millisecond, Times: 1000})
	// Keep-alive connections of the HTTP clients and servers may outlive
	// the transfer; the engine's own goroutines must not.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: obj, Name: "cancel.mp4"}}, Targets: targets})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if n := e.emu.Emu.OpenUploads(); n != 0 {
		t.Errorf("%d upload channels left open", n)
	}
}

// TestTransfer_memory_is_bounded: however large the object and however
// many targets, at most BufferCount chunk buffers are in use.
func TestTransfer_memory_is_bounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true, dracoon.MinS3PartSize)
	targets := []Target{e.target(t, "mem/a"), e.target(t, "mem/b"), e.target(t, "mem/c")}
	obj := e.put(t, "mem.mp4", randomBytes(t, 12*dracoon.MinS3PartSize+3))
	eng := e.engine()
	if _, err := eng.Transfer(context.Background(), Job{Files: []File{{Object: obj, Name: "mem.mp4"}}, Targets: targets}); err != nil {
		t.Fatal(err)
	}
	if peak, bound := eng.peakBuffers.Load(), int64(eng.opts.BufferCount()); peak > bound || peak < 2 {
		t.Fatalf("peak %d buffers, bound %d", peak, bound)
	}
	if read := e.src.BytesRead(); read != obj.Size {
		t.Fatalf("read %d bytes from S3 for 3 targets, want one read of %d", read, obj.Size)
	}
}

// hookedDracoon is the service client with hooks that run before its
// FindFiles and StartUpload; started counts the channels it opened.
type hookedDracoon struct {
	Dracoon
	find    func(ctx context.Context, roomID int64) error
	start   func(ctx context.Context, spec dracoon.UploadSpec) error
	started atomic.Int32
}

func (h *hookedDracoon) FindFiles(ctx context.Context, roomID int64, text string) ([]dracoon.Node, error) {
	if h.find != nil {
		if err := h.find(ctx, roomID); err != nil {
			return nil, err
		}
	}
	return h.Dracoon.FindFiles(ctx, roomID, text)
}

func (h *hookedDracoon) StartUpload(ctx context.Context, spec dracoon.UploadSpec) (Upload, error) {
	if h.start != nil {
		if err := h.start(ctx, spec); err != nil {
			return nil, err
		}
	}
	u, err := h.Dracoon.StartUpload(ctx, spec)
	if err == nil {
		h.started.Add(1)
	}
	return u, err
}

// barrier lets n calls through once all n are waiting in it at once.
type barrier struct {
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait() error {
	b.mu.Lock()
	if b.arrived++; b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("the calls for the other targets did not run at the same time")
	}
}

// TestTransfer_setup_is_concurrent: the lookups and the channel creations
// of the targets run at once, and the results keep the targets' order.
func TestTransfer_setup_is_concurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 64<<10)
	targets := []Target{e.target(t, "cc/a"), e.target(t, "cc/b"), e.target(t, "cc/c")}
	finds, starts := newBarrier(len(targets)), newBarrier(len(targets))
	dc := &hookedDracoon{Dracoon: Client(e.svc),
		find:  func(context.Context, int64) error { return finds.wait() },
		start: func(context.Context, dracoon.UploadSpec) error { return starts.wait() }}
	obj := e.put(t, "cc.mp4", randomBytes(t, 200<<10))
	res, err := New(e.src, dc, Options{ReadAhead: 2, PartsInFlight: 2}).
		Transfer(context.Background(), Job{Files: []File{{Object: obj, Name: "cc.mp4"}}, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range res.Files[0].Uploads {
		n, found, err := e.svc.FindFile(context.Background(), targets[i].RoomID, "cc.mp4")
		if err != nil || !found || u.NodeID != n.ID || u.RoomID != targets[i].RoomID || u.Path != targets[i].Path || u.Existed {
			t.Errorf("upload %d: %+v; in the room: %+v %t %v", i, u, n, found, err)
		}
	}
}

// TestTransfer_setup_failures: a lookup's failure or conflict is judged
// in target order before any channel opens; a channel creation that fails,
// or a job cancelled while channels are being created, leaves no channel
// open, not even those whose creation ended after the failure, and the
// creations in flight are not cut off.
func TestTransfer_setup_failures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 64<<10)
	ctx := context.Background()
	targets := []Target{e.target(t, "sf/a"), e.target(t, "sf/b"), e.target(t, "sf/c")}
	bigger := e.put(t, "bigger.mp4", randomBytes(t, 11))
	e.holdNames(t, targets[2:], "taken.mp4", bigger)
	transient := errclass.AsTransient(errors.New("lookup failed"))

	t.Run("conflict", func(t *testing.T) {
		dc := &hookedDracoon{Dracoon: Client(e.svc)}
		_, err := New(e.src, dc, Options{}).Transfer(ctx, Job{Files: []File{{Object: bigger, Name: "taken.mp4"}}, Targets: targets})
		if !errors.Is(err, dracoon.ErrNameConflict) || !errclass.IsPermanent(err) || !strings.Contains(err.Error(), `"sf/c"`) {
			t.Errorf("err = %v, want a permanent conflict in sf/c", err)
		}
		if n := dc.started.Load(); n != 0 {
			t.Errorf("%d channels opened", n)
		}
	})
	t.Run("lookup_error_first_in_order", func(t *testing.T) {
		// b's lookup fails (after c's conflict is known): b's error wins,
		// as when the lookups ran one after the other.
		dc := &hookedDracoon{Dracoon: Client(e.svc), find: func(_ context.Context, room int64) error {
			if room == targets[1].RoomID {
				time.Sleep(100 * time.Millisecond)
				return transient
			}
			return nil
		}}
		_, err := New(e.src, dc, Options{}).Transfer(ctx, Job{Files: []File{{Object: bigger, Name: "taken.mp4"}}, Targets: targets})
		if !errors.Is(err, transient) || errclass.IsPermanent(err) {
			t.Errorf("err = %v, want b's lookup error", err)
		}
	})

	obj := e.put(t, "sf.mp4", randomBytes(t, 200<<10))
	job := Job{Files: []File{{Object: obj, Name: "sf.mp4"}}, Targets: targets}
	t.Run("start_fails", func(t *testing.T) {
		var cut atomic.Int32
		dc := &hookedDracoon{Dracoon: Client(e.svc), start: func(ctx context.Context, spec dracoon.UploadSpec) error {
			if spec.ParentID == targets[1].RoomID {
				time.Sleep(50 * time.Millisecond) // the others have started
				return errclass.AsPermanent(errors.New("refused"))
			}
			time.Sleep(300 * time.Millisecond) // ends after b's failure
			if ctx.Err() != nil {
				cut.Add(1)
			}
			return nil
		}}
		_, err := New(e.src, dc, Options{}).Transfer(ctx, job)
		if err == nil || !errclass.IsPermanent(err) || !strings.Contains(err.Error(), `room "sf/b"`) {
			t.Errorf("err = %v, want b's refusal", err)
		}
		if n := dc.started.Load(); n != 2 || cut.Load() != 0 {
			t.Errorf("%d channels opened, %d creations cut off; want 2 and 0", n, cut.Load())
		}
		if n := e.emu.Emu.OpenUploads(); n != 0 {
			t.Errorf("%d upload channels left open", n)
		}
	})
	t.Run("cancelled_while_opening", func(t *testing.T) {
		jctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var cut atomic.Int32
		dc := &hookedDracoon{Dracoon: Client(e.svc), start: func(ctx context.Context, _ dracoon.UploadSpec) error {
			cancel()
			time.Sleep(100 * time.Millisecond)
			if ctx.Err() != nil {
				cut.Add(1)
			}
			return nil
		}}
		_, err := New(e.src, dc, Options{}).Transfer(jctx, job)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want the cancellation", err)
		}
		if n := dc.started.Load(); n < 1 || cut.Load() != 0 {
			t.Errorf("%d channels opened, %d creations cut off; want some and 0", n, cut.Load())
		}
		if n := e.emu.Emu.OpenUploads(); n != 0 {
			t.Errorf("%d upload channels left open", n)
		}
	})
	for _, tg := range targets {
		if _, found, _ := e.svc.FindFile(ctx, tg.RoomID, "sf.mp4"); found {
			t.Errorf("a file appeared in %s", tg.Path)
		}
	}
}

// TestTransfer_expiration: each target's expiration date becomes its
// file's.
func TestTransfer_expiration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 64<<10)
	at := time.Now().Add(400 * 24 * time.Hour).UTC().Truncate(time.Second)
	withExp, never := e.target(t, "exp/a"), e.target(t, "exp/b")
	withExp.ExpireAt = &at
	obj := e.put(t, "exp.mp4", randomBytes(t, 1000))
	res, err := e.engine().Transfer(context.Background(), Job{Files: []File{{Object: obj, Name: "exp.mp4"}}, Targets: []Target{withExp, never}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []*time.Time{&at, nil} {
		n, err := e.svc.Node(context.Background(), res.Files[0].Uploads[i].NodeID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case want == nil && n.ExpireAt != nil:
			t.Errorf("target %d: expires %v, want never", i, n.ExpireAt)
		case want != nil && (n.ExpireAt == nil || !n.ExpireAt.Equal(*want)):
			t.Errorf("target %d: expires %v, want %v", i, n.ExpireAt, *want)
		}
	}
}

// panickySource panics on the read of the second chunk.
type panickySource struct {
	*s3source.Source
	reads atomic.Int32
}

func (p *panickySource) ReadChunk(ctx context.Context, obj s3source.Object, offset int64, buf []byte) (int, error) {
	if p.reads.Add(1) == 2 {
		panic("reader bug")
	}
	return p.Source.ReadChunk(ctx, obj, offset, buf)
}

// TestTransfer_panic_is_an_error: a panic in one of the engine's
// goroutines fails that job (permanently, the panic named), closes its
// upload channels and keeps its source; the process lives on.
func TestTransfer_panic_is_an_error(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, 64<<10)
	targets := []Target{e.target(t, "panic")}
	obj := e.put(t, "panic.mp4", randomBytes(t, 300<<10))
	eng := New(&panickySource{Source: e.src}, Client(e.svc), Options{ReadAhead: 1, PartsInFlight: 1})
	_, err := eng.Transfer(context.Background(), Job{Files: []File{{Object: obj, Name: "panic.mp4"}}, Targets: targets, RemoveSource: true})
	if err == nil || !errclass.IsPermanent(err) || !strings.Contains(err.Error(), "panic: reader bug") {
		t.Fatalf("err = %v, want a permanent error naming the panic", err)
	}
	if n := e.emu.Emu.OpenUploads(); n != 0 {
		t.Errorf("%d upload channels left open", n)
	}
	e.sourceGone(t, "panic.mp4", false)
}
