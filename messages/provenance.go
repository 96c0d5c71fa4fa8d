package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// A Stamp is the provenance of a file the service uploaded: which source
// object and which version of it the file holds. It is kept in the file's
// DRACOON notes, which every node listing returns with the node, so that a
// later delivery can tell its own copy from another file of the same name.
//
// A stamp holds two SHA-256 digests, in lower-case hex:
//
//	Source  = SHA-256("s3://" + bucket + "/" + key)
//	Version = SHA-256(ETag without its quotes + "\n" + version id)
//
// where the version id is empty for a bucket without versioning. The notes
// read
//
//	recording-storage/1 source=sha256:<Source> version=sha256:<Version>
//
// and nothing else: notes that differ in any way (edited by a user, written
// by an older release of the service) are no stamp. Digests rather than the
// names themselves keep the notes within DRACOON's 255 characters whatever
// the key's length; an operator checks a file against a source with
// sha256sum (see the README).
type Stamp struct {
	Source  string // hex SHA-256 of the object's s3:// location
	Version string // hex SHA-256 of its ETag and version id
}

// stampPrefix opens the notes of a stamped file; its version changes only
// with the format.
const stampPrefix = "recording-storage/1 "

// alternateTagDigits is how many hex digits of the stamp's digest an
// alternate file name carries.
const alternateTagDigits = 8

// StampOf returns the stamp of a version of bucket/key: etag as S3 returns
// it (quotes included or not) and versionID empty without versioning.
func StampOf(bucket, key, etag, versionID string) Stamp {
	src := sha256.Sum256([]byte("s3://" + bucket + "/" + key))
	ver := sha256.Sum256([]byte(strings.Trim(etag, `"`) + "\n" + versionID))
	return Stamp{Source: hex.EncodeToString(src[:]), Version: hex.EncodeToString(ver[:])}
}

// Notes returns the stamp as the notes of a file.
func (s Stamp) Notes() string {
	return stampPrefix + "source=sha256:" + s.Source + " version=sha256:" + s.Version
}

// ParseStamp reads the stamp in a file's notes; ok is false when the notes
// are not exactly a stamp.
func ParseStamp(notes string) (s Stamp, ok bool) {
	rest, ok := strings.CutPrefix(notes, stampPrefix+"source=sha256:")
	if !ok {
		return Stamp{}, false
	}
	src, ver, ok := strings.Cut(rest, " version=sha256:")
	if !ok || !isDigest(src) || !isDigest(ver) {
		return Stamp{}, false
	}
	return Stamp{Source: src, Version: ver}, true
}

// isDigest reports whether s is a SHA-256 digest in lower-case hex.
func isDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SameSource reports whether notes carry a stamp of the source s names, of
// any version.
func (s Stamp) SameSource(notes string) bool {
	o, ok := ParseStamp(notes)
	return ok && o.Source == s.Source
}

// Matches reports whether notes carry exactly this stamp: the same source
// and the same version.
func (s Stamp) Matches(notes string) bool {
	o, ok := ParseStamp(notes)
	return ok && o == s
}

// AlternateName returns the name a version goes in under when its file name
// is held by a file of other provenance: name with "_" and the first
// alternateTagDigits hex digits of the SHA-256 of the stamp before the
// extension, shortened as FileNames shortens. It is the same on every
// delivery of that version, and differs between versions.
func AlternateName(name string, s Stamp) string {
	sum := sha256.Sum256([]byte(s.Notes()))
	return fileName("", name, "_"+hex.EncodeToString(sum[:])[:alternateTagDigits])
}

// NameFamily returns a text that name and every AlternateName of it start
// with, whatever the stamp: a lookup of the files whose names contain it
// finds a source's file under its name and under every alternate one.
func NameFamily(name string) string {
	stem, ext := splitExt(name)
	room := MaxNodeNameLength - 1 - alternateTagDigits - utf8.RuneCountInString(ext)
	if r := []rune(stem); len(r) > room/2 {
		// AlternateName keeps the first room/2 characters of a stem it
		// shortens, and all of one it does not.
		return string(r[:room/2])
	}
	return stem
}
