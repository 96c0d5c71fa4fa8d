package transfer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/s3source"
)

// generated is a simulated S3 object: its bytes are a function of their
// offset (a repeating pattern of patternSize bytes), produced on demand, so
// that objects beyond 4 GiB need no disk.
type generated struct {
	pattern []byte // patternSize bytes, twice
	read    atomic.Int64
}

const patternSize = 1<<20 + 7 // not a divisor of any chunk size

func newGenerated() *generated {
	p := make([]byte, 2*patternSize)
	for i := 0; i+8 <= patternSize; i += 8 {
		binary.LittleEndian.PutUint64(p[i:], uint64(i)*0x9e3779b97f4a7c15)
	}
	copy(p[patternSize:], p[:patternSize])
	return &generated{pattern: p}
}

func (g *generated) ReadChunk(_ context.Context, obj s3source.Object, offset int64, buf []byte) (int, error) {
	if offset+int64(len(buf)) > obj.Size {
		return 0, fmt.Errorf("read beyond the object: %d+%d > %d", offset, len(buf), obj.Size)
	}
	for done := 0; done < len(buf); {
		at := int((offset + int64(done)) % patternSize)
		done += copy(buf[done:], g.pattern[at:at+patternSize])
	}
	g.read.Add(int64(len(buf)))
	return len(buf), nil
}

func (g *generated) Head(context.Context, string, string) (s3source.Object, error) {
	return s3source.Object{}, errors.New("a generated object cannot be looked up")
}

func (g *generated) Remove(context.Context, s3source.Object) (s3source.Removal, error) {
	return 0, errors.New("a generated object cannot be removed")
}

// TestTransfer_beyond_4GiB streams a simulated object of 4 GiB + 17 bytes
// into the emulator (S3 direct parts, content discarded: only sizes are
// kept), so that offsets, part numbers and the GCM counter pass 32 bits.
func TestTransfer_beyond_4GiB(t *testing.T) {
	const size = 4<<30 + 17
	const chunk = 64 << 20
	emu := emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: emulatortest.FastSeed(t, true), DiscardContent: true})
	svc, err := dracoon.New(dracoon.Config{BaseURL: emu.URL, Login: emulatortest.ServiceLogin, Password: conf.Secret(emulatortest.ServicePassword),
		EncryptionPassword: emulatortest.ServiceEncryptionPassword, ClientID: emulatortest.ClientID, ClientSecret: emulatortest.ClientSecret, ChunkSize: chunk, PartSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	room, err := svc.EnsureRoomPath(context.Background(), emulatortest.ParentRoomID, "large")
	if err != nil {
		t.Fatal(err)
	}
	src := newGenerated()
	eng := New(src, Client(svc), Options{ReadAhead: 2, PartsInFlight: 4})
	start := time.Now()
	res, err := eng.Transfer(context.Background(), Job{Files: []File{{Name: "large.bin",
		Object: s3source.Object{Bucket: "b", Key: "large.bin", Size: size, ETag: `"x"`}}},
		Targets: []Target{{RoomID: room.ID, Path: "large"}}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := svc.Node(context.Background(), res.Files[0].Uploads[0].NodeID)
	if err != nil || n.Size != size {
		t.Fatalf("node %+v, %v; want %d bytes", n, err, int64(size))
	}
	if got := src.read.Load(); got != size {
		t.Fatalf("read %d bytes, want %d", got, int64(size))
	}
	if peak := eng.peakBuffers.Load(); peak > int64(eng.opts.BufferCount()) {
		t.Fatalf("peak %d buffers, bound %d", peak, eng.opts.BufferCount())
	}
	t.Logf("4 GiB + 17 bytes in %s", time.Since(start).Round(time.Millisecond))
}
