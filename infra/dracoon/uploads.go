package dracoon

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// CancelTimeout bounds the work on an upload channel that runs detached
// from a context that may have ended: the cancellation of a failed upload,
// and a creation whose channel must be known to be cancelled.
const CancelTimeout = 30 * time.Second

// ResolutionStrategy says what completing an upload does when a file of the
// same name exists.
type ResolutionStrategy string

// Resolution strategies of the API.
const (
	ResolveAutorename ResolutionStrategy = "autorename" // keep both, renaming the new file
	ResolveOverwrite  ResolutionStrategy = "overwrite"  // replace the existing file
	ResolveFail       ResolutionStrategy = "fail"       // fail with 409
)

// UploadSpec describes one file to upload.
type UploadSpec struct {
	ParentID   int64              // room to upload into
	Name       string             // file name
	Size       int64              // plaintext size in bytes (equal to the ciphertext size)
	ExpireAt   time.Time          // zero: the file does not expire
	Notes      string             // at most MaxNotesLength characters
	Resolution ResolutionStrategy // empty means ResolveFail: a name conflict is looked up, never renamed
}

func (s *UploadSpec) check() error {
	var errs []error
	if s.ParentID <= 0 {
		errs = append(errs, errors.New("parent id must be positive"))
	}
	if err := messages.CheckNodeName(s.Name); err != nil {
		errs = append(errs, fmt.Errorf("file name: %w: %w", ErrInvalidName, err))
	}
	if s.Size < 0 {
		errs = append(errs, errors.New("size must not be negative"))
	}
	if err := crypto.CheckSize(s.Size); err != nil {
		errs = append(errs, err)
	}
	if utf8.RuneCountInString(s.Notes) > MaxNotesLength {
		errs = append(errs, fmt.Errorf("notes longer than %d characters", MaxNotesLength))
	}
	if !s.ExpireAt.IsZero() && !s.ExpireAt.After(time.Now()) {
		errs = append(errs, errors.New("expiration is in the past"))
	}
	switch s.Resolution {
	case "":
		s.Resolution = ResolveFail
	case ResolveAutorename, ResolveOverwrite, ResolveFail:
	default:
		errs = append(errs, fmt.Errorf("unknown resolution strategy %q", s.Resolution))
	}
	return errclass.AsPermanent(errors.Join(errs...))
}

// Upload is one open upload channel. Feed it the encrypted content part by
// part with WritePart, then Complete it, or Cancel it. After any failure the
// channel is cancelled on the server and the Upload is closed.
type Upload struct {
	c        *Client
	spec     UploadSpec
	id       string // uploadId
	url      string // uploadUrl (proxy; holds the secret upload token)
	direct   bool   // S3 direct upload
	partSize int64
	parts    int
	log      logrus.FieldLogger

	proxyMu sync.Mutex // serializes proxy chunks

	mu     sync.Mutex
	closed error // why the upload is closed; nil while open
	done   bool  // completed successfully
	next   int   // proxy: next part number expected
	etags  map[int]string
	urls   map[int]presigned

	urlSem chan struct{} // serializes presigned URL requests
	// multipart framing of proxy chunks
	mpHead, mpTail []byte
	mpType         string
}

// StartUpload opens an upload channel for spec: S3 direct when the server's
// system info reports S3 storage, else proxy chunks. A parent room that is
// gone gives an error wrapping ErrRoomNotFound.
func (c *Client) StartUpload(ctx context.Context, spec UploadSpec) (*Upload, error) {
	if err := spec.check(); err != nil {
		return nil, fmt.Errorf("cannot start upload: %w", err)
	}
	si, err := c.SystemInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot start upload: %w", err)
	}
	req := createUploadRequest{ParentID: spec.ParentID, Name: spec.Name, Size: spec.Size, Notes: spec.Notes,
		DirectS3Upload: si.UseS3Storage}
	if !spec.ExpireAt.IsZero() {
		t := spec.ExpireAt.UTC()
		req.Expiration = &objectExpiration{EnableExpiration: true, ExpireAt: &t}
	}
	var cu createUploadResponse
	// Repeating a creation whose answer was lost leaves at most an unused
	// channel, which the server expires: safe to retry.
	if err := c.call(ctx, &request{method: http.MethodPost, path: "/v4/nodes/files/uploads", body: req,
		ok: []int{http.StatusCreated}, idempotent: true}, &cu); err != nil {
		return nil, fmt.Errorf("cannot create upload channel for %q: %w", spec.Name, c.roomGone(spec.ParentID, err))
	}
	if !si.UseS3Storage {
		if err := c.checkURL(ctx, cu.UploadURL, "upload URL", false); err != nil {
			return nil, fmt.Errorf("cannot upload %q: %w", spec.Name, err)
		}
	}
	u := &Upload{c: c, spec: spec, id: cu.UploadID, url: cu.UploadURL, direct: si.UseS3Storage, next: 1,
		etags: map[int]string{}, urls: map[int]presigned{}, urlSem: make(chan struct{}, 1)}
	if u.direct {
		u.partSize = s3PartSize(spec.Size, c.cfg.PartSize)
	} else {
		u.partSize = c.cfg.ChunkSize
		u.initMultipart()
	}
	u.parts = partCount(spec.Size, u.partSize)
	u.log = c.log.WithFields(logrus.Fields{"upload_id": u.id, "parent_id": spec.ParentID, "direct_s3": u.direct})
	u.log.WithFields(logrus.Fields{"size": spec.Size, "parts": u.parts}).Debug("dracoon upload started")
	return u, nil
}

// partCount is the number of parts of size bytes; an empty file has one
// empty part.
func partCount(size, partSize int64) int {
	if size == 0 {
		return 1
	}
	return int((size + partSize - 1) / partSize)
}

// ID is the upload id.
func (u *Upload) ID() string { return u.id }

// Direct reports whether parts go directly to S3 (any order, concurrently)
// rather than through the proxy (in order).
func (u *Upload) Direct() bool { return u.direct }

// PartSize is the length of every part but the last, a multiple of
// crypto.SegmentAlign.
func (u *Upload) PartSize() int64 { return u.partSize }

// Parts is the number of parts, numbered from 1.
func (u *Upload) Parts() int { return u.parts }

// PartRange returns the byte offset and length of part n (1-based).
func (u *Upload) PartRange(n int) (offset, length int64) {
	offset = int64(n-1) * u.partSize
	return offset, min(u.partSize, u.spec.Size-offset)
}

// WritePart uploads part n (1-based), the encrypted bytes at offset, which
// must be exactly PartRange(n). Proxy uploads need the parts in order; S3
// uploads take them in any order and concurrently. A failed transfer is
// repeated from data. A proxy chunk's MD5, computed while it is sent, is
// checked against the server's (else ErrChecksum). On failure the upload is
// cancelled.
func (u *Upload) WritePart(ctx context.Context, n int, offset int64, data []byte) error {
	return u.writePart(ctx, n, offset, data, nil)
}

// WritePartSum is WritePart for a caller that knows sum, the MD5 of data
// (computed once for several uploads of the same bytes): a proxy chunk is
// checked against it without being hashed again, and a wrong sum fails as
// a corrupted chunk does, with ErrChecksum. S3 parts do not use it.
func (u *Upload) WritePartSum(ctx context.Context, n int, offset int64, data []byte, sum [md5.Size]byte) error {
	return u.writePart(ctx, n, offset, data, &sum)
}

// writePart is WritePart, with the MD5 of data when the caller knows it.
func (u *Upload) writePart(ctx context.Context, n int, offset int64, data []byte, sum *[md5.Size]byte) error {
	if err := u.open(); err != nil {
		return err
	}
	if n < 1 || n > u.parts {
		return u.fail(ctx, fmt.Errorf("cannot write part %d of %d: %w", n, u.parts, ErrBadPart))
	}
	if wantOff, wantLen := u.PartRange(n); offset != wantOff || int64(len(data)) != wantLen {
		return u.fail(ctx, fmt.Errorf("cannot write part %d: offset %d length %d, want %d and %d: %w",
			n, offset, len(data), wantOff, wantLen, ErrBadPart))
	}
	var err error
	if u.direct {
		err = u.putPart(ctx, n, data)
	} else {
		err = u.postChunk(ctx, n, offset, data, sum)
	}
	if err != nil {
		return u.fail(ctx, err)
	}
	return nil
}

// open returns why the upload is closed, or nil.
func (u *Upload) open() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed != nil {
		return fmt.Errorf("%w: %w", ErrUploadClosed, u.closed)
	}
	return nil
}

// maxCompletions bounds how often a completion whose answer was lost is
// sent again after the truth was looked up.
const maxCompletions = 3

// Complete finishes the upload with fk, the file key (with its tag) wrapped
// for the account's own public key (see Client.WrapFileKey), and returns the
// new file. S3 uploads are polled until the server has assembled them.
//
// A completion whose answer is lost (a reset, a timeout, a 5xx) may have
// taken effect, so Complete learns the truth before it repeats anything: it
// polls the status of an S3 upload, and looks a proxy upload's file up by
// name in the room. A file of the name and the declared size is the result
// (it may be this completion's, or an earlier delivery's); a file of the name
// and another size gives an error wrapping ErrNameConflict (permanent). When
// the truth cannot be learned the error wraps ErrOutcomeUnknown and the
// channel is left as it is. On other failures the upload is cancelled. The
// returned node's size is checked against the declared size.
func (u *Upload) Complete(ctx context.Context, fk crypto.FileKey) (Node, error) {
	if err := u.open(); err != nil {
		return Node{}, err
	}
	u.mu.Lock()
	missing := 0
	if u.direct {
		missing = u.parts - len(u.etags)
	} else {
		missing = u.parts - (u.next - 1)
	}
	parts := make([]s3Part, 0, len(u.etags))
	for i := 1; i <= u.parts; i++ {
		if e, ok := u.etags[i]; ok {
			parts = append(parts, s3Part{PartNumber: i, PartEtag: e})
		}
	}
	u.mu.Unlock()
	if missing > 0 {
		return Node{}, u.fail(ctx, fmt.Errorf("cannot complete upload: %d of %d parts missing: %w", missing, u.parts, ErrBadPart))
	}
	var (
		n   Node
		err error
	)
	if u.direct {
		n, err = u.completeS3(ctx, parts, fk)
	} else {
		n, err = u.completeProxy(ctx, fk)
	}
	if err == nil && n.Size != u.spec.Size {
		err = fmt.Errorf("cannot complete upload: file %d has %d bytes, %d were uploaded: %w", n.ID, n.Size, u.spec.Size, ErrSizeMismatch)
	}
	switch {
	case errors.Is(err, ErrOutcomeUnknown):
		u.mu.Lock()
		u.closed = err
		u.mu.Unlock()
		u.log.WithError(err).Warn("dracoon upload completion outcome unknown")
		return Node{}, err
	case err != nil:
		return Node{}, u.fail(ctx, err)
	}
	u.mu.Lock()
	u.done = true
	u.closed = errors.New("completed")
	u.mu.Unlock()
	u.log.WithField("node_id", n.ID).Info("dracoon upload completed")
	return n, nil
}

// errNotFound reports a lookup that found no file of the name.
var errNotFound = errors.New("no file of that name")

// adopt looks the upload's file up in its room after the completion failed
// with cause: a file of the name and size is the result; one of another size
// gives ErrNameConflict; none gives errNotFound. When the lookup fails, the
// outcome is unknown if the completion may have taken effect (mayExist).
func (u *Upload) adopt(ctx context.Context, cause error, mayExist bool) (Node, error) {
	n, found, err := u.c.FindFile(ctx, u.spec.ParentID, u.spec.Name)
	switch {
	case err != nil && mayExist:
		return Node{}, fmt.Errorf("cannot complete upload (%w), and cannot look the file up: %w: %w", cause, ErrOutcomeUnknown, err)
	case err != nil:
		return Node{}, fmt.Errorf("cannot complete upload (%w): %w", cause, err)
	case !found:
		return Node{}, errNotFound
	case n.Size != u.spec.Size:
		return Node{}, fmt.Errorf("cannot complete upload of %q into room %d: file %d has %d bytes, not %d: %w",
			u.spec.Name, u.spec.ParentID, n.ID, n.Size, u.spec.Size, ErrNameConflict)
	case n.Notes != u.spec.Notes:
		// Another file of the name and size: the notes, which carry the
		// provenance of the service's files, tell it from this upload's.
		return Node{}, fmt.Errorf("cannot complete upload of %q into room %d: file %d there has other notes: %w",
			u.spec.Name, u.spec.ParentID, n.ID, ErrNameConflict)
	}
	u.log.WithFields(logrus.Fields{"node_id": n.ID, "cause": cause.Error()}).Info("dracoon completion resolved by lookup")
	// This channel has not produced a file if the found one is older:
	// delete it (a consumed channel answers 404, which counts as deleted).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CancelTimeout)
	defer cancel()
	if derr := u.deleteChannel(cctx); derr != nil {
		u.log.WithError(derr).Debug("dracoon cannot delete the channel after lookup")
	}
	return n, nil
}

// unknownOutcome marks err (a context error while a completion was in
// flight) as ErrOutcomeUnknown.
func unknownOutcome(err error) error {
	return fmt.Errorf("upload completion interrupted: %w: %w", ErrOutcomeUnknown, err)
}

// Cancel deletes the upload channel. It does nothing after a successful
// Complete and may be called more than once.
func (u *Upload) Cancel(ctx context.Context) error {
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return nil
	}
	if u.closed == nil {
		u.closed = errors.New("cancelled")
	}
	u.mu.Unlock()
	return u.deleteChannel(ctx)
}

// deleteChannel deletes the upload channel on the server; an unknown
// channel counts as deleted.
func (u *Upload) deleteChannel(ctx context.Context) error {
	err := u.c.call(ctx, &request{method: http.MethodDelete, path: "/v4/nodes/files/uploads/" + u.id,
		route: "DELETE /v4/nodes/files/uploads/{upload_id}", ok: []int{http.StatusNoContent}, idempotent: true}, nil)
	if err != nil && !IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("cannot cancel upload: %w", err)
	}
	return nil
}

// fail closes the upload because of err, cancels it on the server (also
// when ctx is already done) and returns err.
func (u *Upload) fail(ctx context.Context, err error) error {
	u.mu.Lock()
	first := u.closed == nil && !u.done
	if first {
		u.closed = err
	}
	u.mu.Unlock()
	if !first {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CancelTimeout)
	defer cancel()
	if cerr := u.deleteChannel(cctx); cerr != nil {
		u.log.WithError(cerr).Warn("dracoon cannot cancel failed upload")
	}
	u.log.WithError(err).Warn("dracoon upload failed and was cancelled")
	return err
}

// WrapFileKey wraps k, which must carry its tag, for the account's own
// public key, with the file key version of the account's key pair.
func (c *Client) WrapFileKey(ctx context.Context, k crypto.PlainFileKey) (crypto.FileKey, error) {
	priv, err := c.PrivateKey(ctx)
	if err != nil {
		return crypto.FileKey{}, err
	}
	fk, err := priv.Public().WrapFileKey(k)
	if err != nil {
		return crypto.FileKey{}, fmt.Errorf("cannot wrap file key: %w", err)
	}
	return fk, nil
}
