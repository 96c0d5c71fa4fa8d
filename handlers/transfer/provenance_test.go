package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/messages"
)

// Every test here fails if a file of the right name and size were taken as
// the source's copy: the room would lack the source's bytes when the source
// is removed.

// modes runs f in a fresh env for each upload mode.
func modes(t *testing.T, f func(t *testing.T, e *env)) {
	t.Helper()
	for _, m := range []struct {
		name   string
		direct bool
		chunk  int64
	}{{"proxy", false, 64 << 10}, {"s3", true, dracoon.MinS3PartSize}} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f(t, newEnv(t, m.direct, m.chunk))
		})
	}
}

// roomFiles returns the names of the files in a room whose names contain
// text, sorted.
func (e *env) roomFiles(t *testing.T, tg Target, text string) []dracoon.Node {
	t.Helper()
	files, err := e.svc.FindFiles(context.Background(), tg.RoomID, text)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files
}

// sourceGone fails the test unless the object bucket/key is gone.
func (e *env) sourceGone(t *testing.T, key string, want bool) {
	t.Helper()
	_, err := e.src.Head(context.Background(), e.bucket, key)
	if gone := errors.Is(err, s3source.ErrNoSuchKey); gone != want {
		t.Fatalf("source %s gone = %v (%v), want %v", key, gone, err, want)
	}
}

// TestTransfer_other_key_same_name_and_size: a second key whose file name
// and size are those of a file already in the room is a recording of its
// own: it goes in under its own name, and only then is its source removed.
func TestTransfer_other_key_same_name_and_size(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		targets := []Target{e.target(t, "ok/r")}
		members := e.members(t)
		dataA, dataB := randomBytes(t, 100<<10), randomBytes(t, 100<<10)
		objA, objB := e.put(t, "a/rec.mp4", dataA), e.put(t, "b/rec.mp4", dataB)
		const name = "2024-01-02_03-04-05_8801_rec.mp4"

		resA, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: objA, Name: name}}, Targets: targets, RemoveSource: true})
		if err != nil {
			t.Fatal(err)
		}
		resB, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: objB, Name: name}}, Targets: targets, RemoveSource: true})
		if err != nil {
			t.Fatal(err)
		}
		ub := resB.Files[0].Uploads[0]
		alt := messages.AlternateName(name, messages.StampOf(e.bucket, "b/rec.mp4", objB.ETag, ""))
		if ub.Existed || !ub.NameTaken || ub.Name != alt || !resB.Files[0].SourceRemoved() {
			t.Fatalf("second key: %+v removed %v; want uploaded as %q, name taken, source removed", ub, resB.Files[0].Removal, alt)
		}
		if got := e.roomFiles(t, targets[0], "8801"); len(got) != 2 {
			t.Fatalf("room holds %d files, want both recordings: %+v", len(got), got)
		}
		e.checkDecrypts(t, members, resA.Files[0].Uploads[0].NodeID, sha256.Sum256(dataA))
		e.checkDecrypts(t, members, ub.NodeID, sha256.Sum256(dataB))
		e.sourceGone(t, "b/rec.mp4", true)

		// A redelivery of the second job finds its own file, not the first.
		again, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: objB, Name: name}}, Targets: targets, RemoveSource: true})
		if err != nil {
			t.Fatal(err)
		}
		if u := again.Files[0].Uploads[0]; !u.Existed || u.NodeID != ub.NodeID || again.Files[0].Removal != s3source.AlreadyGone {
			t.Fatalf("redelivery: %+v, %v; want file %d, source already gone", u, again.Files[0].Removal, ub.NodeID)
		}
		if got := e.roomFiles(t, targets[0], "8801"); len(got) != 2 {
			t.Fatalf("after a redelivery the room holds %d files, want 2", len(got))
		}
	})
}

// TestTransfer_same_key_replaced: a key transferred and kept, then replaced
// by a new recording of the same size: the new recording goes in under its
// own name, and the room keeps both.
func TestTransfer_same_key_replaced(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		targets := []Target{e.target(t, "rp/a"), e.target(t, "rp/b")}
		members := e.members(t)
		first, second := randomBytes(t, 70<<10), randomBytes(t, 70<<10)
		v1 := e.put(t, "k/rec.mp4", first)
		if _, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: v1, Name: "rec.mp4"}}, Targets: targets}); err != nil {
			t.Fatal(err)
		}
		e.sourceGone(t, "k/rec.mp4", false)
		v2 := e.put(t, "k/rec.mp4", second)
		res, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: v2, Name: "rec.mp4"}}, Targets: targets, RemoveSource: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range res.Files[0].Uploads {
			if u.Existed || !u.NameTaken || u.Name == "rec.mp4" {
				t.Fatalf("target %d: %+v; want the new version uploaded under its own name", i, u)
			}
			e.checkDecrypts(t, members, u.NodeID, sha256.Sum256(second))
			if got := e.roomFiles(t, targets[i], "rec"); len(got) != 2 {
				t.Fatalf("room %s holds %d files, want both versions", targets[i].Path, len(got))
			}
		}
		e.sourceGone(t, "k/rec.mp4", true)
	})
}

// TestTransfer_file_without_provenance_is_no_copy: a file of the name and
// size put there by someone else (no stamp, or a stamp of another source)
// does not count.
func TestTransfer_file_without_provenance_is_no_copy(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		targets := []Target{e.target(t, "np/a"), e.target(t, "np/b")}
		data := randomBytes(t, 40<<10)
		obj := e.put(t, "np/rec.mp4", data)
		for i, notes := range []string{"", messages.StampOf("other-bucket", "np/rec.mp4", obj.ETag, "").Notes()} {
			other := New(e.src, notesDracoon{Dracoon: Client(e.svc), notes: notes}, Options{})
			if _, err := other.Transfer(ctx, Job{Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: targets[i : i+1]}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: targets, RemoveSource: true})
		if err != nil {
			t.Fatal(err)
		}
		members := e.members(t)
		for i, u := range res.Files[0].Uploads {
			if u.Existed || !u.NameTaken {
				t.Fatalf("target %d: %+v; want an upload under the version's own name", i, u)
			}
			e.checkDecrypts(t, members, u.NodeID, sha256.Sum256(data))
		}
		e.sourceGone(t, "np/rec.mp4", true)
	})
}

// notesDracoon uploads with notes instead of the engine's stamp, as
// someone else would.
type notesDracoon struct {
	Dracoon
	notes string
}

func (d notesDracoon) StartUpload(ctx context.Context, spec dracoon.UploadSpec) (Upload, error) {
	spec.Notes = d.notes
	return d.Dracoon.StartUpload(ctx, spec)
}

// replacingSource replaces the object with other bytes right before the
// engine removes it.
type replacingSource struct {
	*s3source.Source
	e *env
	t *testing.T
}

func (r replacingSource) Remove(ctx context.Context, obj s3source.Object) (s3source.Removal, error) {
	r.e.put(r.t, obj.Key, randomBytes(r.t, obj.Size))
	return r.Source.Remove(ctx, obj)
}

// TestTransfer_replaced_after_copy_is_kept: an object replaced after its
// copy is complete is kept, and the job succeeds for the version copied.
func TestTransfer_replaced_after_copy_is_kept(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		targets := []Target{e.target(t, "rk")}
		obj := e.put(t, "rk/rec.mp4", randomBytes(t, 30<<10))
		eng := New(replacingSource{Source: e.src, e: e, t: t}, Client(e.svc), Options{})
		res, err := eng.Transfer(ctx, Job{Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: targets, RemoveSource: true})
		if err != nil {
			t.Fatal(err)
		}
		if r := res.Files[0].Removal; r != s3source.Changed || res.Files[0].SourceRemoved() {
			t.Fatalf("removal = %v, want %v", r, s3source.Changed)
		}
		now, err := e.src.Head(ctx, e.bucket, "rk/rec.mp4")
		if err != nil || now.ETag == obj.ETag {
			t.Fatalf("after the transfer: %+v, %v; want the replacement kept", now, err)
		}
	})
}

// TestTransfer_two_engines_race: two engines on the same job at once (a
// redelivery while the first delivery still runs) leave one file per room,
// remove the source once, and both succeed.
func TestTransfer_two_engines_race(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		targets := []Target{e.target(t, "race/a"), e.target(t, "race/b")}
		data := randomBytes(t, 3*e.chunk+5)
		obj := e.put(t, "race/rec.mp4", data)
		// Slow uploads, so that both engines are in flight at once.
		e.emu.Emu.InjectFault(emulator.FaultRule{Method: "POST", PathPrefix: "/api/v4/uploads/", Latency: 20 * time.Millisecond, Times: 1000})
		e.emu.Emu.InjectFault(emulator.FaultRule{Method: "PUT", PathPrefix: "/s3/", Latency: 20 * time.Millisecond, Times: 1000})
		job := Job{Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: targets, RemoveSource: true}
		var (
			wg      sync.WaitGroup
			results [2]Result
			errs    [2]error
		)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = e.engine().Transfer(ctx, job)
			}()
		}
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil {
				t.Fatalf("engine %d: %v", i, errs[i])
			}
			// Both may say Removed when their deletes cross: versitygw
			// answers 204 to a delete of a key already gone (AWS: 404).
			if !results[i].Files[0].SourceRemoved() {
				t.Errorf("engine %d: removal %v", i, results[i].Files[0].Removal)
			}
		}
		e.sourceGone(t, "race/rec.mp4", true)
		members := e.members(t)
		e.oneCopyEach(t, members, targets, "rec", sha256.Sum256(data))

		// The second engine reads only after the first removed the source:
		// its read fails (404) and the rooms, looked at again, say done.
		obj = e.put(t, "race/late.mp4", data)
		job = Job{Files: []File{{Object: obj, Name: "late.mp4"}}, Targets: targets, RemoveSource: true}
		late := &gatedSource{Source: e.src, gate: make(chan struct{}), reading: make(chan struct{})}
		done := make(chan struct{})
		go func() {
			defer close(done)
			results[1], errs[1] = New(late, Client(e.svc), Options{ReadAhead: 2, PartsInFlight: 2}).Transfer(ctx, job)
		}()
		<-late.reading
		results[0], errs[0] = e.engine().Transfer(ctx, job)
		close(late.gate)
		<-done
		if errs[0] != nil || results[0].Files[0].Removal != s3source.Removed {
			t.Fatalf("first engine: %+v, %v", results[0], errs[0])
		}
		if errs[1] != nil || results[1].Files[0].Removal != s3source.AlreadyGone {
			t.Fatalf("second engine: %+v, %v; want done, the source already gone", results[1], errs[1])
		}
		e.oneCopyEach(t, members, targets, "late", sha256.Sum256(data))
	})
}

// oneCopyEach checks that every target holds one file named like text,
// which every member decrypts to sum, and that no upload channel is open.
func (e *env) oneCopyEach(t *testing.T, members map[string]*dracoon.Client, targets []Target, text string, sum [32]byte) {
	t.Helper()
	for _, tg := range targets {
		files := e.roomFiles(t, tg, text)
		if len(files) != 1 {
			t.Fatalf("room %s holds %d files, want 1: %+v", tg.Path, len(files), files)
		}
		e.checkDecrypts(t, members, files[0].ID, sum)
	}
	if n := e.emu.Emu.OpenUploads(); n != 0 {
		t.Errorf("%d upload channels left open", n)
	}
}

// gatedSource holds every read until gate is closed, and closes reading
// when the first read arrives.
type gatedSource struct {
	*s3source.Source
	gate, reading chan struct{}
	once          sync.Once
}

func (g *gatedSource) ReadChunk(ctx context.Context, obj s3source.Object, offset int64, buf []byte) (int, error) {
	g.once.Do(func() { close(g.reading) })
	select {
	case <-g.gate:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return g.Source.ReadChunk(ctx, obj, offset, buf)
}

// TestTransfer_source_gone_while_read: a source removed by another
// delivery while this one reads it ends in the truth: done when every room
// holds a copy of it, a permanent error naming the rooms that lack it
// otherwise.
func TestTransfer_source_gone_while_read(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		targets := []Target{e.target(t, "gw/a"), e.target(t, "gw/b")}
		obj := e.put(t, "gw/rec.mp4", randomBytes(t, 50<<10))
		// The other delivery brought it into room a only, then it vanished.
		if _, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: targets[:1]}); err != nil {
			t.Fatal(err)
		}
		if err := e.remove(ctx, "gw/rec.mp4"); err != nil {
			t.Fatal(err)
		}
		job := Job{Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: targets, RemoveSource: true}
		_, err := e.engine().Transfer(ctx, job)
		if !errors.Is(err, s3source.ErrNoSuchKey) || !bytes.Contains([]byte(err.Error()), []byte(`"gw/b"`)) ||
			bytes.Contains([]byte(err.Error()), []byte(`"gw/a"`)) {
			t.Fatalf("err = %v; want the missing source, naming room gw/b only", err)
		}
		if n := e.emu.Emu.OpenUploads(); n != 0 {
			t.Errorf("%d upload channels left open", n)
		}

		// Every room holds it: the job is done, nothing to read or remove.
		obj2 := e.put(t, "gw/done.mp4", randomBytes(t, 50<<10))
		if _, err := e.engine().Transfer(ctx, Job{Files: []File{{Object: obj2, Name: "done.mp4"}}, Targets: targets}); err != nil {
			t.Fatal(err)
		}
		if err := e.remove(ctx, "gw/done.mp4"); err != nil {
			t.Fatal(err)
		}
		// Looked up before the other delivery completed: the read fails
		// and the rooms, looked at again, decide.
		eng := New(e.src, hideFiles{Dracoon: Client(e.svc), seen: &sync.Map{}}, Options{})
		res, err := eng.Transfer(ctx, Job{Files: []File{{Object: obj2, Name: "done.mp4"}}, Targets: targets, RemoveSource: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range res.Files[0].Uploads {
			if !u.Existed || u.NodeID == 0 {
				t.Fatalf("target %d: %+v; want the copy found", i, u)
			}
		}
		if res.Files[0].Removal != s3source.AlreadyGone {
			t.Fatalf("removal %v, want %v", res.Files[0].Removal, s3source.AlreadyGone)
		}
	})
}

// hideFiles answers the first lookup in every room with nothing, as a
// lookup made before another delivery completed would.
type hideFiles struct {
	Dracoon
	seen *sync.Map // room id -> struct{}
}

func (h hideFiles) FindFiles(ctx context.Context, roomID int64, text string) ([]dracoon.Node, error) {
	if _, seen := h.seen.LoadOrStore(roomID, struct{}{}); !seen {
		return nil, nil
	}
	return h.Dracoon.FindFiles(ctx, roomID, text)
}
