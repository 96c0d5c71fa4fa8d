package crypto

import "github.com/recording-storage/recording-storage/infra/errclass"

// Errors returned by this package. They are wrapped with context; test for
// them with [errors.Is]. Every one is of class [errclass.Permanent]: the key,
// the password or the content is wrong, and repeating the call cannot help.
var (
	// ErrBadVersion reports an unknown or mismatched key pair, file key or
	// plain file key version.
	ErrBadVersion = errclass.New(errclass.Permanent, "unsupported version")
	// ErrBadPEM reports a key that is not the expected PEM block.
	ErrBadPEM = errclass.New(errclass.Permanent, "bad PEM")
	// ErrBadASN1 reports a key whose DER content cannot be parsed.
	ErrBadASN1 = errclass.New(errclass.Permanent, "bad ASN.1")
	// ErrUnsupportedAlgorithm reports a key encrypted or shaped with an
	// algorithm or parameter this package does not implement.
	ErrUnsupportedAlgorithm = errclass.New(errclass.Permanent, "unsupported algorithm")
	// ErrWrongPassword reports a private key that does not decrypt with the
	// given password.
	ErrWrongPassword = errclass.New(errclass.Permanent, "wrong password")
	// ErrKeyMismatch reports a private key that does not belong to the
	// public key it was checked against.
	ErrKeyMismatch = errclass.New(errclass.Permanent, "private key does not match public key")
	// ErrBadFileKey reports a file key with a missing or malformed field.
	ErrBadFileKey = errclass.New(errclass.Permanent, "bad file key")
	// ErrKeyUsed reports a plain file key that already carries a tag, given
	// to encrypt: it has sealed a plaintext, and sealing another one with the
	// same key and IV would break AES-GCM (it would let whoever sees both
	// ciphertexts forge content). Use a fresh key from [GenerateFileKey].
	ErrKeyUsed = errclass.New(errclass.Permanent, "file key already used: it carries a tag")
	// ErrUnwrap reports an encrypted file key that the private key cannot
	// decrypt.
	ErrUnwrap = errclass.New(errclass.Permanent, "cannot decrypt file key")
	// ErrAuthentication reports content whose GCM tag does not match: the
	// content or the file key was altered, or they do not belong together.
	ErrAuthentication = errclass.New(errclass.Permanent, "message authentication failed")
	// ErrBadSegment reports a segment at a misaligned offset, or segments
	// that do not cover a file exactly once from offset 0.
	ErrBadSegment = errclass.New(errclass.Permanent, "bad segment")
	// ErrFileTooLarge reports content longer than [MaxFileSize].
	ErrFileTooLarge = errclass.New(errclass.Permanent, "file too large for AES-GCM")
)
