package crypto

import "errors"

// Errors returned by this package. They are wrapped with context; test for
// them with [errors.Is].
var (
	// ErrBadVersion reports an unknown or mismatched key pair, file key or
	// plain file key version.
	ErrBadVersion = errors.New("unsupported version")
	// ErrBadPEM reports a key that is not the expected PEM block.
	ErrBadPEM = errors.New("bad PEM")
	// ErrBadASN1 reports a key whose DER content cannot be parsed.
	ErrBadASN1 = errors.New("bad ASN.1")
	// ErrUnsupportedAlgorithm reports a key encrypted or shaped with an
	// algorithm or parameter this package does not implement.
	ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")
	// ErrWrongPassword reports a private key that does not decrypt with the
	// given password.
	ErrWrongPassword = errors.New("wrong password")
	// ErrKeyMismatch reports a private key that does not belong to the
	// public key it was checked against.
	ErrKeyMismatch = errors.New("private key does not match public key")
	// ErrBadFileKey reports a file key with a missing or malformed field.
	ErrBadFileKey = errors.New("bad file key")
	// ErrUnwrap reports an encrypted file key that the private key cannot
	// decrypt.
	ErrUnwrap = errors.New("cannot decrypt file key")
	// ErrAuthentication reports content whose GCM tag does not match: the
	// content or the file key was altered, or they do not belong together.
	ErrAuthentication = errors.New("message authentication failed")
	// ErrBadSegment reports a segment at a misaligned offset, or segments
	// that do not cover a file exactly once from offset 0.
	ErrBadSegment = errors.New("bad segment")
	// ErrFileTooLarge reports content longer than [MaxFileSize].
	ErrFileTooLarge = errors.New("file too large for AES-GCM")
)
