// Package crypto implements DRACOON's client-side encryption ("Triple-Crypt")
// byte-compatibly with the official DRACOON SDKs: user key pairs (RSA with a
// PBES2-encrypted PKCS#8 private key), file keys wrapped with RSA-OAEP, and
// file content as one AES-256-GCM message per file.
//
// The private key is expensive to unlock (PBKDF2 with up to 1,300,000
// iterations): call [Unlock] once and reuse the returned [*PrivateKey], which
// is safe for concurrent use.
//
// Content is encrypted by a [Sealer] in 16-byte-aligned segments that may be
// processed in any order and on several goroutines; [Sealer.Tag] combines the
// segments into the file's GCM tag. An [Opener] does the reverse and
// [Opener.Verify] authenticates the whole file. [EncryptStream] and
// [DecryptStream] are sequential helpers on top of them.
//
// A [PlainFileKey] seals one file only: [NewSealer] refuses a key that
// already carries a tag.
//
// The package uses the standard library and the project's errclass only.
// Its errors are of class errclass.Permanent. Secrets never appear in
// errors, in the output of the fmt package, or in JSON and text encodings;
// [PlainFileKey.ExportJSON] is the one explicit way to write a plain file
// key.
package crypto
