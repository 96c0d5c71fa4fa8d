package transfer

// Engine tests with fakes where no wire is crossed: an in-memory source and
// a DRACOON account whose uploads fail where a test says, as the transfer
// manager of aws-sdk-go-v2 tests its uploader. They need no local stack.

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/messages"
)

// fakePartSize is the part size of the fake uploads: a recording of
// fakeSize bytes has fakeParts parts, the last one short.
const (
	fakePartSize = 64 << 10
	fakeSize     = 4*fakePartSize + 100
	fakeParts    = 5
)

// memSource is a Source over objects in memory, with a hook before every
// read; it records the objects removed.
type memSource struct {
	mu      sync.Mutex
	objects map[string][]byte // by key
	removed []string
	onRead  func(obj s3source.Object, offset int64) error // nil: none
}

// put stores data as key and returns the object as Head sees it.
func (m *memSource) put(key string, data []byte) s3source.Object {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objects == nil {
		m.objects = map[string][]byte{}
	}
	m.objects[key] = data
	return m.object(key)
}

// object describes key. Call with mu held.
func (m *memSource) object(key string) s3source.Object {
	return s3source.Object{Bucket: "mem", Key: key, Size: int64(len(m.objects[key])), ETag: strconv.Quote("etag-" + key)}
}

func (m *memSource) ReadChunk(_ context.Context, obj s3source.Object, offset int64, buf []byte) (int, error) {
	if m.onRead != nil {
		if err := m.onRead(obj, offset); err != nil {
			return 0, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.objects[obj.Key]
	if !ok {
		return 0, fmt.Errorf("cannot read %s: %w", obj, s3source.ErrNoSuchKey)
	}
	return copy(buf, data[offset:]), nil
}

func (m *memSource) Head(_ context.Context, bucket, key string) (s3source.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[key]; !ok {
		return s3source.Object{}, fmt.Errorf("cannot look up s3://%s/%s: %w", bucket, key, s3source.ErrNoSuchKey)
	}
	return m.object(key), nil
}

func (m *memSource) Remove(_ context.Context, obj s3source.Object) (s3source.Removal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removed = append(m.removed, obj.Key)
	if _, ok := m.objects[obj.Key]; !ok {
		return s3source.AlreadyGone, nil
	}
	delete(m.objects, obj.Key)
	return s3source.Removed, nil
}

// removals returns the keys removed so far.
func (m *memSource) removals() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.removed...)
}

// fakeDracoon is an account whose rooms are lists of files in memory; its
// uploads are fakeUploads, each shaped by setup (when not nil) as it starts.
type fakeDracoon struct {
	direct bool
	setup  func(u *fakeUpload)

	mu      sync.Mutex
	rooms   map[int64][]dracoon.Node
	uploads []*fakeUpload
	lastID  int64
}

// addFile puts a file into room as a completion does.
func (d *fakeDracoon) addFile(room int64, name string, size int64, notes string) dracoon.Node {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rooms == nil {
		d.rooms = map[int64][]dracoon.Node{}
	}
	d.lastID++
	n := dracoon.Node{ID: d.lastID, Type: dracoon.NodeTypeFile, Name: name, Size: size, Notes: notes, ParentID: &room}
	d.rooms[room] = append(d.rooms[room], n)
	return n
}

// files returns the number of files in every room.
func (d *fakeDracoon) files() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, files := range d.rooms {
		n += len(files)
	}
	return n
}

// started returns the uploads started so far.
func (d *fakeDracoon) started() []*fakeUpload {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*fakeUpload(nil), d.uploads...)
}

func (d *fakeDracoon) FindFiles(_ context.Context, roomID int64, text string) ([]dracoon.Node, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []dracoon.Node
	for _, n := range d.rooms[roomID] {
		if strings.Contains(n.Name, text) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (d *fakeDracoon) StartUpload(_ context.Context, spec dracoon.UploadSpec) (Upload, error) {
	u := &fakeUpload{d: d, spec: spec, direct: d.direct, parts: max(1, int((spec.Size+fakePartSize-1)/fakePartSize)),
		next: 1, written: map[int]bool{}}
	if d.setup != nil {
		d.setup(u)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.uploads = append(d.uploads, u)
	return u, nil
}

func (d *fakeDracoon) WrapFileKey(context.Context, crypto.PlainFileKey) (crypto.FileKey, error) {
	return crypto.FileKey{}, nil
}

func (d *fakeDracoon) PrivateKey(context.Context) (*crypto.PrivateKey, error) { return nil, nil }

// fakeUpload is an upload channel that fails writing part failAt (when not
// zero) with failErr, and completes with completeErr (when not nil), having
// taken effect when completeTakes. Like *dracoon.Upload it is closed after
// a failure, and takes proxy parts only in order.
type fakeUpload struct {
	d             *fakeDracoon
	spec          dracoon.UploadSpec
	direct        bool
	parts         int
	failAt        int
	failErr       error
	completeErr   error
	completeTakes bool

	mu         sync.Mutex
	next       int // proxy: the part expected next
	written    map[int]bool
	outOfOrder bool
	closed     error
	completes  int
	completed  bool
	cancels    int
}

func (u *fakeUpload) ID() string      { return "fake-" + u.spec.Name }
func (u *fakeUpload) Direct() bool    { return u.direct }
func (u *fakeUpload) Parts() int      { return u.parts }
func (u *fakeUpload) PartSize() int64 { return fakePartSize }

func (u *fakeUpload) PartRange(n int) (offset, length int64) {
	offset = int64(n-1) * fakePartSize
	return offset, min(fakePartSize, u.spec.Size-offset)
}

func (u *fakeUpload) WritePart(ctx context.Context, n int, offset int64, data []byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.closed != nil:
		return fmt.Errorf("%w: %w", dracoon.ErrUploadClosed, u.closed)
	case ctx.Err() != nil:
		u.closed = ctx.Err()
		return ctx.Err()
	case !u.direct && n != u.next:
		u.outOfOrder = true
	}
	if off, length := u.PartRange(n); off != offset || length != int64(len(data)) {
		u.closed = fmt.Errorf("part %d at %d+%d: %w", n, offset, len(data), dracoon.ErrBadPart)
		return u.closed
	}
	if n == u.failAt {
		u.closed = fmt.Errorf("cannot upload part %d: %w", n, u.failErr)
		return u.closed
	}
	u.written[n] = true
	u.next = n + 1
	return nil
}

func (u *fakeUpload) WritePartSum(ctx context.Context, n int, offset int64, data []byte, sum [md5.Size]byte) error {
	if md5.Sum(data) != sum {
		return fmt.Errorf("part %d: %w", n, dracoon.ErrChecksum)
	}
	return u.WritePart(ctx, n, offset, data)
}

func (u *fakeUpload) Complete(_ context.Context, _ crypto.FileKey) (dracoon.Node, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.completes++
	if u.closed != nil {
		return dracoon.Node{}, fmt.Errorf("%w: %w", dracoon.ErrUploadClosed, u.closed)
	}
	if len(u.written) != u.parts {
		u.closed = fmt.Errorf("%d of %d parts written: %w", len(u.written), u.parts, dracoon.ErrBadPart)
		return dracoon.Node{}, u.closed
	}
	if u.completeErr != nil {
		if u.completeTakes {
			u.d.addFile(u.spec.ParentID, u.spec.Name, u.spec.Size, u.spec.Notes)
		}
		u.closed = u.completeErr
		return dracoon.Node{}, u.completeErr
	}
	u.completed = true
	u.closed = errors.New("completed")
	return u.d.addFile(u.spec.ParentID, u.spec.Name, u.spec.Size, u.spec.Notes), nil
}

func (u *fakeUpload) Cancel(context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.cancels++
	if u.closed == nil {
		u.closed = errors.New("cancelled")
	}
	return nil
}

// state returns what became of the upload.
func (u *fakeUpload) state() (written []int, completes, cancels int, completed, outOfOrder bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for n := range u.parts + 1 {
		if u.written[n] {
			written = append(written, n)
		}
	}
	return written, u.completes, u.cancels, u.completed, u.outOfOrder
}

// fakeTargets are the two target rooms of the fake tests.
var fakeTargets = []Target{{RoomID: 101, Path: "fake/a"}, {RoomID: 102, Path: "fake/b"}}

// noLeak fails t if goroutines started during the test outlive it.
func noLeak(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// TestEngine_write_failure: a part that one target cannot write fails the
// job with that error and its class, whichever part it is and whatever
// the upload mode: every channel opened is cancelled and none completed,
// no file appears, the source stays, no proxy part goes out of order or
// past the failure, and no goroutine outlives the transfer.
func TestEngine_write_failure(t *testing.T) {
	classes := []struct {
		name string
		mark func(error) error
		want errclass.Class
	}{
		{"transient", errclass.AsTransient, errclass.Transient},
		{"permanent", errclass.AsPermanent, errclass.Permanent},
	}
	for _, direct := range []bool{false, true} {
		for _, k := range []struct {
			name string
			part int
		}{{"first", 1}, {"middle", 3}, {"last", fakeParts}} {
			for _, class := range classes {
				name := map[bool]string{false: "proxy", true: "s3"}[direct] + "_" + k.name + "_" + class.name
				t.Run(name, func(t *testing.T) {
					noLeak(t)
					refused := class.mark(fmt.Errorf("part %d refused", k.part))
					src := &memSource{}
					obj := src.put("rec.mp4", randomBytes(t, fakeSize))
					dc := &fakeDracoon{direct: direct, setup: func(u *fakeUpload) {
						if u.spec.ParentID == fakeTargets[1].RoomID {
							u.failAt, u.failErr = k.part, refused
						}
					}}
					_, err := New(src, dc, Options{ReadAhead: 2, PartsInFlight: 2}).Transfer(context.Background(),
						Job{ID: name, Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: fakeTargets, RemoveSource: true})
					if !errors.Is(err, refused) || errclass.Of(err) != class.want {
						t.Fatalf("err = %v (class %v), want the refusal of class %v", err, errclass.Of(err), class.want)
					}
					ups := dc.started()
					if len(ups) != len(fakeTargets) {
						t.Fatalf("%d uploads started, want %d", len(ups), len(fakeTargets))
					}
					for _, u := range ups {
						written, completes, cancels, completed, outOfOrder := u.state()
						if completes != 0 || completed || cancels == 0 {
							t.Errorf("room %d: %d completions, %d cancellations; want none and some", u.spec.ParentID, completes, cancels)
						}
						if outOfOrder {
							t.Errorf("room %d: proxy parts written out of order", u.spec.ParentID)
						}
						if u.spec.ParentID == fakeTargets[1].RoomID && !direct && len(written) > 0 && written[len(written)-1] >= k.part {
							t.Errorf("proxy parts %v written, want none from part %d on", written, k.part)
						}
					}
					if n := dc.files(); n != 0 {
						t.Errorf("%d files in the rooms, want none", n)
					}
					if removed := src.removals(); len(removed) != 0 {
						t.Errorf("sources removed: %v", removed)
					}
				})
			}
		}
	}
}

// TestEngine_complete_outcome_unknown: a completion whose outcome is
// unknown (its answer lost; it took effect or not) fails the job with
// class Unknown and keeps the source, every channel not completed being
// cancelled. The next delivery looks the rooms up again: it finds the file
// by its stamp where the completion took effect and uploads it again only
// where it did not, then removes the source.
func TestEngine_complete_outcome_unknown(t *testing.T) {
	for _, tt := range []struct {
		name       string
		takes      bool
		wantUpload bool // the next delivery uploads into the second room again
	}{
		{"took_effect", true, false},
		{"had_no_effect", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			ctx := context.Background()
			src := &memSource{}
			obj := src.put("rec.mp4", randomBytes(t, fakeSize))
			lost := fmt.Errorf("cannot complete upload: %w", dracoon.ErrOutcomeUnknown)
			dc := &fakeDracoon{direct: true, setup: func(u *fakeUpload) {
				if u.spec.ParentID == fakeTargets[1].RoomID {
					u.completeErr, u.completeTakes = lost, tt.takes
				}
			}}
			job := Job{ID: tt.name, Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: fakeTargets, RemoveSource: true}
			_, err := New(src, dc, Options{}).Transfer(ctx, job)
			if !errors.Is(err, dracoon.ErrOutcomeUnknown) || !errclass.IsUnknown(err) {
				t.Fatalf("err = %v (class %v), want ErrOutcomeUnknown of class unknown", err, errclass.Of(err))
			}
			if removed := src.removals(); len(removed) != 0 {
				t.Fatalf("sources removed after an unknown outcome: %v", removed)
			}
			for _, u := range dc.started() {
				_, _, cancels, completed, _ := u.state()
				if !completed && cancels == 0 {
					t.Errorf("room %d: neither completed nor cancelled", u.spec.ParentID)
				}
			}

			dc.setup = nil // the next delivery meets no failure
			first := len(dc.started())
			res, err := New(src, dc, Options{}).Transfer(ctx, job)
			if err != nil {
				t.Fatalf("next delivery: %v", err)
			}
			again := dc.started()[first:]
			if tt.wantUpload != (len(again) == 1) || (tt.wantUpload && again[0].spec.ParentID != fakeTargets[1].RoomID) ||
				len(again) > 1 {
				t.Errorf("next delivery started %d uploads; want one into the second room: %v", len(again), tt.wantUpload)
			}
			fr := res.Files[0]
			if !fr.Uploads[0].Existed || fr.Uploads[1].Existed != tt.takes || fr.Uploads[1].NodeID == 0 {
				t.Errorf("next delivery: %+v; want the first room's file found, the second's found: %v", fr.Uploads, tt.takes)
			}
			if fr.Removal != s3source.Removed || len(src.removals()) != 1 {
				t.Errorf("removal %v (%v), want the source removed once", fr.Removal, src.removals())
			}
			if n := dc.files(); n != len(fakeTargets) {
				t.Errorf("%d files in the rooms, want one in each", n)
			}
		})
	}
}

// TestEngine_source_gone_while_read: the source vanishes while part k is
// read (another delivery removed it). The engine cancels its channels and
// looks at the rooms again: when every room holds a copy of the source the
// job is done, the source counted as already gone; otherwise it fails for
// good, naming the rooms that lack it.
func TestEngine_source_gone_while_read(t *testing.T) {
	for _, tt := range []struct {
		name   string
		copies []int // indexes of the targets the other delivery completed
	}{
		{"every_room_has_a_copy", []int{0, 1}},
		{"a_room_lacks_it", []int{0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			src := &memSource{}
			obj := src.put("rec.mp4", randomBytes(t, fakeSize))
			dc := &fakeDracoon{}
			stamp := messages.StampOf(obj.Bucket, obj.Key, obj.ETag, obj.VersionID)
			var once sync.Once
			src.onRead = func(_ s3source.Object, offset int64) error {
				if offset == 2*fakePartSize {
					once.Do(func() {
						for _, i := range tt.copies {
							dc.addFile(fakeTargets[i].RoomID, "rec.mp4", obj.Size, stamp.Notes())
						}
						src.mu.Lock()
						delete(src.objects, obj.Key)
						src.mu.Unlock()
					})
				}
				return nil
			}
			res, err := New(src, dc, Options{ReadAhead: 1, PartsInFlight: 1}).Transfer(context.Background(),
				Job{ID: tt.name, Files: []File{{Object: obj, Name: "rec.mp4"}}, Targets: fakeTargets, RemoveSource: true})
			for _, u := range dc.started() {
				if _, completes, cancels, _, _ := u.state(); completes != 0 || cancels == 0 {
					t.Errorf("room %d: %d completions, %d cancellations; want none and some", u.spec.ParentID, completes, cancels)
				}
			}
			if len(tt.copies) < len(fakeTargets) {
				if !errors.Is(err, s3source.ErrNoSuchKey) || !errclass.IsPermanent(err) ||
					!strings.Contains(err.Error(), strconv.Quote(fakeTargets[1].Path)) || strings.Contains(err.Error(), strconv.Quote(fakeTargets[0].Path)) {
					t.Fatalf("err = %v; want a permanent ErrNoSuchKey naming room %q only", err, fakeTargets[1].Path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fr := res.Files[0]
			if fr.Removal != s3source.AlreadyGone || !fr.Uploads[0].Existed || !fr.Uploads[1].Existed {
				t.Errorf("result %+v; want both copies found and the source already gone", fr)
			}
		})
	}
}
