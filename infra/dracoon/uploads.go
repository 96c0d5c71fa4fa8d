package dracoon

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// Upload tuning.
const (
	// presignBatch is how many presigned URLs are requested at once.
	presignBatch = 100
	// presignMaxAge is how long a presigned URL is used after it was issued.
	presignMaxAge = 30 * time.Minute
	// CancelTimeout bounds the work on an upload channel that runs detached
	// from a context that may have ended: the cancellation of a failed
	// upload, and a creation whose channel must be known to be cancelled.
	CancelTimeout = 30 * time.Second
	// pollFirst is the wait before the first status poll of an S3
	// completion; each further wait is pollGrowth times longer, at most
	// pollMax. A server that assembles a file within 400 ms is polled
	// twice at most.
	pollFirst, pollGrowth, pollMax = 100 * time.Millisecond, 3, 2 * time.Second
)

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

// presigned is one presigned part URL.
type presigned struct {
	url    string
	issued time.Time
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

// s3PartSize is the part size for size bytes: at least want and
// MinS3PartSize, large enough for MaxS3Parts, a multiple of
// crypto.SegmentAlign.
func s3PartSize(size, want int64) int64 {
	ps := max(want, MinS3PartSize)
	if n := (size + MaxS3Parts - 1) / MaxS3Parts; n > ps {
		ps = n
	}
	return crypto.AlignUp(ps)
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

// contentRange is the Content-Range of a chunk: inclusive end, total size.
func contentRange(offset, length, total int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", offset, offset+length-1, total)
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

// initMultipart prepares the multipart/form-data framing of proxy chunks
// (a part named "file", as the document describes the body).
func (u *Upload) initMultipart() {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_, _ = mw.CreateFormFile("file", "chunk")
	u.mpHead = bytes.Clone(b.Bytes())
	b.Reset()
	_ = mw.Close()
	u.mpTail = bytes.Clone(b.Bytes())
	u.mpType = mw.FormDataContentType()
}

// postChunk sends one proxy chunk and checks the returned size and MD5
// against known, or, when known is nil, the MD5 computed while it is sent.
func (u *Upload) postChunk(ctx context.Context, n int, offset int64, data []byte, known *[md5.Size]byte) error {
	u.proxyMu.Lock()
	defer u.proxyMu.Unlock()
	u.mu.Lock()
	next := u.next
	u.mu.Unlock()
	if n != next {
		return fmt.Errorf("cannot write chunk %d: proxy chunks go in order, next is %d: %w", n, next, ErrBadPart)
	}
	if len(data) > 0 {
		total := int64(len(u.mpHead)) + int64(len(data)) + int64(len(u.mpTail))
		var (
			cr  chunkUploadResponse
			sum hash.Hash // MD5 of the chunk, computed while it is sent, when not known
		)
		// A chunk whose answer was lost is sent again at the same range;
		// the server overwrites it (idempotent).
		err := u.c.call(ctx, &request{method: http.MethodPost, rawURL: u.url, route: "POST /v4/uploads/{token}",
			payload: func() (io.Reader, int64, string) {
				var body io.Reader = bytes.NewReader(data)
				if known == nil {
					sum = md5.New()
					body = io.TeeReader(body, sum)
				}
				return io.MultiReader(bytes.NewReader(u.mpHead), body, bytes.NewReader(u.mpTail)), total, u.mpType
			},
			header: http.Header{"Content-Range": {contentRange(offset, int64(len(data)), u.spec.Size)}},
			noAuth: true, ok: []int{http.StatusCreated}, idempotent: true}, &cr)
		if err != nil {
			return fmt.Errorf("cannot upload chunk %d: %w", n, err)
		}
		want := known
		if want == nil {
			want = (*[md5.Size]byte)(sum.Sum(nil))
		}
		if cr.Size != int64(len(data)) || !strings.EqualFold(cr.Hash, hex.EncodeToString(want[:])) {
			return fmt.Errorf("cannot upload chunk %d: server has %d bytes with MD5 %s: %w", n, cr.Size, cr.Hash, ErrChecksum)
		}
	}
	u.mu.Lock()
	u.next++
	u.mu.Unlock()
	return nil
}

// presignedRoute labels requests to presigned S3 part URLs in errors and
// logs (the URL itself is a bearer secret).
const presignedRoute = "PUT {presigned S3 URL}"

// maxURLRenewals bounds how often the presigned URL of one part is renewed
// after the S3 endpoint refused it (expired).
const maxURLRenewals = 3

// putPart uploads one S3 part to its presigned URL and records its ETag. A
// URL the S3 endpoint refuses (403: expired) is requested again.
func (u *Upload) putPart(ctx context.Context, n int, data []byte) error {
	for renewals := 0; ; renewals++ {
		pu, err := u.partURL(ctx, n)
		if err != nil {
			return err
		}
		var etag string
		err = u.c.do(ctx, &request{method: http.MethodPut, rawURL: pu, route: presignedRoute,
			payload: func() (io.Reader, int64, string) { return bytes.NewReader(data), int64(len(data)), "" },
			noAuth:  true, s3: true, idempotent: true}, func(resp *http.Response) error {
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			if etag = strings.Trim(resp.Header.Get("ETag"), `"`); etag == "" {
				return &DecodeError{Op: presignedRoute, Err: errors.New("no ETag")}
			}
			return nil
		})
		if IsStatus(err, http.StatusForbidden) && renewals < maxURLRenewals {
			u.log.WithField("part", n).Info("dracoon presigned URL refused, requesting a new one")
			u.mu.Lock()
			delete(u.urls, n)
			u.mu.Unlock()
			continue
		}
		if err != nil {
			return fmt.Errorf("cannot upload part %d: %w", n, err)
		}
		u.mu.Lock()
		u.etags[n] = etag
		delete(u.urls, n)
		u.mu.Unlock()
		return nil
	}
}

// partURL returns a fresh presigned URL for part n, requesting a batch of
// equally sized parts (or the shorter last part alone) when needed.
func (u *Upload) partURL(ctx context.Context, n int) (string, error) {
	lookup := func() (string, bool) {
		u.mu.Lock()
		defer u.mu.Unlock()
		p, ok := u.urls[n]
		return p.url, ok && time.Since(p.issued) < presignMaxAge
	}
	if s, ok := lookup(); ok {
		return s, nil
	}
	select {
	case u.urlSem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-u.urlSem }()
	if s, ok := lookup(); ok {
		return s, nil
	}
	_, length := u.PartRange(n)
	first, last := n, n
	if length == u.partSize {
		// Full parts share one size: batch them, up to the last full part.
		lastFull := u.parts
		if _, l := u.PartRange(u.parts); l != u.partSize {
			lastFull--
		}
		last = min(n+presignBatch-1, lastFull)
	}
	var list presignedURLList
	err := u.c.call(ctx, &request{method: http.MethodPost, path: "/v4/nodes/files/uploads/" + u.id + "/s3_urls",
		route: "POST /v4/nodes/files/uploads/{upload_id}/s3_urls",
		body:  presignedURLsRequest{Size: length, FirstPartNumber: first, LastPartNumber: last},
		ok:    []int{http.StatusCreated}, idempotent: true}, &list)
	if err != nil {
		return "", fmt.Errorf("cannot get presigned URLs for parts %d-%d: %w", first, last, err)
	}
	for _, p := range list.URLs {
		if err := u.c.checkURL(ctx, p.URL, "presigned URL", true); err != nil {
			return "", fmt.Errorf("cannot upload part %d: %w", p.PartNumber, err)
		}
	}
	now := time.Now()
	u.mu.Lock()
	for _, p := range list.URLs {
		if p.PartNumber >= first && p.PartNumber <= last {
			if _, done := u.etags[p.PartNumber]; !done {
				u.urls[p.PartNumber] = presigned{url: p.URL, issued: now}
			}
		}
	}
	u.mu.Unlock()
	if s, ok := lookup(); ok {
		return s, nil
	}
	return "", &DecodeError{Op: "POST /v4/nodes/files/uploads/{upload_id}/s3_urls", Err: fmt.Errorf("no URL for part %d", n)}
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

// completeProxy sends the completion of a proxy upload. A conflict, or an
// answer lost, is resolved by looking the file up.
func (u *Upload) completeProxy(ctx context.Context, fk crypto.FileKey) (Node, error) {
	var last error
	for try := 0; try < maxCompletions; try++ {
		if try > 0 {
			if err := sleep(ctx, u.c.backoff(try-1)); err != nil {
				return Node{}, err
			}
		}
		var n Node
		err := u.c.call(ctx, &request{method: http.MethodPut, rawURL: u.url, route: "PUT /v4/uploads/{token}",
			body: completeUploadRequest{ResolutionStrategy: string(u.spec.Resolution), FileKey: &fk},
			ok:   []int{http.StatusCreated, http.StatusAccepted}, noAuth: true}, &n)
		switch {
		case err == nil:
			return n, nil
		case ctx.Err() != nil:
			return Node{}, unknownOutcome(ctx.Err())
		case IsStatus(err, http.StatusConflict) && u.spec.Resolution == ResolveFail:
			// The name is taken: by this file from an earlier delivery, or not.
			return u.adopt(ctx, err, true)
		case IsStatus(err, http.StatusNotFound) && try == 0:
			// The channel is unknown: expired, or consumed by an earlier run.
			n, aerr := u.adopt(ctx, err, false)
			if errors.Is(aerr, errNotFound) {
				return Node{}, fmt.Errorf("cannot complete upload: %w", err)
			}
			return n, aerr
		case errclass.IsPermanent(err) && !IsStatus(err, http.StatusNotFound):
			return Node{}, fmt.Errorf("cannot complete upload: %w", err)
		}
		// The answer was lost (or a 404 after such a loss: the channel was
		// consumed): the file may exist.
		last = err
		n, aerr := u.adopt(ctx, err, true)
		if !errors.Is(aerr, errNotFound) {
			return n, aerr
		}
		u.log.WithError(err).WithField("try", try+1).Warn("dracoon completion answer lost and no file yet, completing again")
	}
	return Node{}, fmt.Errorf("cannot complete upload after %d tries, no file %q appeared: %w: %w", maxCompletions, u.spec.Name, ErrOutcomeUnknown, last)
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

// completeS3 asks the server to assemble the parts and polls until it has.
// A completion whose answer was lost is sent again only when the status
// shows the server did not receive it.
func (u *Upload) completeS3(ctx context.Context, parts []s3Part, fk crypto.FileKey) (Node, error) {
	body := completeS3Request{Parts: parts, ResolutionStrategy: string(u.spec.Resolution), FileKey: &fk}
	for try := 0; ; try++ {
		err := u.c.call(ctx, &request{method: http.MethodPut, path: "/v4/nodes/files/uploads/" + u.id + "/s3",
			route: "PUT /v4/nodes/files/uploads/{upload_id}/s3", body: body, ok: []int{http.StatusAccepted}}, nil)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return Node{}, unknownOutcome(ctx.Err())
		}
		if IsStatus(err, http.StatusConflict) && u.spec.Resolution == ResolveFail {
			return u.adoptOrConflict(ctx, err)
		}
		if errclass.IsPermanent(err) && !IsStatus(err, http.StatusNotFound) {
			return Node{}, fmt.Errorf("cannot complete S3 upload: %w", err)
		}
		// Lost answer (or 404 after one): did the server receive it?
		st, serr := u.status(ctx)
		switch {
		case IsStatus(serr, http.StatusNotFound):
			return u.adoptOrConflict(ctx, err)
		case serr != nil:
			return Node{}, fmt.Errorf("cannot complete S3 upload (%w), and cannot get its status: %w: %w", err, ErrOutcomeUnknown, serr)
		case st.Status != uploadStatusTransfer:
			return u.pollS3(ctx, st) // received
		case try+1 >= maxCompletions:
			return Node{}, fmt.Errorf("cannot complete S3 upload after %d tries: %w", maxCompletions, err)
		}
		u.log.WithError(err).Warn("dracoon S3 completion not received, sending it again")
		if err := sleep(ctx, u.c.backoff(try)); err != nil {
			return Node{}, err
		}
	}
	return u.pollS3(ctx, uploadStatus{})
}

// adoptOrConflict resolves a completion that met a taken name or a
// vanished channel by looking the file up.
func (u *Upload) adoptOrConflict(ctx context.Context, cause error) (Node, error) {
	n, err := u.adopt(ctx, cause, true)
	if errors.Is(err, errNotFound) {
		return Node{}, fmt.Errorf("cannot complete upload (%w) and no file %q exists: %w", cause, u.spec.Name, ErrOutcomeUnknown)
	}
	return n, err
}

// status returns the status of the S3 upload.
func (u *Upload) status(ctx context.Context) (uploadStatus, error) {
	var st uploadStatus
	err := u.c.call(ctx, &request{method: http.MethodGet, path: "/v4/nodes/files/uploads/" + u.id,
		route: "GET /v4/nodes/files/uploads/{upload_id}", idempotent: true}, &st)
	return st, err
}

// pollS3 polls the status of a received S3 completion until it is done,
// starting from st when it is already known.
func (u *Upload) pollS3(ctx context.Context, st uploadStatus) (Node, error) {
	deadline := time.Now().Add(u.c.cfg.S3PollTimeout)
	for wait := pollFirst; ; wait = min(wait*pollGrowth, pollMax) {
		if st.Status == "" {
			if err := sleep(ctx, wait); err != nil {
				return Node{}, unknownOutcome(err)
			}
			var err error
			if st, err = u.status(ctx); err != nil {
				if IsStatus(err, http.StatusNotFound) {
					return u.adoptOrConflict(ctx, err)
				}
				if ctx.Err() != nil {
					return Node{}, unknownOutcome(ctx.Err())
				}
				return Node{}, fmt.Errorf("cannot get S3 upload status: %w: %w", ErrOutcomeUnknown, err)
			}
		}
		switch st.Status {
		case uploadStatusDone:
			if st.Node == nil {
				return Node{}, &DecodeError{Op: "GET /v4/nodes/files/uploads/{upload_id}", Err: errors.New("done without node")}
			}
			return *st.Node, nil
		case uploadStatusError:
			ae := &APIError{Op: "S3 upload assembly", Status: http.StatusInternalServerError}
			if d := st.ErrorDetails; d != nil {
				ae.Status, ae.Code, ae.Message, ae.DebugInfo = d.Code, d.Code, d.Message, d.DebugInfo
				if d.ErrorCode != nil {
					ae.ErrorCode = *d.ErrorCode
				}
			}
			if ae.Status == http.StatusConflict && u.spec.Resolution == ResolveFail {
				return u.adoptOrConflict(ctx, ae)
			}
			return Node{}, fmt.Errorf("cannot complete S3 upload: %w: %w", ErrUploadFailed, ae)
		}
		if time.Now().After(deadline) {
			return Node{}, fmt.Errorf("cannot complete S3 upload: still %q after %s: %w", st.Status, u.c.cfg.S3PollTimeout, ErrOutcomeUnknown)
		}
		st = uploadStatus{}
	}
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
