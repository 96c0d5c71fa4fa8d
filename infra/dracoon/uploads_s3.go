package dracoon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// S3 direct upload tuning.
const (
	// presignBatch is how many presigned URLs are requested at once.
	presignBatch = 100
	// presignMaxAge is how long a presigned URL is used after it was issued.
	presignMaxAge = 30 * time.Minute
	// pollFirst is the wait before the first status poll of an S3
	// completion; each further wait is pollGrowth times longer, at most
	// pollMax. A server that assembles a file within 400 ms is polled
	// twice at most.
	pollFirst, pollGrowth, pollMax = 100 * time.Millisecond, 3, 2 * time.Second
)

// presigned is one presigned part URL.
type presigned struct {
	url    string
	issued time.Time
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
