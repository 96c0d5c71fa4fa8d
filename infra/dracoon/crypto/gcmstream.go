package crypto

import (
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// Why this is hand-written: DRACOON encrypts each file as ONE AES-256-GCM
// message, but Go's cipher.AEAD is one-shot and would need the whole file in
// memory. GCM is CTR mode plus GHASH, and both split at block boundaries:
// the segment at byte offset o (o a multiple of 16) uses the counter blocks
// from IV||2+o/16 on, and its partial GHASH Y_s = Σ C_i·H^(n-i+1) joins the
// running hash as Y = Y_prev·H^blocks(s) ⊕ Y_s. The tag is
// ((Y ⊕ len) · H) ⊕ E_K(IV||1).
//
// Neither bulk pass is done here. To encrypt a segment, the standard
// library's accelerated GCM is called with a 16-byte nonce chosen so that its
// derived pre-counter block J0 = GHASH_H(N || len(N)) = N·H² ⊕ len(N)·H
// equals IV||1+o/16: then its CTR starts at the segment's counter, and its
// tag, unmasked with E_K(J0) and divided by H, yields Y_s. One pass, at the
// speed of a one-shot Seal. To decrypt, the standard library's CTR decrypts
// and a Seal of an empty plaintext with the segment as additional data
// yields Y_s the same way. Only a handful of GF(2^128) multiplications per
// segment run in Go.

// MaxFileSize is the longest content one AES-GCM message can carry:
// 2^32-2 blocks of 16 bytes (NIST SP 800-38D), about 64 GiB.
const MaxFileSize = 1<<36 - 32

// SegmentAlign is the alignment of segments, the AES block: a segment
// starts at a multiple of SegmentAlign bytes, and every segment but the
// file's last is a multiple of it long. Chunk and part sizes are therefore
// multiples of it.
const SegmentAlign = 16

// AlignDown returns n rounded down to a multiple of SegmentAlign.
func AlignDown(n int64) int64 { return n &^ (SegmentAlign - 1) }

// AlignUp returns n rounded up to a multiple of SegmentAlign.
func AlignUp(n int64) int64 { return AlignDown(n + SegmentAlign - 1) }

// CheckSize returns an error wrapping ErrFileTooLarge when n bytes of
// content cannot be encrypted as one file. Call it before starting an upload.
func CheckSize(n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: negative size %d", ErrBadSegment, n)
	}
	if n > MaxFileSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrFileTooLarge, n, MaxFileSize)
	}
	return nil
}

// Segment is the result of encrypting or decrypting one piece of a file: its
// place in the file and the keyed partial GHASH of its ciphertext. Collect
// the segments of a file and pass them to Sealer.Tag or Opener.Verify.
// The hash is derived from the key; do not log or publish it.
type Segment struct {
	Offset int64 // byte offset in the file, a multiple of 16
	Length int64 // bytes; a multiple of 16 unless the segment ends the file
	hash   gfElement
}

// String describes the segment without its hash.
func (s Segment) String() string {
	return fmt.Sprintf("crypto.Segment{offset: %d, length: %d}", s.Offset, s.Length)
}

// GoString describes the segment without its hash.
func (s Segment) GoString() string { return s.String() }

// Format writes the description without the hash for every verb.
func (s Segment) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// segmentBinarySize is the size of a marshalled Segment.
const segmentBinarySize = 8 + 8 + 16

// MarshalBinary encodes s (including its keyed hash) so that the segments of
// a long upload can be kept across restarts.
func (s Segment) MarshalBinary() ([]byte, error) {
	b := make([]byte, segmentBinarySize)
	binary.BigEndian.PutUint64(b[0:], uint64(s.Offset))
	binary.BigEndian.PutUint64(b[8:], uint64(s.Length))
	s.hash.put(b[16:])
	return b, nil
}

// UnmarshalBinary decodes a segment written by MarshalBinary.
func (s *Segment) UnmarshalBinary(b []byte) error {
	if len(b) != segmentBinarySize {
		return fmt.Errorf("%w: encoded segment of %d bytes, want %d", ErrBadSegment, len(b), segmentBinarySize)
	}
	s.Offset = int64(binary.BigEndian.Uint64(b[0:]))
	s.Length = int64(binary.BigEndian.Uint64(b[8:]))
	s.hash = gfLoad(b[16:])
	return nil
}

// gcmKey is what Sealer and Opener share: the cipher and the constants
// derived from the hash key H = E_K(0^128).
type gcmKey struct {
	block   cipher.Block
	derived cipher.AEAD // 16-byte nonces, used with nonceFor
	std     cipher.AEAD // 12-byte nonce IV, used for GHASH of additional data
	iv      [IVSize]byte
	mask    gfElement // E_K(IV||1), the tag mask of the whole file
	h, h2   gfElement // H, H^2
	hInv    gfElement // H^-1
	hInv2   gfElement // H^-2
	lenNH   gfElement // len(16-byte nonce)·H
}

func newGCMKey(k PlainFileKey) (*gcmKey, error) {
	block, err := aes.NewCipher(k.Key)
	if err != nil {
		return nil, err
	}
	derived, err := cipher.NewGCMWithNonceSize(block, 16)
	if err != nil {
		return nil, err
	}
	std, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	g := &gcmKey{block: block, derived: derived, std: std}
	copy(g.iv[:], k.IV)
	var b [16]byte
	block.Encrypt(b[:], b[:])
	g.h = gfLoad(b[:])
	if g.h == (gfElement{}) {
		// E_K(0) = 0 happens with probability 2^-128; H would have no inverse.
		return nil, fmt.Errorf("%w: degenerate AES key", ErrBadFileKey)
	}
	g.h2 = gfMul(g.h, g.h)
	g.hInv = gfInv(g.h)
	g.hInv2 = gfMul(g.hInv, g.hInv)
	g.lenNH = gfMul(lengthBlock(0, 16), g.h) // the 16-byte nonce as a length block
	g.mask = g.encryptCounter(1)
	return g, nil
}

// counterBlock returns IV || be32(ctr).
func (g *gcmKey) counterBlock(ctr uint32) [16]byte {
	var b [16]byte
	copy(b[:], g.iv[:])
	binary.BigEndian.PutUint32(b[12:], ctr)
	return b
}

// encryptCounter returns E_K(IV || be32(ctr)).
func (g *gcmKey) encryptCounter(ctr uint32) gfElement {
	b := g.counterBlock(ctr)
	g.block.Encrypt(b[:], b[:])
	return gfLoad(b[:])
}

// firstCounter returns the counter of the first block at offset.
func firstCounter(offset int64) uint32 { return uint32(2 + offset/16) }

// nonceFor returns the 16-byte nonce whose GCM pre-counter block is
// J0 = IV||firstCounter(offset)-1, so that Seal with it encrypts the bytes
// at offset: N = (J0 ⊕ len(N)·H) · H^-2.
func (g *gcmKey) nonceFor(offset int64) [16]byte {
	j0b := g.counterBlock(firstCounter(offset) - 1)
	var n [16]byte
	gfMul(gfLoad(j0b[:]).xor(g.lenNH), g.hInv2).put(n[:])
	return n
}

// checkSegment validates a segment's place and buffers.
func checkSegment(offset int64, dst, src []byte) error {
	if offset < 0 || offset%SegmentAlign != 0 {
		return fmt.Errorf("%w: offset %d is not a non-negative multiple of %d", ErrBadSegment, offset, SegmentAlign)
	}
	if offset > MaxFileSize || int64(len(src)) > MaxFileSize-offset {
		return fmt.Errorf("%w: segment ends past %d bytes", ErrFileTooLarge, int64(MaxFileSize))
	}
	if len(dst) < len(src) {
		return fmt.Errorf("%w: dst of %d bytes is shorter than src of %d", ErrBadSegment, len(dst), len(src))
	}
	return nil
}

// ghashAcc combines segments in file order into the running GHASH Y.
type ghashAcc struct {
	y      gfElement
	end    int64     // bytes covered so far
	blocks int64     // block count of the cached power
	pow    gfElement // H^blocks
	open   bool      // the last segment ended in a partial block
}

// add appends seg, which must start where the previous one ended.
func (g *gcmKey) add(a *ghashAcc, seg Segment) error {
	if seg.Length == 0 {
		return nil
	}
	if seg.Offset != a.end {
		return fmt.Errorf("%w: segment at %d, want %d: segments must cover the file once, without gaps", ErrBadSegment, seg.Offset, a.end)
	}
	if a.open {
		return fmt.Errorf("%w: segment at %d follows a segment that is not a multiple of 16 bytes", ErrBadSegment, seg.Offset)
	}
	if seg.Length < 0 || seg.Length > MaxFileSize-a.end {
		return fmt.Errorf("%w: segments end past %d bytes", ErrFileTooLarge, int64(MaxFileSize))
	}
	blocks := (seg.Length + 15) / 16
	if blocks != a.blocks {
		a.blocks, a.pow = blocks, gfPow(g.h, uint64(blocks))
	}
	a.y = gfMul(a.y, a.pow).xor(seg.hash)
	a.end += seg.Length
	a.open = seg.Length%SegmentAlign != 0
	return nil
}

// tag finishes the GHASH and returns the file's GCM tag.
func (g *gcmKey) tag(a *ghashAcc) [TagSize]byte {
	var t [TagSize]byte
	gfMul(a.y.xor(lengthBlock(0, a.end)), g.h).xor(g.mask).put(t[:])
	return t
}

// combine sorts segs by offset and folds them into one accumulator.
func (g *gcmKey) combine(segs []Segment) (*ghashAcc, error) {
	sorted := slices.Clone(segs)
	slices.SortFunc(sorted, func(a, b Segment) int {
		return cmp.Or(cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.Length, b.Length))
	})
	var a ghashAcc
	for _, s := range sorted {
		if err := g.add(&a, s); err != nil {
			return nil, err
		}
	}
	return &a, nil
}

// Sealer encrypts the content of one file as one AES-256-GCM message, in
// segments that may be sealed in any order and concurrently. It is safe for
// concurrent use.
type Sealer struct{ g *gcmKey }

// NewSealer returns a Sealer for the key and IV of k, which must be a fresh
// key without tag (see GenerateFileKey). A key that carries a tag has
// already sealed a plaintext, and sealing another one with the same key and
// IV breaks AES-GCM: NewSealer refuses it with an error wrapping ErrKeyUsed.
func NewSealer(k PlainFileKey) (*Sealer, error) {
	if len(k.Tag) != 0 {
		return nil, fmt.Errorf("new sealer: %w", ErrKeyUsed)
	}
	if err := k.check(false); err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	g, err := newGCMKey(k)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	return &Sealer{g: g}, nil
}

// Seal encrypts src, the plaintext at byte offset of the file, into
// dst[:len(src)] and returns its Segment. offset must be a multiple of 16,
// and src a multiple of 16 bytes unless it ends the file. dst must be at
// least as long as src; dst and src must overlap entirely or not at all.
// Seal writes nothing beyond dst[:len(src)]. Sealing different bytes at the
// same offset reuses the key stream and breaks confidentiality: a retried
// segment must carry the same plaintext.
func (s *Sealer) Seal(offset int64, dst, src []byte) (Segment, error) {
	if err := checkSegment(offset, dst, src); err != nil {
		return Segment{}, fmt.Errorf("seal: %w", err)
	}
	g := s.g
	n := len(src)
	seg := Segment{Offset: offset, Length: int64(n)}
	if n == 0 {
		return seg, nil
	}
	// GCM appends a 16-byte tag to its output. Seal the body so that this
	// tag lands inside dst, over bytes the tail then overwrites; seal the
	// 16 to 31 last bytes into a local buffer. Save the tail first: with
	// dst == src the body's tag overwrites its beginning.
	body := 0
	if n >= 32 {
		body = (n - 16) &^ 15
	}
	var tail [32 + TagSize]byte
	t := copy(tail[:], src[body:])
	if body > 0 {
		nonce := g.nonceFor(offset)
		out := g.derived.Seal(dst[:0:n], nonce[:], src[:body], nil)
		seg.hash = g.sealedHash(offset, out[body:], body)
	}
	at := offset + int64(body)
	nonce := g.nonceFor(at)
	out := g.derived.Seal(tail[:0], nonce[:], tail[:t], nil)
	copy(dst[body:n], out[:t])
	pow := g.h
	if t > 16 {
		pow = g.h2
	}
	seg.hash = gfMul(seg.hash, pow).xor(g.sealedHash(at, out[t:], t))
	return seg, nil
}

// sealedHash recovers the partial GHASH of n bytes of ciphertext at offset
// from the tag of a Seal with nonceFor(offset):
// Y_s = (tag ⊕ E_K(J0)) · H^-1 ⊕ len(C).
func (g *gcmKey) sealedHash(offset int64, tag []byte, n int) gfElement {
	s := gfLoad(tag).xor(g.encryptCounter(firstCounter(offset) - 1))
	return gfMul(s, g.hInv).xor(lengthBlock(0, int64(n)))
}

// Tag returns the GCM tag of the file made of segs: they must cover the
// file from offset 0 without gaps or overlaps, in any order. Store the tag
// in the file key before wrapping it.
func (s *Sealer) Tag(segs []Segment) ([]byte, error) {
	a, err := s.g.combine(segs)
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	t := s.g.tag(a)
	return t[:], nil
}

// Opener decrypts the content of one file sealed as one AES-256-GCM
// message, in segments that may be opened in any order and concurrently, and
// verifies the tag of the whole file. Its output is unauthenticated until
// Verify returns nil. It is safe for concurrent use.
type Opener struct {
	g   *gcmKey
	tag [TagSize]byte
}

// NewOpener returns an Opener for k, which must carry the file's tag.
func NewOpener(k PlainFileKey) (*Opener, error) {
	if err := k.check(true); err != nil {
		return nil, fmt.Errorf("new opener: %w", err)
	}
	g, err := newGCMKey(k)
	if err != nil {
		return nil, fmt.Errorf("new opener: %w", err)
	}
	o := &Opener{g: g}
	copy(o.tag[:], k.Tag)
	return o, nil
}

// Open decrypts src, the ciphertext at byte offset of the file, into
// dst[:len(src)] and returns its Segment. The rules for offset, dst and src
// are those of Sealer.Seal. The plaintext must not be trusted before Verify
// accepts all segments.
func (o *Opener) Open(offset int64, dst, src []byte) (Segment, error) {
	if err := checkSegment(offset, dst, src); err != nil {
		return Segment{}, fmt.Errorf("open: %w", err)
	}
	g := o.g
	seg := Segment{Offset: offset, Length: int64(len(src))}
	if len(src) == 0 {
		return seg, nil
	}
	// GHASH the ciphertext before decrypting over it: GCM over an empty
	// plaintext with src as additional data gives
	// tag = ((Y_s ⊕ len(A)) · H) ⊕ E_K(IV||1).
	var buf [TagSize]byte
	t := g.std.Seal(buf[:0], g.iv[:], nil, src)
	seg.hash = gfMul(gfLoad(t).xor(g.mask), g.hInv).xor(lengthBlock(int64(len(src)), 0))
	ctr := g.counterBlock(firstCounter(offset))
	cipher.NewCTR(g.block, ctr[:]).XORKeyStream(dst[:len(src)], src)
	return seg, nil
}

// Verify checks the tag of the file made of segs against the file key's tag.
// The segments must cover the file from offset 0 without gaps or overlaps,
// in any order. It returns an error wrapping ErrAuthentication when the
// content or the key was altered.
func (o *Opener) Verify(segs []Segment) error {
	a, err := o.g.combine(segs)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return o.verify(a)
}

func (o *Opener) verify(a *ghashAcc) error {
	t := o.g.tag(a)
	if subtle.ConstantTimeCompare(t[:], o.tag[:]) != 1 {
		return fmt.Errorf("verify %d bytes: %w", a.end, ErrAuthentication)
	}
	return nil
}
