package crypto_test

// Benchmarks. Compare the streamed and parallel sealers with the standard
// library's one-shot Seal of the same 256 MiB buffer on one core:
//
//	go test -run '^$' -bench 'StdlibSeal256MiB|Sealer|Opener' -benchtime 10x -cpu 2 ./infra/dracoon/crypto/
//
// and divide the MB/s columns (ratio = MB/s of BenchmarkSealer* / MB/s of
// BenchmarkStdlibSeal256MiB). BenchmarkSealerOneCore runs on the calling
// goroutine only; BenchmarkSealerParallel spreads segments over two
// goroutines, so it needs -cpu 2 (or more) and two idle cores to mean
// anything. Key costs:
//
//	go test -run '^$' -bench 'Wrap|Unwrap|Unlock' ./infra/dracoon/crypto/

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"sync"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
)

const (
	benchSize = 256 << 20
	// benchSegment is a realistic upload part size.
	benchSegment = 8 << 20
)

// benchBuffer returns n bytes of memory already touched: the first write to
// fresh pages costs more than the encryption on these virtual machines and
// would otherwise be charged to whichever benchmark runs first.
func benchBuffer(n, capacity int) []byte {
	buf := make([]byte, capacity)
	for i := range buf {
		buf[i] = byte(i)
	}
	return buf[:n]
}

func BenchmarkStdlibSeal256MiB(b *testing.B) {
	key := newKey(b, 1)
	block, err := aes.NewCipher(key.Key)
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	buf := benchBuffer(benchSize, benchSize+crypto.TagSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		aead.Seal(buf[:0], key.IV, buf, nil)
	}
}

// sealSegments seals buf in benchSegment pieces, starting at index first and
// stepping by step, into segs.
func sealSegments(b *testing.B, s *crypto.Sealer, buf []byte, segs []crypto.Segment, first, step, size int) {
	for i := first; i < len(segs); i += step {
		off := i * size
		end := min(off+size, len(buf))
		seg, err := s.Seal(int64(off), buf[off:end], buf[off:end])
		if err != nil {
			b.Error(err)
			return
		}
		segs[i] = seg
	}
}

func BenchmarkSealerOneCore(b *testing.B) {
	for _, size := range []int{1 << 20, benchSegment} {
		b.Run(fmt.Sprintf("segment_%dMiB", size>>20), func(b *testing.B) {
			s, err := crypto.NewSealer(newKey(b, 1))
			if err != nil {
				b.Fatal(err)
			}
			buf := benchBuffer(benchSize, benchSize)
			segs := make([]crypto.Segment, (benchSize+size-1)/size)
			b.SetBytes(benchSize)
			for b.Loop() {
				sealSegments(b, s, buf, segs, 0, 1, size)
				if _, err := s.Tag(segs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSealerParallel(b *testing.B) {
	const workers = 2
	s, err := crypto.NewSealer(newKey(b, 1))
	if err != nil {
		b.Fatal(err)
	}
	buf := benchBuffer(benchSize, benchSize)
	segs := make([]crypto.Segment, benchSize/benchSegment)
	b.SetBytes(benchSize)
	for b.Loop() {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() { sealSegments(b, s, buf, segs, w, workers, benchSegment) })
		}
		wg.Wait()
		if _, err := s.Tag(segs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenerOneCore(b *testing.B) {
	key := newKey(b, 1)
	key.Tag = make([]byte, crypto.TagSize)
	o, err := crypto.NewOpener(key)
	if err != nil {
		b.Fatal(err)
	}
	buf := benchBuffer(benchSize, benchSize)
	segs := make([]crypto.Segment, benchSize/benchSegment)
	b.SetBytes(benchSize)
	for b.Loop() {
		for i := range segs {
			off := i * benchSegment
			seg, err := o.Open(int64(off), buf[off:off+benchSegment], buf[off:off+benchSegment])
			if err != nil {
				b.Fatal(err)
			}
			segs[i] = seg
		}
		_ = o.Verify(segs) // the zero tag does not match; the cost is the same
	}
}

func BenchmarkNewSealer(b *testing.B) {
	key := newKey(b, 1)
	for b.Loop() {
		if _, err := crypto.NewSealer(key); err != nil {
			b.Fatal(err)
		}
	}
}

// benchKeyPairs are 10,000-iteration vector keys, one per version.
var benchKeyPairs = []struct{ version, private, public, password string }{
	{crypto.KeyPairVersionA, unitKP2048, unitData + "kp_rsa2048/public_key.json", unitPW},
	{crypto.KeyPairVersionRSA4096, unitData + "kp_rsa4096/private_key.json", unitData + "kp_rsa4096/public_key.json", unitPW},
}

func BenchmarkWrap(b *testing.B) {
	for _, kp := range benchKeyPairs {
		b.Run(kp.version, func(b *testing.B) {
			var c crypto.PublicKeyContainer
			readJSON(b, kp.public, &c)
			pub, err := crypto.ParsePublicKey(c)
			if err != nil {
				b.Fatal(err)
			}
			key := newKey(b, 1)
			key.Tag = make([]byte, crypto.TagSize)
			for b.Loop() {
				if _, err := pub.WrapFileKey(key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnwrap(b *testing.B) {
	for _, kp := range benchKeyPairs {
		b.Run(kp.version, func(b *testing.B) {
			priv := unlockVector(b, kp.private, readPassword(b, kp.password))
			key := newKey(b, 1)
			key.Tag = make([]byte, crypto.TagSize)
			fk, err := priv.Public().WrapFileKey(key)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := priv.UnwrapFileKey(fk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnlock measures unlocking at the iteration count of current SDK
// keys (1,300,000, PBKDF2-HMAC-SHA1) and of legacy keys (10,000).
func BenchmarkUnlock(b *testing.B) {
	cases := []struct{ name, private, password string }{
		{"iterations_1300000", unitData + "kp_rsa4096/private_key_pw_utf8_umlaut.json", unitData + "kp_general/pw_umlaut.txt"},
		{"iterations_10000", unitData + "kp_rsa4096/private_key.json", unitPW},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var c crypto.PrivateKeyContainer
			readJSON(b, tc.private, &c)
			pw := readPassword(b, tc.password)
			for b.Loop() {
				if _, err := crypto.Unlock(c, pw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
