package dracoon

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"net/http"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// sealedUpload uploads data as name into room through an Upload, sealing
// each part and writing it with write, and completes it.
func sealedUpload(t *testing.T, c *Client, room int64, name string, data []byte,
	write func(u *Upload, n int, off int64, part []byte) error) (Node, error) {
	t.Helper()
	ctx := context.Background()
	key, err := crypto.GenerateFileKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.StartUpload(ctx, UploadSpec{ParentID: room, Name: name, Size: int64(len(data))})
	if err != nil {
		return Node{}, err
	}
	var segs []crypto.Segment
	for n := 1; n <= u.Parts(); n++ {
		off, length := u.PartRange(n)
		part := bytes.Clone(data[off : off+length])
		seg, err := sealer.Seal(off, part, part)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, seg)
		if err := write(u, n, off, part); err != nil {
			return Node{}, err
		}
	}
	if key.Tag, err = sealer.Tag(segs); err != nil {
		t.Fatal(err)
	}
	fk, err := c.WrapFileKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return u.Complete(ctx, fk)
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
