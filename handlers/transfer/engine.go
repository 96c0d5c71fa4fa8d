// Package transfer is the transfer engine: it streams S3 objects in chunks,
// encrypts each chunk once and uploads the ciphertext to every target room
// of a job, with download, encryption and upload overlapped across bounded
// channels, and removes the source objects only when every target is
// complete.
//
// # One key and one ciphertext for every target
//
// All target files of one object share one file key and therefore one
// ciphertext: the object is read from S3 once and encrypted once, whatever
// the number of targets. This reveals nothing that per-target keys would
// keep secret. The plaintext of every copy is the same, so whoever can
// decrypt one copy (a member of one target room) already knows the content
// of the others; the key never encrypts anything else, so there is no reuse
// of a key and IV for two plaintexts (AES-GCM's one fatal misuse, which
// crypto.NewSealer refuses); the server learns that the copies are equal,
// which it can tell anyway from their names, sizes and times; and each copy's
// file key is still wrapped separately for each user, so access is granted
// and withdrawn per room as DRACOON intends. Per-target keys would cost one
// encryption and one buffer per target for no gain in confidentiality.
//
// # Idempotence and provenance
//
// SQS delivers a job at least once, and a delivery can die at any step. File
// names are deterministic (messages.FileNames), and every file the engine
// uploads carries a stamp of its source in its notes (messages.Stamp): the
// bucket and key, and the version (ETag, version id) it was read from.
// Before it uploads into a room the engine lists the files of the name's
// family (messages.NameFamily) in one request: a file stamped with this
// version is the target's result from an earlier delivery; a name and size
// alone prove nothing. When the name is held by a file of other provenance
// the version goes in under its own deterministic alternate name
// (messages.AlternateName). Uploads complete with the resolution strategy
// "fail", so a name taken meanwhile is looked up again, never renamed or
// overwritten.
//
// A source is removed only when every target holds a file stamped with its
// version, and only if it still is that version (s3source.Source.Remove).
// A read that finds the source gone or replaced looks at the rooms again: a
// job whose every target holds this version (or, the source gone, a copy of
// this bucket and key) is done; otherwise it fails for good, naming the
// rooms that lack it.
package transfer

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/logging"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/messages"
)

// Defaults for Options fields left zero: those of the configuration
// (s3.parallel and s3.parts_in_flight).
const (
	// DefaultReadAhead is how many chunks are read and encrypted ahead of
	// the uploads.
	DefaultReadAhead = conf.DefaultTransferParallel
	// DefaultPartsInFlight is how many S3 direct parts one target uploads
	// at once (proxy chunks go one after another, in order).
	DefaultPartsInFlight = conf.DefaultPartsInFlight
	// DefaultProgressInterval is how often a transfer logs its progress.
	DefaultProgressInterval = 10 * time.Second
)

// setupConcurrency bounds the lookups and the channel creations of one file
// that run at once, one per target.
const setupConcurrency = 8

// maxNameRounds bounds how often a file is looked up and uploaded again
// after its name was taken by another file while it uploaded.
const maxNameRounds = 3

// Source reads, looks up and removes the objects of a job (implemented by
// *s3source.Source).
type Source interface {
	// ReadChunk fills buf with the bytes of obj at offset, from the version
	// of obj (its ETag) that was seen when the job started.
	ReadChunk(ctx context.Context, obj s3source.Object, offset int64, buf []byte) (int, error)
	// Head looks an object up; a missing one gives s3source.ErrNoSuchKey.
	Head(ctx context.Context, bucket, key string) (s3source.Object, error)
	// Remove deletes obj only if it is still that version.
	Remove(ctx context.Context, obj s3source.Object) (s3source.Removal, error)
}

// Dracoon is the DRACOON account the files go to (implemented by
// *dracoon.Client through Client).
type Dracoon interface {
	// FindFiles lists the files of a room whose names contain text.
	FindFiles(ctx context.Context, roomID int64, text string) ([]dracoon.Node, error)
	// StartUpload opens an upload channel for spec.
	StartUpload(ctx context.Context, spec dracoon.UploadSpec) (Upload, error)
	// WrapFileKey wraps a tagged file key for the account's own public key.
	WrapFileKey(ctx context.Context, k crypto.PlainFileKey) (crypto.FileKey, error)
	// PrivateKey returns the account's unlocked private key.
	PrivateKey(ctx context.Context) (*crypto.PrivateKey, error)
}

// Upload is one open upload channel, as the engine feeds it (implemented
// by *dracoon.Upload, whose documentation states the contract): its parts'
// layout, the writing of each part, and its end, Complete or Cancel. After
// a failed WritePart or Complete the channel is closed.
type Upload interface {
	// ID is the upload's id, for logs.
	ID() string
	// Direct reports whether parts may be written in any order and at
	// once (S3 direct) rather than one after another, in order (proxy).
	Direct() bool
	// Parts is the number of parts, numbered from 1.
	Parts() int
	// PartSize is the length of every part but the last.
	PartSize() int64
	// PartRange returns the byte offset and length of part n.
	PartRange(n int) (offset, length int64)
	// WritePart uploads part n, the sealed bytes at offset.
	WritePart(ctx context.Context, n int, offset int64, data []byte) error
	// WritePartSum is WritePart for data whose MD5, sum, is known.
	WritePartSum(ctx context.Context, n int, offset int64, data []byte, sum [md5.Size]byte) error
	// Complete finishes the upload with the wrapped file key and returns
	// the new file; an error wrapping dracoon.ErrOutcomeUnknown leaves the
	// channel as it is.
	Complete(ctx context.Context, fk crypto.FileKey) (dracoon.Node, error)
	// Cancel deletes the channel; it does nothing after a Complete that
	// succeeded.
	Cancel(ctx context.Context) error
}

var _ Upload = (*dracoon.Upload)(nil)

// Client returns c as the engine's Dracoon.
//
// Go has no covariant results, so *dracoon.Client, whose StartUpload
// returns *dracoon.Upload, does not satisfy Dracoon as it is. The adapter
// lives here, next to the interfaces, rather than in package dracoon, which
// knows nothing of its consumers; the other choices were a generic Engine
// (a type parameter for the upload in every signature and call site) or a
// StartUpload in package dracoon returning this package's interface (an
// import the wrong way round).
func Client(c *dracoon.Client) Dracoon { return client{c} }

// client adapts *dracoon.Client to Dracoon.
type client struct{ *dracoon.Client }

func (c client) StartUpload(ctx context.Context, spec dracoon.UploadSpec) (Upload, error) {
	u, err := c.Client.StartUpload(ctx, spec)
	if err != nil {
		return nil, err // a nil Upload, not a nil *dracoon.Upload in one
	}
	return u, nil
}

// Options tunes an Engine. Zero values mean the defaults.
type Options struct {
	// ReadAhead is how many chunks are read from S3 and encrypted ahead of
	// the uploads; it is also the number of concurrent ranged reads.
	ReadAhead int
	// PartsInFlight is how many S3 direct parts each target uploads at once.
	PartsInFlight int
	// ProgressInterval is how often a running transfer logs its progress.
	ProgressInterval time.Duration
	// Logger receives progress and errors; nil discards.
	Logger logrus.FieldLogger
	// Metrics, when not nil, is updated by every transfer.
	Metrics *Metrics
	// Progress, when not nil, receives the progress of every file.
	Progress ProgressFunc
}

func (o *Options) setDefaults() {
	if o.ReadAhead <= 0 {
		o.ReadAhead = DefaultReadAhead
	}
	if o.PartsInFlight <= 0 {
		o.PartsInFlight = DefaultPartsInFlight
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.Logger == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		o.Logger = l
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BufferCount is the most chunk buffers one transfer holds at once with
// these options: memory in flight is BufferCount x chunk size, whatever the
// object size and the number of targets.
func (o Options) BufferCount() int {
	o.setDefaults()
	return o.ReadAhead + o.PartsInFlight
}

// Engine transfers jobs. It is safe for concurrent use.
type Engine struct {
	src  Source
	dc   Dracoon
	opts Options

	peakBuffers atomic.Int64 // most chunk buffers one transfer held at once
}

// New returns an Engine reading from src and uploading with dc.
func New(src Source, dc Dracoon, opts Options) *Engine {
	opts.setDefaults()
	return &Engine{src: src, dc: dc, opts: opts}
}

// File is one source object of a job and its DRACOON file name.
type File struct {
	Object s3source.Object // as seen by HeadObject when the job started
	Name   string          // see messages.FileNames
}

// Target is one room that every file of a job goes to.
type Target struct {
	RoomID   int64
	Path     string     // the room's path below the instance's parent room, for reports
	ExpireAt *time.Time // the files' expiration; nil: never
}

// Job is one transfer: every file to every target.
type Job struct {
	ID           string // for logs
	Files        []File
	Targets      []Target
	RemoveSource bool // delete the objects once every file is complete in every target
}

// Result reports a transfer.
type Result struct {
	Files []FileResult
}

// FileResult is one source object and the files it became.
type FileResult struct {
	Bucket  string
	Key     string
	Size    int64
	Uploads []Uploaded // one per target, in the order of Job.Targets
	// Removal is what became of the source: zero when it was not to be
	// removed, else s3source.Removed, AlreadyGone or Changed (kept).
	Removal s3source.Removal
}

// SourceRemoved reports whether the source is gone after the transfer.
func (fr FileResult) SourceRemoved() bool {
	return fr.Removal == s3source.Removed || fr.Removal == s3source.AlreadyGone
}

// Uploaded is one file in one target room.
type Uploaded struct {
	RoomID  int64
	Path    string
	NodeID  int64
	Name    string
	Existed bool // found complete from an earlier delivery, not uploaded now
	// NameTaken reports that the file's deterministic name was held by a
	// file of other provenance, so Name is the version's alternate name.
	NameTaken bool
}

// Transfer uploads every file of job to every target, one file after the
// other, and then removes the sources when job.RemoveSource is set, each
// only if it is still the version copied. Files already complete in a
// target are not uploaded again. On failure nothing is removed from S3 and
// no upload channel is left open.
func (e *Engine) Transfer(ctx context.Context, job Job) (Result, error) {
	if len(job.Files) == 0 || len(job.Targets) == 0 {
		return Result{}, errclass.AsPermanent(errors.New("cannot transfer: a job needs at least one file and one target"))
	}
	log := e.opts.Logger.WithField(logging.FieldJobID, job.ID)
	var res Result
	for _, f := range job.Files {
		fr, err := e.transferFile(ctx, job, f, log)
		if err != nil {
			code := logging.CodeTransferError
			if !errclass.IsPermanent(err) {
				code = logging.CodeS3ToDracoon
			}
			entry := logging.WithCode(log, code).WithError(err).WithFields(logrus.Fields{"key": f.Object.Key,
				"class": errclass.Of(err).String()})
			if pe := (*panicError)(nil); errors.As(err, &pe) {
				entry = entry.WithField("stack", string(pe.stack))
			}
			entry.Error("transfer failed")
			return res, err
		}
		res.Files = append(res.Files, fr)
	}
	if !job.RemoveSource {
		return res, nil
	}
	for i, f := range job.Files {
		fr := &res.Files[i]
		if fr.Removal == 0 {
			r, err := e.src.Remove(ctx, f.Object)
			if err != nil {
				return res, fmt.Errorf("cannot remove the source after a complete transfer: %w", err)
			}
			fr.Removal = r
		}
		entry := logging.WithCode(log, logging.CodeStorageStatus).WithFields(logrus.Fields{"bucket": fr.Bucket,
			"key": fr.Key, "etag": f.Object.ETag, "removal": fr.Removal.String()})
		switch fr.Removal {
		case s3source.Removed:
			entry.Info("source removed after transfer to every target")
		case s3source.AlreadyGone:
			entry.Info("source already removed; every target holds it")
		case s3source.Changed:
			entry.Warn("source kept: it was replaced after the copy, and only the version copied may be removed")
		}
	}
	return res, nil
}

// target is what one target room needs of one file: nothing (node is its
// copy) or an upload under name.
type target struct {
	node      dracoon.Node
	done      bool
	name      string
	nameTaken bool
}

// transferFile brings one file into every target.
func (e *Engine) transferFile(ctx context.Context, job Job, f File, log logrus.FieldLogger) (FileResult, error) {
	obj := f.Object
	fr := FileResult{Bucket: obj.Bucket, Key: obj.Key, Size: obj.Size, Uploads: make([]Uploaded, len(job.Targets))}
	if err := crypto.CheckSize(obj.Size); err != nil {
		return fr, errclass.AsPermanent(fmt.Errorf("cannot transfer s3://%s/%s: %w", obj.Bucket, obj.Key, err))
	}
	stamp := messages.StampOf(obj.Bucket, obj.Key, obj.ETag, obj.VersionID)
	for round := 1; ; round++ {
		plans, err := e.plan(ctx, job, f, stamp)
		if err != nil {
			return fr, err
		}
		var pending []int // indexes of targets that need the file
		for i, t := range job.Targets {
			p := plans[i]
			fr.Uploads[i] = Uploaded{RoomID: t.RoomID, Path: t.Path, Name: p.name, NameTaken: p.nameTaken}
			if p.done {
				fr.Uploads[i].NodeID, fr.Uploads[i].Name, fr.Uploads[i].Existed = p.node.ID, p.node.Name, true
				log.WithFields(logrus.Fields{"room_id": t.RoomID, "node_id": p.node.ID, "name": p.node.Name}).
					Info("this version of the file is already complete in the target room, not uploading it again")
				continue
			}
			if p.nameTaken {
				logging.WithCode(log, logging.CodeTransferStatus).WithFields(logrus.Fields{"room_id": t.RoomID,
					"name": f.Name, "alternate_name": p.name, "key": obj.Key}).
					Warn("the file name is held by a file of other provenance; uploading under this version's own name")
			}
			pending = append(pending, i)
		}
		if len(pending) == 0 {
			return fr, nil
		}
		if _, err := e.dc.PrivateKey(ctx); err != nil { // fail before opening any channel
			return fr, err
		}
		nodes, err := e.upload(ctx, job, f, pending, plans, stamp, log)
		switch {
		case err == nil:
			for j, i := range pending {
				fr.Uploads[i].NodeID = nodes[j].ID
			}
			return fr, nil
		case errors.Is(err, dracoon.ErrNameConflict) && round < maxNameRounds:
			log.WithError(err).WithField("key", obj.Key).Warn("a file name was taken while uploading; looking the rooms up again")
		case errors.Is(err, s3source.ErrNoSuchKey) || errors.Is(err, s3source.ErrObjectChanged):
			return e.recheck(ctx, job, f, stamp, err, log)
		default:
			return fr, err
		}
	}
}

// plan looks the file up in every target at once (one listing of the
// name's family per room) and decides, in target order, what each needs:
// nothing when a file stamped with this version is there; else an upload
// under the file's name, or under the version's alternate name when a file
// of other provenance holds it. Both names held by others is a permanent
// conflict.
func (e *Engine) plan(ctx context.Context, job Job, f File, stamp messages.Stamp) ([]target, error) {
	listed, err := e.list(ctx, job, f)
	if err != nil {
		return nil, err
	}
	plans := make([]target, len(job.Targets))
	alt := messages.AlternateName(f.Name, stamp)
	for i, t := range job.Targets {
		files := listed[i]
		if j := slices.IndexFunc(files, func(n dracoon.Node) bool { return stamp.Matches(n.Notes) && n.Size == f.Object.Size }); j >= 0 {
			plans[i] = target{node: files[j], done: true, name: files[j].Name}
			continue
		}
		switch {
		case !nameHeld(files, f.Name):
			plans[i] = target{name: f.Name}
		case !nameHeld(files, alt):
			plans[i] = target{name: alt, nameTaken: true}
		default:
			return nil, fmt.Errorf("cannot transfer s3://%s/%s to room %q: files %q and %q there hold other recordings: %w",
				f.Object.Bucket, f.Object.Key, t.Path, f.Name, alt, dracoon.ErrNameConflict)
		}
	}
	return plans, nil
}

// list returns, for every target at once, the files of its room in the
// family of f's name, in target order; the first failure in target order
// wins.
func (e *Engine) list(ctx context.Context, job Job, f File) ([][]dracoon.Node, error) {
	family := messages.NameFamily(f.Name)
	listed := make([][]dracoon.Node, len(job.Targets))
	errs := make([]error, len(job.Targets))
	var g errgroup.Group
	g.SetLimit(setupConcurrency)
	for i, t := range job.Targets {
		g.Go(guard(func() error {
			listed[i], errs[i] = e.dc.FindFiles(ctx, t.RoomID, family)
			return nil
		}))
	}
	_ = g.Wait() // the errors are in errs
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return listed, nil
}

// copyOf returns the first of files that is, by its stamp, a copy of the
// version stamp names or, anyVersion, of any version of its source. A file
// without a stamp, or with another's, is none.
func copyOf(files []dracoon.Node, stamp messages.Stamp, anyVersion bool) (dracoon.Node, bool) {
	i := slices.IndexFunc(files, func(n dracoon.Node) bool {
		return stamp.Matches(n.Notes) || (anyVersion && stamp.SameSource(n.Notes))
	})
	if i < 0 {
		return dracoon.Node{}, false
	}
	return files[i], true
}

// FileFinder lists the files of a room whose names contain a text
// (implemented by *dracoon.Client).
type FileFinder interface {
	FindFiles(ctx context.Context, roomID int64, text string) ([]dracoon.Node, error)
}

// FindCopy returns a file of the room that is, by its stamp, a copy of the
// version stamp names or, anyVersion, of any version of its source, among
// the files named like name and its alternate names: what a job whose
// source is gone looks for.
func FindCopy(ctx context.Context, dc FileFinder, roomID int64, name string, stamp messages.Stamp, anyVersion bool) (dracoon.Node, bool, error) {
	files, err := dc.FindFiles(ctx, roomID, messages.NameFamily(name))
	if err != nil {
		return dracoon.Node{}, false, err
	}
	n, ok := copyOf(files, stamp, anyVersion)
	return n, ok, nil
}

// nameHeld reports whether a file of files has name, compared without
// regard to case as DRACOON compares names.
func nameHeld(files []dracoon.Node, name string) bool {
	return slices.ContainsFunc(files, func(n dracoon.Node) bool { return strings.EqualFold(n.Name, name) })
}

// recheck decides a file whose source was gone or replaced (cause) while it
// was read: the job is done for it when every target holds a file stamped
// with the version copied or, the source gone, with its bucket and key;
// otherwise it fails for good, naming the rooms that lack it.
func (e *Engine) recheck(ctx context.Context, job Job, f File, stamp messages.Stamp, cause error, log logrus.FieldLogger) (FileResult, error) {
	obj := f.Object
	fr := FileResult{Bucket: obj.Bucket, Key: obj.Key, Size: obj.Size, Uploads: make([]Uploaded, len(job.Targets))}
	_, err := e.src.Head(ctx, obj.Bucket, obj.Key)
	gone := errors.Is(err, s3source.ErrNoSuchKey)
	// A failure to learn the truth has its own class, not the cause's.
	if err != nil && !gone {
		return fr, errclass.Mark(fmt.Errorf("%w (and cannot look the source up again: %w)", cause, err), errclass.Of(err))
	}
	listed, err := e.list(ctx, job, f)
	if err != nil {
		return fr, errclass.Mark(fmt.Errorf("%w (and cannot look at the rooms again: %w)", cause, err), errclass.Of(err))
	}
	var lacking []string
	for i, t := range job.Targets {
		n, ok := copyOf(listed[i], stamp, gone)
		if !ok {
			lacking = append(lacking, strconv.Quote(t.Path))
			continue
		}
		fr.Uploads[i] = Uploaded{RoomID: t.RoomID, Path: t.Path, NodeID: n.ID, Name: n.Name, Existed: true}
	}
	if len(lacking) > 0 {
		return fr, errclass.AsPermanent(fmt.Errorf("%w; rooms %s lack a copy of it", cause, strings.Join(lacking, ", ")))
	}
	what := "replaced"
	fr.Removal = s3source.Changed
	if gone {
		what, fr.Removal = "gone", s3source.AlreadyGone
	}
	logging.WithCode(log, logging.CodeStorageStatus).WithFields(logrus.Fields{"key": obj.Key, "cause": cause.Error()}).
		Infof("source %s while it was read, and every target holds a copy of it: done", what)
	if !job.RemoveSource {
		fr.Removal = 0 // the job does not remove sources
	}
	return fr, nil
}

// upload streams f into the targets pending and completes them, returning
// their nodes in the same order.
func (e *Engine) upload(ctx context.Context, job Job, f File, pending []int, plans []target, stamp messages.Stamp, log logrus.FieldLogger) (nodes []dracoon.Node, err error) {
	start := time.Now()
	key, err := crypto.GenerateFileKey(nil)
	if err != nil {
		return nil, err
	}
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		return nil, err
	}
	ups := make([]Upload, len(pending)) // in the order of pending; nil: not opened
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dracoon.CancelTimeout)
		defer cancel()
		for _, u := range ups {
			if u == nil {
				continue
			}
			if cerr := u.Cancel(cctx); cerr != nil {
				log.WithError(cerr).WithField("upload_id", u.ID()).Warn("cannot cancel upload channel")
			}
		}
	}()
	// Open every channel at once. A creation abandoned mid-flight would
	// leave a channel nobody can cancel (its id never arrives): each runs
	// detached from ctx, bounded by dracoon.CancelTimeout, to its end, and
	// all of them end before any is cancelled. After a failure (or ctx's
	// end) no further creation starts.
	opening, octx := errgroup.WithContext(ctx)
	opening.SetLimit(setupConcurrency)
	for j, i := range pending {
		t := job.Targets[i]
		spec := dracoon.UploadSpec{ParentID: t.RoomID, Name: plans[i].name, Size: f.Object.Size, Notes: stamp.Notes(),
			Resolution: dracoon.ResolveFail}
		if t.ExpireAt != nil {
			spec.ExpireAt = *t.ExpireAt
		}
		opening.Go(guard(func() error {
			if err := octx.Err(); err != nil {
				return err
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dracoon.CancelTimeout)
			defer cancel()
			u, err := e.dc.StartUpload(sctx, spec)
			if err != nil {
				return fmt.Errorf("cannot start upload to room %q: %w", t.Path, err)
			}
			ups[j] = u
			return nil
		}))
	}
	if err := opening.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for j, u := range ups {
		if u.Parts() != ups[0].Parts() || u.PartSize() != ups[0].PartSize() {
			return nil, fmt.Errorf("cannot upload to rooms %q and %q at once: their part layouts differ",
				job.Targets[pending[0]].Path, job.Targets[pending[j]].Path)
		}
	}
	m := e.opts.Metrics
	m.transferStarted()
	defer func() { m.transferDone(time.Since(start), err) }()
	prog := newProgress(f.Object.Key, f.Object.Size*int64(len(ups)), e.opts.Progress)
	stopProgress := e.reportProgress(ctx, prog, log.WithFields(logrus.Fields{"key": f.Object.Key, "targets": len(ups)}))
	segs, err := e.stream(ctx, f.Object, ups, sealer, prog)
	stopProgress()
	if err != nil {
		return nil, err
	}
	tag, err := sealer.Tag(segs)
	if err != nil {
		return nil, err
	}
	key.Tag = tag
	fk, err := e.dc.WrapFileKey(ctx, key)
	if err != nil {
		return nil, err
	}
	nodes = make([]dracoon.Node, len(ups))
	g, gctx := errgroup.WithContext(ctx)
	for j, u := range ups {
		g.Go(guard(func() error {
			n, err := u.Complete(gctx, fk)
			if err != nil {
				return fmt.Errorf("cannot complete upload to room %q: %w", job.Targets[pending[j]].Path, err)
			}
			nodes[j] = n
			return nil
		}))
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	logging.WithCode(log, logging.CodeTransferStatus).WithFields(logrus.Fields{
		"key": f.Object.Key, "bytes": f.Object.Size, "targets": len(ups), "seconds": elapsed.Seconds(),
		"mb_per_s": mbps(f.Object.Size, elapsed)}).Info("transfer complete")
	return nodes, nil
}

// chunk is one part of the file on its way: read, sealed, then written to
// every target; refs counts the targets that still need it.
type chunk struct {
	n      int
	offset int64
	buf    []byte
	md5    [md5.Size]byte // of the sealed buf, when some target is a proxy upload
	refs   atomic.Int32
}

// stream runs the pipeline for one object: an allocator takes pool
// buffers in part order (so the lowest unwritten part always has one, and
// the pipeline cannot deadlock), ReadAhead readers fill and seal them, a
// dispatcher hands them in order to each target, whose writers upload them
// (one at a time for proxy uploads, PartsInFlight at a time for S3 direct
// parts). A buffer returns to the pool when every target has written it. It
// returns the segments of the sealed file.
//
// Proxy chunks are checked against the MD5 the server reports: the readers
// compute it once per chunk, not every target once more.
func (e *Engine) stream(ctx context.Context, obj s3source.Object, ups []Upload, sealer *crypto.Sealer, prog *progress) ([]crypto.Segment, error) {
	first := ups[0]
	needSum := slices.ContainsFunc(ups, func(u Upload) bool { return !u.Direct() })
	parts := first.Parts()
	// The first part is the longest: a file smaller than a part (many
	// recordings are) takes a buffer of its own size, not of a part's.
	_, bufSize := first.PartRange(1)
	pool := newPool(min(e.opts.ReadAhead+e.opts.PartsInFlight, parts), bufSize)
	segs := make([]crypto.Segment, parts)
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *chunk)
	sealed := make(chan *chunk)
	targets := make([]chan *chunk, len(ups))
	for i := range targets {
		targets[i] = make(chan *chunk, e.opts.PartsInFlight)
	}

	g.Go(guard(func() error { // allocator
		defer close(work)
		for n := 1; n <= parts; n++ {
			buf, err := pool.get(gctx)
			if err != nil {
				return err
			}
			off, length := first.PartRange(n)
			select {
			case work <- &chunk{n: n, offset: off, buf: buf[:length]}:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	}))

	var readers sync.WaitGroup
	for range min(e.opts.ReadAhead, parts) {
		readers.Add(1)
		g.Go(guard(func() error { // reader: read and seal
			defer readers.Done()
			for c := range work {
				if len(c.buf) > 0 {
					if _, err := e.src.ReadChunk(gctx, obj, c.offset, c.buf); err != nil {
						return err
					}
					e.opts.Metrics.read(len(c.buf))
				}
				seg, err := sealer.Seal(c.offset, c.buf, c.buf)
				if err != nil {
					return err
				}
				segs[c.n-1] = seg
				if needSum {
					c.md5 = md5.Sum(c.buf)
				}
				select {
				case sealed <- c:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		}))
	}
	g.Go(guard(func() error {
		readers.Wait()
		close(sealed)
		return nil
	}))

	g.Go(guard(func() error { // dispatcher: in part order to every target
		defer func() {
			for _, ch := range targets {
				close(ch)
			}
		}()
		waiting := map[int]*chunk{}
		next := 1
		for c := range sealed {
			waiting[c.n] = c
			for {
				c, ok := waiting[next]
				if !ok {
					break
				}
				delete(waiting, next)
				c.refs.Store(int32(len(ups)))
				for _, ch := range targets {
					select {
					case ch <- c:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				next++
			}
		}
		return nil
	}))

	for i, u := range ups {
		writers := 1
		if u.Direct() {
			writers = e.opts.PartsInFlight
		}
		for range min(writers, parts) {
			g.Go(guard(func() error { // writer of one target
				for c := range targets[i] {
					var err error
					if u.Direct() {
						err = u.WritePart(gctx, c.n, c.offset, c.buf)
					} else {
						err = u.WritePartSum(gctx, c.n, c.offset, c.buf, c.md5)
					}
					if err != nil {
						return err
					}
					prog.add(int64(len(c.buf)))
					e.opts.Metrics.uploaded(len(c.buf))
					if c.refs.Add(-1) == 0 {
						pool.put(c.buf)
					}
				}
				return nil
			}))
		}
	}
	err := g.Wait()
	storeMax(&e.peakBuffers, pool.peak.Load())
	if err != nil {
		return nil, err
	}
	return segs, nil
}

// guard runs fn, turning a panic into an error of the transfer, so that a
// bug in one goroutine fails its job (permanently, with the panic in the
// error and its stack in the log) instead of the whole process.
func guard(fn func() error) func() error {
	return func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = errclass.AsPermanent(&panicError{value: r, stack: debug.Stack()})
			}
		}()
		return fn()
	}
}

// panicError is a panic recovered in a transfer goroutine.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("transfer: internal error: panic: %v", e.value)
}

// mbps is n bytes over d in MB/s (10^6 bytes).
func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}
