package crypto_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// testChunk is the segment size of the property tests; small so that they
// cross many segment boundaries fast, also under -race.
const testChunk = 64

func newKey(t testing.TB, seed uint64) crypto.PlainFileKey {
	t.Helper()
	k, err := crypto.GenerateFileKey(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{0xfe, byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// stdlibSeal is the reference: the one-shot GCM of the whole content.
func stdlibSeal(t testing.TB, k crypto.PlainFileKey, plain []byte) (ct, tag []byte) {
	t.Helper()
	block, err := aes.NewCipher(k.Key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	out := aead.Seal(nil, k.IV, plain, nil)
	return out[:len(plain)], out[len(plain):]
}

// split cuts n bytes into segments of chunk bytes and returns their offsets
// in a random order.
func split(rng *rand.Rand, n, chunk int) []int {
	var offs []int
	for off := 0; off < n; off += chunk {
		offs = append(offs, off)
	}
	rng.Shuffle(len(offs), func(i, j int) { offs[i], offs[j] = offs[j], offs[i] })
	return offs
}

var propertySizes = []int{0, 1, 15, 16, 17, 31, 32, 33, 47, 48, testChunk - 1, testChunk, testChunk + 1,
	3*testChunk - 16, 3*testChunk + 5, 7 * testChunk, 10*testChunk + 13}

func TestSealer_matches_stdlib_in_any_segment_order(t *testing.T) {
	t.Parallel()
	for _, size := range propertySizes {
		for _, chunk := range []int{16, 48, testChunk, 1 << 10} {
			for _, inPlace := range []bool{false, true} {
				t.Run(fmt.Sprintf("size_%d_chunk_%d_inplace_%v", size, chunk, inPlace), func(t *testing.T) {
					key := newKey(t, uint64(size*7+chunk))
					plain := randomBytes(uint64(size), size)
					wantCT, wantTag := stdlibSeal(t, key, plain)

					s, err := crypto.NewSealer(key)
					if err != nil {
						t.Fatal(err)
					}
					rng := rand.New(rand.NewPCG(uint64(size), uint64(chunk)))
					ct := make([]byte, size)
					if inPlace {
						copy(ct, plain)
					}
					var segs []crypto.Segment
					for _, off := range split(rng, size, chunk) {
						end := min(off+chunk, size)
						src := plain[off:end]
						if inPlace {
							src = ct[off:end]
						}
						seg, err := s.Seal(int64(off), ct[off:end], src)
						if err != nil {
							t.Fatal(err)
						}
						segs = append(segs, seg)
					}
					tag, err := s.Tag(segs)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(ct, wantCT) {
						t.Fatal("ciphertext differs from cipher.NewGCM().Seal")
					}
					if !bytes.Equal(tag, wantTag) {
						t.Fatalf("tag %x, want %x", tag, wantTag)
					}

					// And back, in another order, in place.
					key.Tag = tag
					o, err := crypto.NewOpener(key)
					if err != nil {
						t.Fatal(err)
					}
					segs = segs[:0]
					for _, off := range split(rng, size, chunk) {
						end := min(off+chunk, size)
						seg, err := o.Open(int64(off), ct[off:end], ct[off:end])
						if err != nil {
							t.Fatal(err)
						}
						segs = append(segs, seg)
					}
					if err := o.Verify(segs); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(ct, plain) {
						t.Fatal("decrypted content differs")
					}
				})
			}
		}
	}
}

func TestSealer_writes_nothing_past_the_segment(t *testing.T) {
	t.Parallel()
	key := newKey(t, 1)
	s, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 16, 31, 32, 33, 100} {
		buf := bytes.Repeat([]byte{0xAA}, n+64)
		if _, err := s.Seal(0, buf[:n:n+64], randomBytes(2, n)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[n:], bytes.Repeat([]byte{0xAA}, 64)) {
			t.Errorf("Seal of %d bytes wrote past dst[:len(src)]", n)
		}
	}
}

func TestSealer_concurrent_segments(t *testing.T) {
	t.Parallel()
	const size, chunk, workers = 64 << 10, 4 << 10, 4
	key := newKey(t, 3)
	plain := randomBytes(3, size)
	wantCT, wantTag := stdlibSeal(t, key, plain)
	s, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, size)
	segs := make([]crypto.Segment, size/chunk)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(segs); i += workers {
				off := i * chunk
				seg, err := s.Seal(int64(off), ct[off:off+chunk], plain[off:off+chunk])
				if err != nil {
					errs <- err
					return
				}
				segs[i] = seg
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tag, err := s.Tag(segs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ct, wantCT) || !bytes.Equal(tag, wantTag) {
		t.Fatal("concurrent sealing differs from cipher.NewGCM().Seal")
	}
}

func TestOpener_detects_tampering(t *testing.T) {
	t.Parallel()
	key := newKey(t, 4)
	plain := randomBytes(4, 5*testChunk+3)
	ct, tag := stdlibSeal(t, key, plain)
	key.Tag = tag
	cases := []struct {
		Name   string
		Mutate func(ct []byte, k *crypto.PlainFileKey) []byte
	}{
		{"flipped_bit_in_first_block", func(ct []byte, _ *crypto.PlainFileKey) []byte { ct[0] ^= 1; return ct }},
		{"flipped_bit_in_last_byte", func(ct []byte, _ *crypto.PlainFileKey) []byte { ct[len(ct)-1] ^= 0x80; return ct }},
		{"truncated", func(ct []byte, _ *crypto.PlainFileKey) []byte { return ct[:len(ct)-1] }},
		{"extended", func(ct []byte, _ *crypto.PlainFileKey) []byte { return append(ct, 0) }},
		{"empty", func(ct []byte, _ *crypto.PlainFileKey) []byte { return ct[:0] }},
		{"other_tag", func(ct []byte, k *crypto.PlainFileKey) []byte { k.Tag[3] ^= 4; return ct }},
		{"other_iv", func(ct []byte, k *crypto.PlainFileKey) []byte { k.IV[11] ^= 1; return ct }},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			k := crypto.PlainFileKey{Key: key.Key, IV: bytes.Clone(key.IV), Tag: bytes.Clone(key.Tag), Version: key.Version}
			data := tc.Mutate(bytes.Clone(ct), &k)
			_, err := crypto.DecryptStream(k, io.Discard, bytes.NewReader(data))
			if !errors.Is(err, crypto.ErrAuthentication) {
				t.Fatalf("error = %v, want ErrAuthentication", err)
			}
		})
	}
}

func TestSealer_Tag_refuses_bad_segment_sets(t *testing.T) {
	t.Parallel()
	key := newKey(t, 5)
	s, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	plain := randomBytes(5, 100)
	ct := make([]byte, 100)
	seal := func(off, end int) crypto.Segment {
		seg, err := s.Seal(int64(off), ct[off:end], plain[off:end])
		if err != nil {
			t.Fatal(err)
		}
		return seg
	}
	cases := []struct {
		Name string
		Segs []crypto.Segment
	}{
		{"gap", []crypto.Segment{seal(0, 32), seal(48, 100)}},
		{"overlap", []crypto.Segment{seal(0, 48), seal(32, 100)}},
		{"duplicate", []crypto.Segment{seal(0, 32), seal(0, 32), seal(32, 100)}},
		{"not_from_zero", []crypto.Segment{seal(32, 100)}},
		{"partial_block_not_last", []crypto.Segment{seal(0, 20), seal(32, 100)}},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if _, err := s.Tag(tc.Segs); !errors.Is(err, crypto.ErrBadSegment) {
				t.Fatalf("error = %v, want ErrBadSegment", err)
			}
		})
	}
}

func TestSealer_Seal_refuses_bad_offsets_and_sizes(t *testing.T) {
	t.Parallel()
	s, err := crypto.NewSealer(newKey(t, 6))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	cases := []struct {
		Name     string
		Offset   int64
		Dst, Src []byte
		Want     error
	}{
		{"misaligned", 8, buf, buf, crypto.ErrBadSegment},
		{"negative", -16, buf, buf, crypto.ErrBadSegment},
		{"short_dst", 0, buf[:8], buf, crypto.ErrBadSegment},
		{"past_limit", crypto.MaxFileSize - 16, buf, buf, crypto.ErrFileTooLarge},
		{"start_past_limit", crypto.MaxFileSize + 16, buf[:0], buf[:0], crypto.ErrFileTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if _, err := s.Seal(tc.Offset, tc.Dst, tc.Src); !errors.Is(err, tc.Want) {
				t.Fatalf("error = %v, want %v", err, tc.Want)
			}
		})
	}
}

func TestSealer_last_segment_at_the_size_limit(t *testing.T) {
	t.Parallel()
	// The block before the limit uses counter 2^32-1, the last one GCM allows.
	s, err := crypto.NewSealer(newKey(t, 7))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if _, err := s.Seal(crypto.MaxFileSize-16, buf, buf); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		N    int64
		Want error
	}{
		{0, nil}, {1, nil}, {crypto.MaxFileSize, nil},
		{crypto.MaxFileSize + 1, crypto.ErrFileTooLarge}, {1 << 40, crypto.ErrFileTooLarge}, {-1, crypto.ErrBadSegment},
	}
	for _, tc := range cases {
		if err := crypto.CheckSize(tc.N); !errors.Is(err, tc.Want) {
			t.Errorf("CheckSize(%d) = %v, want %v", tc.N, err, tc.Want)
		}
	}
}

func TestSegment_binary_round_trip(t *testing.T) {
	t.Parallel()
	key := newKey(t, 8)
	plain := randomBytes(8, 80)
	_, wantTag := stdlibSeal(t, key, plain)
	s, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, 80)
	var segs []crypto.Segment
	for _, r := range [][2]int{{0, 48}, {48, 80}} {
		seg, err := s.Seal(int64(r[0]), ct[r[0]:r[1]], plain[r[0]:r[1]])
		if err != nil {
			t.Fatal(err)
		}
		var m encoding.BinaryMarshaler = seg
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back crypto.Segment
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, back)
	}
	tag, err := s.Tag(segs)
	if err != nil || !bytes.Equal(tag, wantTag) {
		t.Fatalf("tag after round trip = %x, %v; want %x", tag, err, wantTag)
	}
	if got := fmt.Sprintf("%v %+v %#v", segs[0], segs[0], segs[0]); got != strings.Repeat("crypto.Segment{offset: 0, length: 48} ", 2)+"crypto.Segment{offset: 0, length: 48}" {
		t.Errorf("Segment prints as %q", got)
	}
	// The keyed hash stays out of every verb (%d and %x used to walk the fields).
	for _, verb := range []string{"%d", "%x", "%X", "%s", "%q", "%o", "%b"} {
		if got := fmt.Sprintf(verb, segs[0]); got != "crypto.Segment{offset: 0, length: 48}" {
			t.Errorf("Sprintf(%q, segment) = %q", verb, got)
		}
	}
}

func TestStreams_round_trip_across_buffer_boundaries(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, size := range []int{0, 1, 17, mib - 1, mib, mib + 1, 2*mib + 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key := newKey(t, uint64(size))
			plain := randomBytes(uint64(size), size)
			wantCT, wantTag := stdlibSeal(t, key, plain)
			var ct bytes.Buffer
			// OneByteReader and HalfReader make short reads that must not
			// shift segment boundaries.
			n, tag, err := crypto.EncryptStream(key, &ct, iotest.HalfReader(bytes.NewReader(plain)))
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(size) || !bytes.Equal(ct.Bytes(), wantCT) || !bytes.Equal(tag, wantTag) {
				t.Fatal("EncryptStream differs from cipher.NewGCM().Seal")
			}
			key.Tag = tag
			var r io.Reader = iotest.OneByteReader(bytes.NewReader(ct.Bytes()))
			if size > 1<<16 {
				r = iotest.HalfReader(bytes.NewReader(ct.Bytes())) // a byte at a time is too slow under -race
			}
			var back bytes.Buffer
			if _, err := crypto.DecryptStream(key, &back, r); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Bytes(), plain) {
				t.Fatal("DecryptStream differs from the plaintext")
			}
		})
	}
}

func TestDecryptStream_reports_read_errors(t *testing.T) {
	t.Parallel()
	key := newKey(t, 9)
	key.Tag = make([]byte, crypto.TagSize)
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(make([]byte, 100)), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := crypto.DecryptStream(key, io.Discard, r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := crypto.DecryptStream(key, io.Discard, iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("error = %v, want %v", err, boom)
	}
}

func TestNewOpener_needs_a_tag(t *testing.T) {
	t.Parallel()
	if _, err := crypto.NewOpener(newKey(t, 10)); !errors.Is(err, crypto.ErrBadFileKey) {
		t.Fatalf("error = %v, want ErrBadFileKey", err)
	}
}

func TestNewSealer_refuses_a_key_that_carries_a_tag(t *testing.T) {
	t.Parallel()
	key := newKey(t, 11)
	plain := randomBytes(11, 100)
	_, tag := stdlibSeal(t, key, plain)
	used := key
	used.Tag = tag

	_, err := crypto.NewSealer(used)
	if !errors.Is(err, crypto.ErrKeyUsed) || !errclass.IsPermanent(err) {
		t.Errorf("NewSealer: error = %v (%v), want a permanent ErrKeyUsed", err, errclass.Of(err))
	}
	var dst bytes.Buffer
	n, gotTag, err := crypto.EncryptStream(used, &dst, bytes.NewReader(plain))
	if !errors.Is(err, crypto.ErrKeyUsed) || !errclass.IsPermanent(err) {
		t.Errorf("EncryptStream: error = %v (%v), want a permanent ErrKeyUsed", err, errclass.Of(err))
	}
	if n != 0 || gotTag != nil || dst.Len() != 0 {
		t.Errorf("EncryptStream with a used key wrote %d bytes (n %d, tag %x)", dst.Len(), n, gotTag)
	}
	// A tag of any length counts, even a malformed one.
	used.Tag = tag[:3]
	if _, err := crypto.NewSealer(used); !errors.Is(err, crypto.ErrKeyUsed) {
		t.Errorf("NewSealer with a short tag: error = %v, want ErrKeyUsed", err)
	}
	// The same key without its tag (a fresh key) seals.
	if _, err := crypto.NewSealer(key); err != nil {
		t.Errorf("NewSealer of the fresh key: %v", err)
	}
}

// TestAlign: sizes round to the segment alignment, the AES block.
func TestAlign(t *testing.T) {
	tests := []struct {
		n, down, up int64
	}{
		{0, 0, 0}, {1, 0, 16}, {15, 0, 16}, {16, 16, 16}, {17, 16, 32},
		{5<<20 + 1, 5 << 20, 5<<20 + 16}, {crypto.MaxFileSize, crypto.MaxFileSize, crypto.MaxFileSize},
	}
	if crypto.SegmentAlign != aes.BlockSize {
		t.Fatalf("SegmentAlign %d, want the AES block, %d", crypto.SegmentAlign, aes.BlockSize)
	}
	for _, tt := range tests {
		if got := crypto.AlignDown(tt.n); got != tt.down {
			t.Errorf("AlignDown(%d) = %d, want %d", tt.n, got, tt.down)
		}
		if got := crypto.AlignUp(tt.n); got != tt.up {
			t.Errorf("AlignUp(%d) = %d, want %d", tt.n, got, tt.up)
		}
	}
}
