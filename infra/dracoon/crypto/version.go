package crypto

import (
	stdcrypto "crypto"
	"fmt"
)

// Version strings as they appear on the wire.
const (
	// KeyPairVersionA is a legacy RSA-2048 user key pair.
	KeyPairVersionA = "A"
	// KeyPairVersionRSA4096 is an RSA-4096 user key pair, the default.
	KeyPairVersionRSA4096 = "RSA-4096"
	// FileKeyVersionA is a file key wrapped for a KeyPairVersionA key.
	FileKeyVersionA = "A"
	// FileKeyVersionRSA4096 is a file key wrapped for a KeyPairVersionRSA4096 key.
	FileKeyVersionRSA4096 = "RSA-4096/AES-256-GCM"
	// PlainFileKeyVersion is the version this package writes into plain file
	// keys. Some SDKs write "A" instead; both are accepted.
	PlainFileKeyVersion = "AES-256-GCM"
	// plainFileKeyVersionA is the label the Java, C# and Swift SDKs use.
	plainFileKeyVersionA = "A"
)

// keyVersion holds what a key pair version implies.
type keyVersion struct {
	name    string
	bits    int            // RSA modulus size
	fileKey string         // version of file keys wrapped with this key
	mgf1    stdcrypto.Hash // MGF1 hash for RSA-OAEP; the OAEP hash is always SHA-256
}

// lookupKeyVersion returns the parameters of a key pair version.
func lookupKeyVersion(v string) (keyVersion, error) {
	switch v {
	case KeyPairVersionA:
		return keyVersion{KeyPairVersionA, 2048, FileKeyVersionA, stdcrypto.SHA1}, nil
	case KeyPairVersionRSA4096:
		return keyVersion{KeyPairVersionRSA4096, 4096, FileKeyVersionRSA4096, stdcrypto.SHA256}, nil
	}
	return keyVersion{}, fmt.Errorf("key pair version %q: %w", v, ErrBadVersion)
}

// lookupFileKeyVersion returns the key pair version that wraps file keys of
// version v.
func lookupFileKeyVersion(v string) (keyVersion, error) {
	switch v {
	case FileKeyVersionA:
		return lookupKeyVersion(KeyPairVersionA)
	case FileKeyVersionRSA4096:
		return lookupKeyVersion(KeyPairVersionRSA4096)
	}
	return keyVersion{}, fmt.Errorf("file key version %q: %w", v, ErrBadVersion)
}

// checkPlainVersion accepts both plain file key labels.
func checkPlainVersion(v string) error {
	if v == PlainFileKeyVersion || v == plainFileKeyVersionA {
		return nil
	}
	return fmt.Errorf("plain file key version %q: %w", v, ErrBadVersion)
}
