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
// # Idempotence
//
// SQS delivers a job at least once, and a delivery can die at any step. File
// names are deterministic (messages.FileNames), and before it uploads into a
// room the engine looks the name up: a file of that name and size is the
// target's result from an earlier delivery, a file of that name and another
// size is a permanent error, and uploads complete with the resolution
// strategy "fail", so a conflict is looked up, never renamed.
package transfer

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"slices"
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

// cancelTimeout bounds the cancellation of the upload channels of a failed
// transfer, which runs after the job's context may have ended, and the
// creation of a channel.
const cancelTimeout = 30 * time.Second

// setupConcurrency bounds the lookups and the channel creations of one file
// that run at once, one per target.
const setupConcurrency = 8

// Source reads the objects of a job (implemented by *s3source.Source).
type Source interface {
	// ReadChunk fills buf with the bytes of obj at offset, from the version
	// of obj (its ETag) that was seen when the job started.
	ReadChunk(ctx context.Context, obj s3source.Object, offset int64, buf []byte) (int, error)
	// Delete removes an object; an absent object counts as removed.
	Delete(ctx context.Context, bucket, key string) error
}

// Dracoon is the DRACOON account the files go to (implemented by
// *dracoon.Client).
type Dracoon interface {
	FindFile(ctx context.Context, roomID int64, name string) (dracoon.Node, bool, error)
	StartUpload(ctx context.Context, spec dracoon.UploadSpec) (*dracoon.Upload, error)
	WrapFileKey(ctx context.Context, k crypto.PlainFileKey) (crypto.FileKey, error)
	PrivateKey(ctx context.Context) (*crypto.PrivateKey, error)
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
	RemoveSource bool   // delete the objects once every file is complete in every target
	Notes        string // notes of the uploaded files, at most dracoon.MaxNotesLength characters
}

// Result reports a transfer.
type Result struct {
	Files []FileResult
}

// FileResult is one source object and the files it became.
type FileResult struct {
	Bucket        string
	Key           string
	Size          int64
	Uploads       []Uploaded // one per target, in the order of Job.Targets
	SourceRemoved bool
}

// Uploaded is one file in one target room.
type Uploaded struct {
	RoomID  int64
	Path    string
	NodeID  int64
	Name    string
	Existed bool // found complete from an earlier delivery, not uploaded now
}

// Transfer uploads every file of job to every target, one file after the
// other, and then removes the sources when job.RemoveSource is set. Files
// already complete in a target are not uploaded again. On failure nothing is
// removed from S3 and no upload channel is left open.
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
			logging.WithCode(log, code).WithError(err).WithFields(logrus.Fields{"key": f.Object.Key,
				"class": errclass.Of(err).String()}).Error("transfer failed")
			return res, err
		}
		res.Files = append(res.Files, fr)
	}
	if job.RemoveSource {
		for i := range res.Files {
			fr := &res.Files[i]
			if err := e.src.Delete(ctx, fr.Bucket, fr.Key); err != nil {
				return res, fmt.Errorf("cannot remove the source after a complete transfer: %w", err)
			}
			fr.SourceRemoved = true
			logging.WithCode(log, logging.CodeStorageStatus).WithFields(logrus.Fields{"bucket": fr.Bucket, "key": fr.Key}).
				Info("source removed after transfer to every target")
		}
	}
	return res, nil
}

// transferFile brings one file into every target.
func (e *Engine) transferFile(ctx context.Context, job Job, f File, log logrus.FieldLogger) (FileResult, error) {
	obj := f.Object
	fr := FileResult{Bucket: obj.Bucket, Key: obj.Key, Size: obj.Size, Uploads: make([]Uploaded, len(job.Targets))}
	if err := crypto.CheckSize(obj.Size); err != nil {
		return fr, errclass.AsPermanent(fmt.Errorf("cannot transfer s3://%s/%s: %w", obj.Bucket, obj.Key, err))
	}
	// Look the name up in every target at once, then judge the answers in
	// target order, as if one after the other: the first failure wins.
	type lookup struct {
		n     dracoon.Node
		found bool
		err   error
	}
	looked := make([]lookup, len(job.Targets))
	var g errgroup.Group
	g.SetLimit(setupConcurrency)
	for i, t := range job.Targets {
		g.Go(func() error {
			l := &looked[i]
			l.n, l.found, l.err = e.dc.FindFile(ctx, t.RoomID, f.Name)
			return nil
		})
	}
	_ = g.Wait() // the errors are in looked

	var pending []int // indexes of targets that need the file
	for i, t := range job.Targets {
		fr.Uploads[i] = Uploaded{RoomID: t.RoomID, Path: t.Path, Name: f.Name}
		n, found, err := looked[i].n, looked[i].found, looked[i].err
		switch {
		case err != nil:
			return fr, err
		case found && n.Size == obj.Size:
			fr.Uploads[i].NodeID, fr.Uploads[i].Existed = n.ID, true
			log.WithFields(logrus.Fields{"room_id": t.RoomID, "node_id": n.ID, "name": f.Name}).
				Info("file already complete in target room, not uploading it again")
		case found:
			return fr, fmt.Errorf("cannot transfer s3://%s/%s to room %q: file %q (%d) there has %d bytes, not %d: %w",
				obj.Bucket, obj.Key, t.Path, f.Name, n.ID, n.Size, obj.Size, dracoon.ErrNameConflict)
		default:
			pending = append(pending, i)
		}
	}
	if len(pending) == 0 {
		return fr, nil
	}
	if _, err := e.dc.PrivateKey(ctx); err != nil { // fail before opening any channel
		return fr, err
	}
	nodes, err := e.upload(ctx, job, f, pending, log)
	if err != nil {
		return fr, err
	}
	for j, i := range pending {
		fr.Uploads[i].NodeID = nodes[j].ID
	}
	return fr, nil
}

// upload streams f into the targets pending and completes them, returning
// their nodes in the same order.
func (e *Engine) upload(ctx context.Context, job Job, f File, pending []int, log logrus.FieldLogger) (nodes []dracoon.Node, err error) {
	start := time.Now()
	key, err := crypto.GenerateFileKey(nil)
	if err != nil {
		return nil, err
	}
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		return nil, err
	}
	ups := make([]*dracoon.Upload, len(pending)) // in the order of pending; nil: not opened
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
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
	// detached from ctx, bounded by cancelTimeout, to its end, and all of
	// them end before any is cancelled. After a failure (or ctx's end) no
	// further creation starts.
	opening, octx := errgroup.WithContext(ctx)
	opening.SetLimit(setupConcurrency)
	for j, i := range pending {
		t := job.Targets[i]
		spec := dracoon.UploadSpec{ParentID: t.RoomID, Name: f.Name, Size: f.Object.Size, Notes: job.Notes,
			Resolution: dracoon.ResolveFail}
		if t.ExpireAt != nil {
			spec.ExpireAt = *t.ExpireAt
		}
		opening.Go(func() error {
			if err := octx.Err(); err != nil {
				return err
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
			defer cancel()
			u, err := e.dc.StartUpload(sctx, spec)
			if err != nil {
				return fmt.Errorf("cannot start upload to room %q: %w", t.Path, err)
			}
			ups[j] = u
			return nil
		})
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
		g.Go(func() error {
			n, err := u.Complete(gctx, fk)
			if err != nil {
				return fmt.Errorf("cannot complete upload to room %q: %w", job.Targets[pending[j]].Path, err)
			}
			nodes[j] = n
			return nil
		})
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
func (e *Engine) stream(ctx context.Context, obj s3source.Object, ups []*dracoon.Upload, sealer *crypto.Sealer, prog *progress) ([]crypto.Segment, error) {
	first := ups[0]
	needSum := slices.ContainsFunc(ups, func(u *dracoon.Upload) bool { return !u.Direct() })
	parts, partSize := first.Parts(), first.PartSize()
	pool := newPool(min(e.opts.ReadAhead+e.opts.PartsInFlight, parts), partSize)
	segs := make([]crypto.Segment, parts)
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *chunk)
	sealed := make(chan *chunk)
	targets := make([]chan *chunk, len(ups))
	for i := range targets {
		targets[i] = make(chan *chunk, e.opts.PartsInFlight)
	}

	g.Go(func() error { // allocator
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
	})

	var readers sync.WaitGroup
	for range min(e.opts.ReadAhead, parts) {
		readers.Add(1)
		g.Go(func() error { // reader: read and seal
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
		})
	}
	g.Go(func() error {
		readers.Wait()
		close(sealed)
		return nil
	})

	g.Go(func() error { // dispatcher: in part order to every target
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
	})

	for i, u := range ups {
		writers := 1
		if u.Direct() {
			writers = e.opts.PartsInFlight
		}
		for range min(writers, parts) {
			g.Go(func() error { // writer of one target
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
			})
		}
	}
	err := g.Wait()
	storeMax(&e.peakBuffers, pool.peak.Load())
	if err != nil {
		return nil, err
	}
	return segs, nil
}

// mbps is n bytes over d in MB/s (10^6 bytes).
func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}
