// Package s3source reads recordings from S3 in ranged chunks and deletes them
// once they are stored elsewhere. Every error it returns is classified with
// errclass and names the operation, bucket and key.
package s3source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/stall"
)

// Defaults for zero values in Options.
const (
	// DefaultBodyRetries is how often a chunk whose body was cut off is read again.
	DefaultBodyRetries = 3
	// DefaultStallTimeout fails a read that moves no byte this long.
	DefaultStallTimeout = conf.DefaultStallTimeout
)

// ReadConcurrency is the Concurrency that lets transferWorkers transfers,
// each reading readAhead chunks ahead, read without waiting for each other.
func ReadConcurrency(transferWorkers, readAhead int) int {
	return transferWorkers * readAhead
}

// Sentinel errors, compared with errors.Is. All are Permanent.
var (
	// ErrNoSuchKey: the object does not exist. It is also fs.ErrNotExist.
	ErrNoSuchKey = errclass.NewKind(errclass.Permanent, "no such key", fs.ErrNotExist)
	// ErrNoSuchBucket: the bucket does not exist.
	ErrNoSuchBucket = errclass.New(errclass.Permanent, "no such bucket")
	// ErrAccessDenied: the credentials are wrong or may not do this.
	ErrAccessDenied = errclass.New(errclass.Permanent, "access denied")
	// ErrObjectChanged: the object is no longer the one Head described.
	ErrObjectChanged = errclass.New(errclass.Permanent, "object changed since it was looked up")
)

// Options configures a Source. The zero value of each field means its default.
type Options struct {
	// Concurrency is the most ranged GETs in flight at once through the
	// Source, over all callers; ReadChunk waits for a free slot. Default
	// ReadConcurrency of the default transfer settings.
	Concurrency int
	// BodyRetries is how often ReadChunk repeats a GET whose body was cut
	// off mid-stream (the SDK's retryer covers the request, not the body).
	// Default DefaultBodyRetries; negative means never.
	BodyRetries int
	// StallTimeout fails (and repeats, as a body cut off) a ranged read
	// whose answer moves no byte for this long. Default
	// DefaultStallTimeout; negative means never.
	StallTimeout time.Duration
}

// Object describes one S3 object as Head found it. ReadChunk reads exactly
// this version of it.
type Object struct {
	Bucket       string
	Key          string
	Size         int64     // bytes
	ETag         string    // as S3 returns it, quotes included
	VersionID    string    // the version's id in a bucket with versioning; empty otherwise
	LastModified time.Time // zero if S3 did not say
}

// String returns s3://bucket/key.
func (o Object) String() string { return location(o.Bucket, o.Key) }

// Source reads and deletes S3 objects. It is safe for concurrent use.
type Source struct {
	client      *s3.Client
	slots       chan struct{}
	bodyRetries int
	stall       time.Duration // see Options.StallTimeout; 0: never
	retryDelay  time.Duration // first pause before a body retry; doubles
	bytesRead   atomic.Int64
}

// New returns a Source that uses client.
func New(client *s3.Client, opts Options) *Source {
	if opts.Concurrency <= 0 {
		opts.Concurrency = ReadConcurrency(conf.DefaultTransferWorkers, conf.DefaultTransferParallel)
	}
	switch {
	case opts.BodyRetries == 0:
		opts.BodyRetries = DefaultBodyRetries
	case opts.BodyRetries < 0:
		opts.BodyRetries = 0
	}
	switch {
	case opts.StallTimeout == 0:
		opts.StallTimeout = DefaultStallTimeout
	case opts.StallTimeout < 0:
		opts.StallTimeout = 0
	}
	return &Source{
		client:      client,
		slots:       make(chan struct{}, opts.Concurrency),
		bodyRetries: opts.BodyRetries,
		stall:       opts.StallTimeout,
		retryDelay:  100 * time.Millisecond,
	}
}

// BytesRead returns the number of body bytes received from S3 so far,
// including those of reads that were cut off and repeated.
func (s *Source) BytesRead() int64 { return s.bytesRead.Load() }

// Head looks up the object bucket/key. A missing object gives ErrNoSuchKey,
// a missing bucket ErrNoSuchBucket.
func (s *Source) Head(ctx context.Context, bucket, key string) (Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		what := "stat " + location(bucket, key)
		if statusOf(err) == 404 && s.bucketMissing(ctx, bucket) {
			// HEAD answers have no body, so a 404 does not say whether the
			// key or the bucket is missing.
			return Object{}, errclass.AsPermanent(fmt.Errorf("cannot %s: %w: %w", what, ErrNoSuchBucket, err))
		}
		return Object{}, classify(ctx, what, err)
	}
	return Object{
		Bucket:       bucket,
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		VersionID:    versionID(out.VersionId),
		LastModified: aws.ToTime(out.LastModified),
	}, nil
}

// versionID returns the version id S3 answered with; "null" (the version of
// an object stored while versioning was off) is no id to read by.
func versionID(v *string) string {
	if id := aws.ToString(v); id != "null" {
		return id
	}
	return ""
}

// bucketMissing reports whether S3 says that bucket does not exist.
func (s *Source) bucketMissing(ctx context.Context, bucket string) bool {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket})
	return err != nil && statusOf(err) == 404
}

// ReadChunk reads obj's bytes from offset into buf, as many as fit and the
// object has, and returns their number: len(buf) except at the end of the
// object. It reads only the version Head described: if the object was
// replaced since, it fails with ErrObjectChanged. A chunk of an empty object,
// or an empty buf, needs no request and reads 0 bytes.
func (s *Source) ReadChunk(ctx context.Context, obj Object, offset int64, buf []byte) (int, error) {
	if offset < 0 || offset > obj.Size {
		return 0, errclass.AsPermanent(fmt.Errorf("cannot read %s at offset %d: the object has %d bytes", obj, offset, obj.Size))
	}
	if rest := obj.Size - offset; int64(len(buf)) > rest {
		buf = buf[:rest]
	}
	if len(buf) == 0 {
		return 0, nil
	}
	end := offset + int64(len(buf)) - 1
	what := func() string { return fmt.Sprintf("read %s bytes %d-%d", obj, offset, end) }

	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return 0, classify(ctx, what(), ctx.Err())
	}

	in := &s3.GetObjectInput{
		Bucket: aws.String(obj.Bucket),
		Key:    aws.String(obj.Key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", offset, end)),
	}
	if obj.ETag != "" {
		in.IfMatch = aws.String(obj.ETag)
	}
	if obj.VersionID != "" {
		in.VersionId = aws.String(obj.VersionID)
	}
	delay := s.retryDelay
	for attempt := 0; ; attempt++ {
		err := s.getInto(ctx, in, obj, offset, end, buf)
		if err == nil {
			return len(buf), nil
		}
		var cut *cutOffError
		if !errors.As(err, &cut) || attempt >= s.bodyRetries || ctx.Err() != nil {
			if cut != nil && attempt > 0 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return 0, classify(ctx, what(), err)
		}
		select {
		case <-time.After(delay):
			delay *= 2
		case <-ctx.Done():
			return 0, classify(ctx, what(), err)
		}
	}
}

// cutOffError is a response body that ended early or broke off.
type cutOffError struct {
	got, want int
	err       error
}

func (e *cutOffError) Error() string {
	return fmt.Sprintf("body cut off after %d of %d bytes: %v", e.got, e.want, e.err)
}
func (e *cutOffError) Unwrap() error { return e.err }

// getInto does one ranged GET for bytes offset-end of obj and reads its body
// into buf, which is exactly that long.
// A GET that moves no byte for the stall timeout (the answer or its body)
// is cancelled and reported as a cut-off body, so that it is repeated.
func (s *Source) getInto(ctx context.Context, in *s3.GetObjectInput, obj Object, offset, end int64, buf []byte) error {
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := stall.Start(s.stall, cancel)
	defer w.Stop()
	stalled := func(got int) error {
		return &cutOffError{got: got, want: len(buf), err: fmt.Errorf("%w (%s)", stall.ErrStalled, s.stall)}
	}
	out, err := s.client.GetObject(gctx, in)
	if err != nil {
		if w.Stalled() && ctx.Err() == nil {
			return stalled(0)
		}
		return err
	}
	defer out.Body.Close()
	if err := checkResponse(out, obj, offset, end); err != nil {
		return err
	}
	n, err := io.ReadFull(w.Reader(out.Body), buf)
	s.bytesRead.Add(int64(n))
	if err != nil {
		switch {
		case w.Stalled() && ctx.Err() == nil:
			return stalled(n)
		case ctx.Err() == nil && errclass.IsNetwork(err):
			return &cutOffError{got: n, want: len(buf), err: err}
		}
		return fmt.Errorf("body broke off after %d of %d bytes: %w", n, len(buf), err)
	}
	return nil
}

// checkResponse checks that out holds bytes offset-end of obj and nothing else.
func checkResponse(out *s3.GetObjectOutput, obj Object, offset, end int64) error {
	if etag := aws.ToString(out.ETag); obj.ETag != "" && etag != "" && etag != obj.ETag {
		return errclass.AsPermanent(fmt.Errorf("%w: the ETag is %s, was %s", ErrObjectChanged, etag, obj.ETag))
	}
	cr := aws.ToString(out.ContentRange)
	if cr == "" {
		return errors.New("the response has no Content-Range")
	}
	start, last, total, err := parseContentRange(cr)
	if err != nil {
		return err
	}
	if total != obj.Size {
		return errclass.AsPermanent(fmt.Errorf("%w: the Content-Range %q gives the size %d, was %d", ErrObjectChanged, cr, total, obj.Size))
	}
	if start != offset || last != end {
		return fmt.Errorf("the Content-Range %q is not the range asked for, bytes %d-%d", cr, offset, end)
	}
	if out.ContentLength == nil || *out.ContentLength != end-offset+1 {
		return fmt.Errorf("the Content-Length is %s, want %d", lengthString(out.ContentLength), end-offset+1)
	}
	return nil
}

func lengthString(n *int64) string {
	if n == nil {
		return "missing"
	}
	return strconv.FormatInt(*n, 10)
}

// parseContentRange parses a Content-Range header of the form
// "bytes START-END/TOTAL" with all three numbers given.
func parseContentRange(h string) (start, end, total int64, err error) {
	bad := func(why string) (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("malformed Content-Range %q: %s", h, why)
	}
	spec, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return bad(`want "bytes START-END/TOTAL"`)
	}
	rng, size, ok := strings.Cut(spec, "/")
	if !ok {
		return bad("no total")
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return bad("no range")
	}
	num := func(s string) (int64, bool) {
		if s == "" || s[0] < '0' || s[0] > '9' { // also rejects a sign, which ParseInt allows
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if start, ok = num(first); !ok {
		return bad("bad start")
	}
	if end, ok = num(last); !ok {
		return bad("bad end")
	}
	if total, ok = num(size); !ok {
		return bad("bad total")
	}
	if end < start || end >= total {
		return bad("range outside the object")
	}
	return start, end, total, nil
}

// Removal is what Remove did with an object.
type Removal int

// The outcomes of Remove.
const (
	// Removed: the object was the version described, and is deleted.
	Removed Removal = iota + 1
	// AlreadyGone: the object did not exist any more.
	AlreadyGone
	// Changed: the object is another version now, and was kept.
	Changed
)

func (r Removal) String() string {
	switch r {
	case Removed:
		return "removed"
	case AlreadyGone:
		return "already gone"
	case Changed:
		return "kept: changed since it was copied"
	}
	return "Removal(" + strconv.Itoa(int(r)) + ")"
}

// Remove deletes obj only if it is still the version Head described: it
// looks the object up and compares its ETag, version id and size, then
// deletes it with If-Match on that ETag, so that S3 itself refuses (412)
// the delete if the object was replaced in between. On a store that ignores
// If-Match, the lookup right before the delete leaves a window of one round
// trip. A versioned bucket keeps the deleted version behind a delete marker.
func (s *Source) Remove(ctx context.Context, obj Object) (Removal, error) {
	now, err := s.Head(ctx, obj.Bucket, obj.Key)
	switch {
	case errors.Is(err, ErrNoSuchKey):
		return AlreadyGone, nil
	case err != nil:
		return 0, err
	case !sameVersion(now, obj):
		return Changed, nil
	}
	return s.deleteIfMatch(ctx, obj)
}

// sameVersion reports whether now (from Head) is the version was describes.
func sameVersion(now, was Object) bool {
	return now.ETag == was.ETag && now.Size == was.Size && (was.VersionID == "" || now.VersionID == was.VersionID)
}

// deleteIfMatch deletes obj with If-Match on its ETag.
func (s *Source) deleteIfMatch(ctx context.Context, obj Object) (Removal, error) {
	in := &s3.DeleteObjectInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key)}
	if obj.ETag != "" {
		in.IfMatch = aws.String(obj.ETag)
	}
	_, err := s.client.DeleteObject(ctx, in)
	if err == nil {
		return Removed, nil
	}
	if statusOf(err) == 409 {
		// A concurrent write or delete of the key: S3 asks to try again.
		return 0, errclass.AsTransient(fmt.Errorf("cannot delete %s: a concurrent change: %w", obj, err))
	}
	err = classify(ctx, "delete "+obj.String()+" if its ETag is "+obj.ETag, err)
	switch {
	case errors.Is(err, ErrNoSuchKey):
		return AlreadyGone, nil
	case errors.Is(err, ErrObjectChanged):
		return Changed, nil
	}
	return 0, err
}

func location(bucket, key string) string { return "s3://" + bucket + "/" + key }

// classify wraps err, from the S3 call described by what ("read s3://b/k
// bytes 0-99"), with that description, the matching sentinel and its class.
func classify(ctx context.Context, what string, err error) error {
	if errclass.IsPermanent(err) { // already judged, such as by checkResponse
		return errclass.AsPermanent(fmt.Errorf("cannot %s: %w", what, err))
	}
	permanent := func(sentinel error) error {
		return errclass.AsPermanent(fmt.Errorf("cannot %s: %w: %w", what, sentinel, err))
	}
	transient := func() error { return errclass.AsTransient(fmt.Errorf("cannot %s: %w", what, err)) }

	if ctxErr := ctx.Err(); ctxErr != nil {
		if !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return transient()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return transient()
	}

	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return permanent(ErrNoSuchKey)
		case "NoSuchBucket":
			return permanent(ErrNoSuchBucket)
		case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
			"AllAccessDisabled", "AccountProblem", "InvalidSecurity",
			"XAdminUserNotFound": // versitygw's answer (status 404) to an unknown access key ID
			return permanent(ErrAccessDenied)
		case "PreconditionFailed":
			return permanent(ErrObjectChanged)
		case "InvalidRange", "InvalidBucketName", "InvalidObjectState", "KeyTooLongError":
			return errclass.AsPermanent(fmt.Errorf("cannot %s: %w", what, err))
		}
	}
	switch status := statusOf(err); {
	case status == 404:
		return permanent(ErrNoSuchKey)
	case status == 403:
		return permanent(ErrAccessDenied)
	case status == 412:
		return permanent(ErrObjectChanged)
	case status == 416:
		return errclass.AsPermanent(fmt.Errorf("cannot %s: %w", what, err))
	}
	// 5xx, SlowDown, 429, 408, timeouts, broken connections, cut-off bodies,
	// and anything not understood: try again later.
	return transient()
}

// statusOf returns the HTTP status of an S3 error answer, or 0.
func statusOf(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Reachable reports whether the S3 endpoint answers at all: it asks for a
// bucket that need not exist, so that any answer, even 403 or 404, counts
// and no permission is needed; only a failed connection or a 5xx is an
// error.
func (s *Source) Reachable(ctx context.Context) error {
	probe := "recording-storage-reachability-probe"
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &probe})
	if err == nil {
		return nil
	}
	if st := statusOf(err); st != 0 && st < 500 {
		return nil
	}
	return fmt.Errorf("S3 is not reachable: %w", err)
}
