package crypto

import (
	stdcrypto "crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// Sizes of the parts of a file key.
const (
	FileKeySize = 32 // AES-256 key
	IVSize      = 12 // GCM nonce
	TagSize     = 16 // GCM tag
)

// FileKey is a file key encrypted for one user, as the DRACOON API stores
// it: Key is the RSA-OAEP-wrapped AES key, IV and Tag are in clear. All
// fields are standard base64 with padding. Tag is empty only while an upload
// has not finished.
type FileKey struct {
	Key     string `json:"key"`
	IV      string `json:"iv"`
	Version string `json:"version"`
	Tag     string `json:"tag,omitempty"`
}

// PlainFileKey is the secret AES-256-GCM key of one file, with its IV and,
// once the content is encrypted, its tag.
//
// Key never shows in clear by accident: the fmt verbs, JSON
// (MarshalJSON) and text encodings (MarshalText: YAML, log/slog) all write a
// redacted form. [PlainFileKey.ExportJSON] is the one way to write the SDKs'
// plain file key JSON with the key; [ImportPlainFileKeyJSON] and
// UnmarshalJSON read it. One gap is fmt's: it cannot call the methods of a
// value stored in an unexported struct field and prints its fields instead,
// so never keep a PlainFileKey (or a pointer to one) in an unexported field
// of a struct that may be printed.
type PlainFileKey struct {
	Key     []byte // 32 bytes
	IV      []byte // 12 bytes
	Tag     []byte // 16 bytes, or nil before the content is encrypted
	Version string // PlainFileKeyVersion, or "A" as some SDKs write it
}

// GenerateFileKey returns a fresh random file key without a tag. A nil
// random means crypto/rand. Use a new file key for every upload.
func GenerateFileKey(random io.Reader) (PlainFileKey, error) {
	if random == nil {
		random = rand.Reader
	}
	buf := make([]byte, FileKeySize+IVSize)
	if _, err := io.ReadFull(random, buf); err != nil {
		return PlainFileKey{}, fmt.Errorf("generate file key: %w", err)
	}
	return PlainFileKey{Key: buf[:FileKeySize:FileKeySize], IV: buf[FileKeySize:], Version: PlainFileKeyVersion}, nil
}

// check validates the version and the sizes of k; the tag may be missing
// unless needTag.
func (k PlainFileKey) check(needTag bool) error {
	if err := checkPlainVersion(k.Version); err != nil {
		return err
	}
	if len(k.Key) != FileKeySize {
		return fmt.Errorf("%w: key of %d bytes, want %d", ErrBadFileKey, len(k.Key), FileKeySize)
	}
	if len(k.IV) != IVSize {
		return fmt.Errorf("%w: IV of %d bytes, want %d", ErrBadFileKey, len(k.IV), IVSize)
	}
	if len(k.Tag) != TagSize && (needTag || len(k.Tag) != 0) {
		return fmt.Errorf("%w: tag of %d bytes, want %d", ErrBadFileKey, len(k.Tag), TagSize)
	}
	return nil
}

// plainFileKeyJSON is the SDKs' plain file key shape.
type plainFileKeyJSON struct {
	Key     string  `json:"key"`
	IV      string  `json:"iv"`
	Version string  `json:"version"`
	Tag     *string `json:"tag"`
}

// redacted replaces the key in every output of PlainFileKey but ExportJSON.
const redacted = "[REDACTED]"

// ExportJSON encodes k as the SDKs' plain file key JSON, with base64 fields
// and a null tag when k has none. The output contains the secret key: it is
// for the one place that must hand the key on (the crypto CLI), never for
// logs. It refuses a malformed key.
func (k PlainFileKey) ExportJSON() ([]byte, error) {
	if err := k.check(false); err != nil {
		return nil, fmt.Errorf("export plain file key: %w", err)
	}
	j := plainFileKeyJSON{Key: b64(k.Key), IV: b64(k.IV), Version: k.Version}
	if k.Tag != nil {
		t := b64(k.Tag)
		j.Tag = &t
	}
	return json.Marshal(j)
}

// ImportPlainFileKeyJSON decodes the SDKs' plain file key JSON, as
// ExportJSON writes it, and validates it. A tag that is null, empty or
// absent gives a key without tag.
func ImportPlainFileKeyJSON(b []byte) (PlainFileKey, error) {
	var j plainFileKeyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return PlainFileKey{}, fmt.Errorf("import plain file key: %w: %v", ErrBadFileKey, err)
	}
	if j.Key == redacted {
		return PlainFileKey{}, fmt.Errorf("import plain file key: %w: the key is redacted; write plain file keys with ExportJSON", ErrBadFileKey)
	}
	var out PlainFileKey
	var err error
	out.Version = j.Version
	if out.Key, err = unb64(j.Key, "key"); err != nil {
		return PlainFileKey{}, fmt.Errorf("import plain file key: %w", err)
	}
	if out.IV, err = unb64(j.IV, "iv"); err != nil {
		return PlainFileKey{}, fmt.Errorf("import plain file key: %w", err)
	}
	if j.Tag != nil && *j.Tag != "" {
		if out.Tag, err = unb64(*j.Tag, "tag"); err != nil {
			return PlainFileKey{}, fmt.Errorf("import plain file key: %w", err)
		}
	}
	if err := out.check(false); err != nil {
		return PlainFileKey{}, fmt.Errorf("import plain file key: %w", err)
	}
	return out, nil
}

// MarshalJSON writes k with the key redacted, in the shape of the SDKs'
// plain file key JSON: {"key":"[REDACTED]","iv":...,"version":...,"tag":...}.
// It never fails, so that a PlainFileKey in a log field cannot break the log
// entry. Use ExportJSON to write the key itself.
func (k PlainFileKey) MarshalJSON() ([]byte, error) {
	j := plainFileKeyJSON{Key: redacted, IV: b64(k.IV), Version: k.Version}
	if k.Tag != nil {
		t := b64(k.Tag)
		j.Tag = &t
	}
	return json.Marshal(j)
}

// MarshalText writes the redacted description, for YAML, log/slog and other
// encoders that use encoding.TextMarshaler.
func (k PlainFileKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalJSON decodes the SDKs' plain file key JSON and validates it, as
// ImportPlainFileKeyJSON does. It cannot read what MarshalJSON writes.
func (k *PlainFileKey) UnmarshalJSON(b []byte) error {
	out, err := ImportPlainFileKeyJSON(b)
	if err != nil {
		return err
	}
	*k = out
	return nil
}

// String describes k without revealing the key. The IV and the tag are not
// secret: the server stores them in clear with the encrypted key.
func (k PlainFileKey) String() string {
	tag := "none"
	if k.Tag != nil {
		tag = b64(k.Tag)
	}
	return fmt.Sprintf("crypto.PlainFileKey{version: %s, key: %s, iv: %s, tag: %s}", k.Version, redacted, b64(k.IV), tag)
}

// GoString describes k without revealing the key.
func (k PlainFileKey) GoString() string { return k.String() }

// Format writes the redacted description for every verb, so that no fmt
// verb prints the key.
func (k PlainFileKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// oaep returns the RSA-OAEP parameters of a key pair version: SHA-256 and an
// MGF1 hash that depends on the version.
func (v keyVersion) oaep() *rsa.OAEPOptions {
	return &rsa.OAEPOptions{Hash: stdcrypto.SHA256, MGFHash: v.mgf1}
}

// WrapFileKey encrypts k for the owner of p with the RSA-OAEP variant of p's
// version and labels the result with the matching file key version. k must
// carry its tag, because the server stores the tag with the encrypted key.
func (p *PublicKey) WrapFileKey(k PlainFileKey) (FileKey, error) {
	if err := k.check(true); err != nil {
		return FileKey{}, fmt.Errorf("wrap file key: %w", err)
	}
	wrapped, err := rsa.EncryptOAEPWithOptions(rand.Reader, p.key, k.Key, p.version.oaep())
	if err != nil {
		return FileKey{}, fmt.Errorf("wrap file key: %w", err)
	}
	return FileKey{Key: b64(wrapped), IV: b64(k.IV), Version: p.version.fileKey, Tag: b64(k.Tag)}, nil
}

// UnwrapFileKey decrypts a file key wrapped for k. The file key version must
// belong to k's version. The result has no tag when fk has none.
func (k *PrivateKey) UnwrapFileKey(fk FileKey) (PlainFileKey, error) {
	v, err := lookupFileKeyVersion(fk.Version)
	if err != nil {
		return PlainFileKey{}, fmt.Errorf("unwrap file key: %w", err)
	}
	if v.name != k.version.name {
		return PlainFileKey{}, fmt.Errorf("unwrap file key: %w: file key version %q needs a %q key pair, have %q",
			ErrBadVersion, fk.Version, v.name, k.version.name)
	}
	wrapped, err := unb64(fk.Key, "key")
	if err != nil {
		return PlainFileKey{}, fmt.Errorf("unwrap file key: %w", err)
	}
	out := PlainFileKey{Version: PlainFileKeyVersion}
	if out.IV, err = unb64(fk.IV, "iv"); err != nil {
		return PlainFileKey{}, fmt.Errorf("unwrap file key: %w", err)
	}
	if fk.Tag != "" {
		if out.Tag, err = unb64(fk.Tag, "tag"); err != nil {
			return PlainFileKey{}, fmt.Errorf("unwrap file key: %w", err)
		}
	}
	if out.Key, err = k.key.Decrypt(nil, wrapped, k.version.oaep()); err != nil {
		// The rsa error says nothing useful and must not become an oracle.
		return PlainFileKey{}, fmt.Errorf("unwrap file key: %w", ErrUnwrap)
	}
	if err := out.check(false); err != nil {
		return PlainFileKey{}, fmt.Errorf("unwrap file key: %w", err)
	}
	return out, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// unb64 decodes standard base64 with padding; field names the input in errors.
func unb64(s, field string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64", ErrBadFileKey, field)
	}
	return b, nil
}
