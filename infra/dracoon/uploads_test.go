package dracoon

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"net/http"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// partWriter writes part n of u, the sealed bytes at off.
type partWriter func(u *Upload, n int, off int64, part []byte) error

// putFile uploads data as spec with a fresh key through the Upload API, as
// the transfer engine drives it (the one chunk pipeline is the engine's;
// this is its protocol, for the client's own tests): the key pair is
// unlocked before the channel opens, every part is sealed and written with
// write (nil: WritePart), S3 direct parts up to inFlight at once (proxy
// chunks one after another), and the tagged, wrapped key completes the
// upload. Any failure closes and cancels the upload, as WritePart's and
// Complete's own do.
func putFile(ctx context.Context, c *Client, spec UploadSpec, data []byte, inFlight int, write partWriter) (Node, error) {
	if write == nil {
		write = func(u *Upload, n int, off int64, part []byte) error { return u.WritePart(ctx, n, off, part) }
	}
	key, err := crypto.GenerateFileKey(nil)
	if err != nil {
		return Node{}, err
	}
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		return Node{}, err
	}
	if _, err := c.PrivateKey(ctx); err != nil {
		return Node{}, err
	}
	u, err := c.StartUpload(ctx, spec)
	if err != nil {
		return Node{}, err
	}
	segs := make([]crypto.Segment, u.Parts())
	limit := 1
	if u.Direct() {
		limit = max(inFlight, 1)
	}
	var g errgroup.Group
	g.SetLimit(limit)
	for n := 1; n <= u.Parts(); n++ {
		off, length := u.PartRange(n)
		part := bytes.Clone(data[off : off+length])
		if segs[n-1], err = sealer.Seal(off, part, part); err != nil {
			break
		}
		g.Go(func() error { return write(u, n, off, part) })
	}
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err == nil {
		key.Tag, err = sealer.Tag(segs)
	}
	var fk crypto.FileKey
	if err == nil {
		fk, err = c.WrapFileKey(ctx, key)
	}
	if err != nil {
		return Node{}, u.fail(ctx, err)
	}
	n, err := u.Complete(ctx, fk)
	if err != nil {
		return Node{}, u.fail(ctx, err)
	}
	return n, nil
}

// sealedUpload uploads data as name into room, writing each part in order
// with write.
func sealedUpload(t *testing.T, c *Client, room int64, name string, data []byte, write partWriter) (Node, error) {
	t.Helper()
	return putFile(context.Background(), c, UploadSpec{ParentID: room, Name: name, Size: int64(len(data))}, data, 1, write)
}

// TestUpload_WritePartSum: a part written with its MD5 known is checked
// against the server's answer (proxy chunks, also when a chunk is sent
// again), a wrong MD5 fails the upload with ErrChecksum and cancels it, and
// S3 parts do not use the MD5.
func TestUpload_WritePartSum(t *testing.T) {
	t.Parallel()
	const chunk = 64 << 10
	for _, tc := range []struct {
		name string
		s3   bool
		size int
	}{{"proxy", false, 3*chunk + 5}, {"proxy_empty", false, 0}, {"s3", true, MinS3PartSize + 100}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.s3, nil)
			c := e.svc()
			data, sum := randomData(t, tc.size)
			// The first proxy chunk is cut off once and sent again.
			e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/", Reset: true})
			n, err := sealedUpload(t, c, roomRecordings, "sum.bin", data, func(u *Upload, n int, off int64, part []byte) error {
				s := md5.Sum(part)
				if tc.s3 {
					s = [md5.Size]byte{} // not used for S3 parts
				}
				return u.WritePartSum(context.Background(), n, off, part, s)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := downloadSum(t, c, n.ID); got != sum {
				t.Fatal("downloaded content differs")
			}
		})
	}

	t.Run("wrong_sum", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false, nil)
		c := e.svc()
		data, _ := randomData(t, 3*chunk)
		var failed *Upload
		_, err := sealedUpload(t, c, roomRecordings, "wrong.bin", data, func(u *Upload, n int, off int64, part []byte) error {
			s := md5.Sum(part)
			if n == 2 {
				s[0] ^= 1
				failed = u
			}
			return u.WritePartSum(context.Background(), n, off, part, s)
		})
		if !errors.Is(err, ErrChecksum) || errclass.Of(err) != errclass.Transient {
			t.Fatalf("err = %v, want ErrChecksum (transient)", err)
		}
		if failed == nil || !uploadGone(t, c, failed.ID()) {
			t.Fatal("upload channel still exists after a checksum mismatch")
		}
		off, length := failed.PartRange(3)
		if err := failed.WritePart(context.Background(), 3, off, make([]byte, length)); !errors.Is(err, ErrUploadClosed) {
			t.Errorf("write after the mismatch: %v", err)
		}
		if n := countFiles(t, c, roomRecordings, "wrong"); n != 0 {
			t.Errorf("%d files named wrong*", n)
		}
	})
}
