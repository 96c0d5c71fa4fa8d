package crypto

import "encoding/binary"

// GF(2^128) arithmetic in GCM's bit order (NIST SP 800-38D §6.3), used only
// for the few per-segment combine steps: the bulk GHASH over the data runs in
// the standard library's hardware-accelerated GCM (see gcmstream.go).

// gfElement is an element of GF(2^128) as GCM writes it: hi holds bytes 0-7
// and lo bytes 8-15 of the block, big-endian, so that the coefficient of x^0
// is the most significant bit of hi.
type gfElement struct{ hi, lo uint64 }

// gfOne is the multiplicative identity.
func gfOne() gfElement { return gfElement{hi: 1 << 63} }

// gfLoad reads a 16-byte block.
func gfLoad(b []byte) gfElement {
	return gfElement{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:16])}
}

// put writes x as a 16-byte block into b.
func (x gfElement) put(b []byte) {
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:16], x.lo)
}

func (x gfElement) xor(y gfElement) gfElement { return gfElement{x.hi ^ y.hi, x.lo ^ y.lo} }

// lengthBlock returns the GHASH length block for aadBytes of additional data
// and ctBytes of ciphertext.
func lengthBlock(aadBytes, ctBytes int64) gfElement {
	return gfElement{hi: uint64(aadBytes) * 8, lo: uint64(ctBytes) * 8}
}

// gfMul returns x·y. It runs in constant time: the secret hash key is one of
// its operands.
func gfMul(x, y gfElement) gfElement {
	var z gfElement
	v := y
	for _, word := range [2]uint64{x.hi, x.lo} {
		for i := 63; i >= 0; i-- {
			mask := -((word >> uint(i)) & 1)
			z.hi ^= v.hi & mask
			z.lo ^= v.lo & mask
			// v = v·x: a right shift in GCM's bit order, reduced by
			// x^128 = x^7 + x^2 + x + 1 (0xe1 in the top byte).
			carry := -(v.lo & 1)
			v.lo = v.lo>>1 | v.hi<<63
			v.hi = v.hi>>1 ^ 0xe100000000000000&carry
		}
	}
	return z
}

// gfPow returns x^n.
func gfPow(x gfElement, n uint64) gfElement {
	r := gfOne()
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			r = gfMul(r, x)
		}
		x = gfMul(x, x)
	}
	return r
}

// gfInv returns x^-1 = x^(2^128-2) for a non-zero x.
func gfInv(x gfElement) gfElement {
	r := x // x^(2^1-1)
	for range 126 {
		r = gfMul(gfMul(r, r), x) // x^(2^(i+1)-1)
	}
	return gfMul(r, r) // x^(2^128-2)
}
