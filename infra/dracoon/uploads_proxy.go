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

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// contentRange is the Content-Range of a chunk: inclusive end, total size.
func contentRange(offset, length, total int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", offset, offset+length-1, total)
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
