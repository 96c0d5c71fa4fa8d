package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// PBES2 (RFC 8018) for PKCS#8 EncryptedPrivateKeyInfo (RFC 5958). The
// standard library parses PKCS#8 but not its encrypted form, so the ASN.1
// shapes are declared here.

// Object identifiers used by PBES2 private keys.
func oidPBES2() asn1.ObjectIdentifier  { return asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13} }
func oidPBKDF2() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12} }

// oidHMAC returns the hmacWith* identifier with the given last arc.
func oidHMAC(arc int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 2, 840, 113549, 2, arc} }

// oidAESCBC returns the aesNNN-CBC identifier with the given last arc.
func oidAESCBC(arc int) asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, arc}
}

// Limits on parameters read from a key, so that a hostile key cannot make
// unlocking run for minutes.
const (
	maxIterations = 10_000_000
	maxSaltLen    = 1024
)

// Parameters this package writes, matching the current official SDKs.
const (
	// DefaultIterations is the PBKDF2 iteration count of generated keys.
	DefaultIterations = 1_300_000
	pbkdf2SaltLen     = 20
	aesKeyLen         = 32
)

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"` // absent means hmacWithSHA1
}

// pbes2Key is a parsed EncryptedPrivateKeyInfo.
type pbes2Key struct {
	prf        func() hash.Hash
	salt       []byte
	iterations int
	keyLen     int
	iv         []byte
	ciphertext []byte
}

// unmarshalExact parses exactly one DER value from b into v.
func unmarshalExact(b []byte, v any, what string) error {
	rest, err := asn1.Unmarshal(b, v)
	if err != nil {
		// encoding/asn1 errors dump Go struct tags; the shape is enough.
		return fmt.Errorf("%s: %w: not a valid DER encoding", what, ErrBadASN1)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%s: %w: trailing data", what, ErrBadASN1)
	}
	return nil
}

// parsePBES2 parses a DER EncryptedPrivateKeyInfo and checks that this
// package can decrypt it.
func parsePBES2(der []byte) (*pbes2Key, error) {
	var info encryptedPrivateKeyInfo
	if err := unmarshalExact(der, &info, "encrypted private key"); err != nil {
		return nil, err
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2()) {
		return nil, fmt.Errorf("encryption %v: %w", info.Algorithm.Algorithm, ErrUnsupportedAlgorithm)
	}
	var params pbes2Params
	if err := unmarshalExact(info.Algorithm.Parameters.FullBytes, &params, "PBES2 parameters"); err != nil {
		return nil, err
	}
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2()) {
		return nil, fmt.Errorf("key derivation %v: %w", params.KeyDerivationFunc.Algorithm, ErrUnsupportedAlgorithm)
	}
	var kdf pbkdf2Params
	if err := unmarshalExact(params.KeyDerivationFunc.Parameters.FullBytes, &kdf, "PBKDF2 parameters"); err != nil {
		return nil, err
	}
	k := &pbes2Key{salt: kdf.Salt, iterations: kdf.Iterations, ciphertext: info.EncryptedData}
	if k.iterations < 1 || k.iterations > maxIterations {
		return nil, fmt.Errorf("PBKDF2 iteration count %d: %w", k.iterations, ErrUnsupportedAlgorithm)
	}
	if len(k.salt) == 0 || len(k.salt) > maxSaltLen {
		return nil, fmt.Errorf("PBKDF2 salt of %d bytes: %w", len(k.salt), ErrUnsupportedAlgorithm)
	}
	var err error
	if k.prf, err = lookupPRF(kdf.PRF.Algorithm); err != nil {
		return nil, err
	}
	if k.keyLen, err = lookupAESCBC(params.EncryptionScheme.Algorithm); err != nil {
		return nil, err
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != k.keyLen {
		return nil, fmt.Errorf("PBKDF2 key length %d for a %d-byte AES key: %w", kdf.KeyLength, k.keyLen, ErrUnsupportedAlgorithm)
	}
	if err := unmarshalExact(params.EncryptionScheme.Parameters.FullBytes, &k.iv, "AES-CBC parameters"); err != nil {
		return nil, err
	}
	if len(k.iv) != aes.BlockSize {
		return nil, fmt.Errorf("AES-CBC IV of %d bytes: %w", len(k.iv), ErrBadASN1)
	}
	if len(k.ciphertext) == 0 || len(k.ciphertext)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("encrypted data of %d bytes: %w", len(k.ciphertext), ErrBadASN1)
	}
	return k, nil
}

// lookupPRF maps a PBKDF2 PRF identifier to its hash; an absent one means
// hmacWithSHA1.
func lookupPRF(oid asn1.ObjectIdentifier) (func() hash.Hash, error) {
	switch {
	case len(oid) == 0, oid.Equal(oidHMAC(7)):
		return sha1.New, nil
	case oid.Equal(oidHMAC(8)):
		return sha256.New224, nil
	case oid.Equal(oidHMAC(9)):
		return sha256.New, nil
	case oid.Equal(oidHMAC(10)):
		return sha512.New384, nil
	case oid.Equal(oidHMAC(11)):
		return sha512.New, nil
	case oid.Equal(oidHMAC(12)):
		return sha512.New512_224, nil
	case oid.Equal(oidHMAC(13)):
		return sha512.New512_256, nil
	}
	return nil, fmt.Errorf("PBKDF2 PRF %v: %w", oid, ErrUnsupportedAlgorithm)
}

// lookupAESCBC returns the key length of an AES-CBC identifier.
func lookupAESCBC(oid asn1.ObjectIdentifier) (int, error) {
	switch {
	case oid.Equal(oidAESCBC(2)):
		return 16, nil
	case oid.Equal(oidAESCBC(22)):
		return 24, nil
	case oid.Equal(oidAESCBC(42)):
		return 32, nil
	}
	return 0, fmt.Errorf("encryption scheme %v: %w", oid, ErrUnsupportedAlgorithm)
}

// decrypt returns the DER PrivateKeyInfo, or false when password does not
// decrypt the key. A wrong password is recognised by the CBC padding and by
// the plaintext not being one DER SEQUENCE; a false positive needs both to
// hold by chance.
func (k *pbes2Key) decrypt(password []byte) ([]byte, bool) {
	dk, err := pbkdf2.Key(k.prf, string(password), k.salt, k.iterations, k.keyLen)
	if err != nil {
		return nil, false
	}
	block, err := aes.NewCipher(dk)
	clear(dk)
	if err != nil {
		return nil, false
	}
	plain := make([]byte, len(k.ciphertext))
	cipher.NewCBCDecrypter(block, k.iv).CryptBlocks(plain, k.ciphertext)
	n := int(plain[len(plain)-1])
	if n == 0 || n > aes.BlockSize || !bytes.Equal(plain[len(plain)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		clear(plain)
		return nil, false
	}
	plain = plain[:len(plain)-n]
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(plain, &seq); err != nil || len(rest) != 0 || seq.Tag != asn1.TagSequence {
		clear(plain)
		return nil, false
	}
	return plain, true
}

// passwordEncodings returns the byte forms of password to try, in order:
// its UTF-8 bytes, then, when they differ, its legacy bytes (see
// legacyPasswordBytes). A password that is not valid UTF-8 is tried as it is.
func passwordEncodings(password string) [][]byte {
	out := [][]byte{[]byte(password)}
	if !utf8.ValidString(password) {
		return out
	}
	if legacy := legacyPasswordBytes(password); !bytes.Equal(legacy, out[0]) {
		out = append(out, legacy)
	}
	return out
}

// legacyPasswordBytes returns the bytes older SDKs derived the key from: the
// Java SDK before its UTF-8 fix gave the password's UTF-16 code units to
// BouncyCastle's PBKDF2, which keeps the low byte of each unit. So a
// character up to U+00FF gives its ISO-8859-1 byte, "€" (U+20AC) gives 0xAC,
// and a character beyond U+FFFF gives the low bytes of its two surrogates.
// password must be valid UTF-8.
func legacyPasswordBytes(password string) []byte {
	out := make([]byte, 0, len(password))
	for _, r := range password {
		if r > 0xFFFF {
			hi, lo := utf16.EncodeRune(r)
			out = append(out, byte(hi), byte(lo))
			continue
		}
		out = append(out, byte(r))
	}
	return out
}

// encryptPBES2 encrypts a DER PrivateKeyInfo the way the official SDKs do:
// PBKDF2 with HMAC-SHA1 written by omission, a 20-byte salt, the UTF-8
// password and AES-256-CBC. It returns a DER EncryptedPrivateKeyInfo.
func encryptPBES2(random io.Reader, plain []byte, password string, iterations int) ([]byte, error) {
	salt := make([]byte, pbkdf2SaltLen)
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(random, salt); err != nil {
		return nil, fmt.Errorf("read random salt: %w", err)
	}
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, fmt.Errorf("read random IV: %w", err)
	}
	dk, err := pbkdf2.Key(sha1.New, password, salt, iterations, aesKeyLen)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	clear(dk)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(append(make([]byte, 0, len(plain)+n), plain...), bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(padded, padded)

	kdf, err := asn1.Marshal(pbkdf2Params{Salt: salt, Iterations: iterations})
	if err != nil {
		return nil, fmt.Errorf("marshal PBKDF2 parameters: %w", err)
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, fmt.Errorf("marshal IV: %w", err)
	}
	params, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2(), Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: oidAESCBC(42), Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, fmt.Errorf("marshal PBES2 parameters: %w", err)
	}
	der, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBES2(), Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: padded,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal encrypted private key: %w", err)
	}
	return der, nil
}
