package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxExtensionLength is the longest file extension FileNames keeps whole
// when it shortens a name.
const maxExtensionLength = 16

// FileNames returns the DRACOON file name of every source key of a job, by
// key. Names are deterministic, so that a redelivered job finds the files an
// earlier delivery uploaded:
//
//	<meeting date, UTC, 2006-01-02_15-04-05>_<meeting id>_<base name of the key>
//
// e.g. "2017-09-11_20-24-43_123_video.mp4"; a zero date or meeting id is
// left out with its "_". Characters DRACOON refuses are
// replaced by "_", and a name longer than MaxNodeNameLength characters is
// shortened in its middle, keeping the extension. Keys of one job whose
// names would be equal get the first 8 hex digits of the SHA-256 of the
// whole key before the extension, so each key has a name of its own. Every
// name passes CheckNodeName.
func FileNames(j *Job) map[string]string {
	var prefix string
	if !j.Meeting.Date.IsZero() {
		prefix = j.Meeting.Date.UTC().Format("2006-01-02_15-04-05") + "_"
	}
	if j.Meeting.ID != 0 {
		prefix += strconv.FormatInt(j.Meeting.ID, 10) + "_"
	}
	names := make(map[string]string, len(j.Source.Keys))
	uses := map[string]int{}
	for _, k := range j.Source.Keys {
		n := fileName(prefix, path.Base(k), "")
		names[k] = n
		uses[n]++
	}
	for _, k := range j.Source.Keys {
		if uses[names[k]] > 1 {
			sum := sha256.Sum256([]byte(k))
			names[k] = fileName(prefix, path.Base(k), "_"+hex.EncodeToString(sum[:4]))
		}
	}
	return names
}

// fileName sanitizes prefix+base, inserts tag before the extension and
// shortens the result to MaxNodeNameLength characters.
func fileName(prefix, base, tag string) string {
	if base == "/" || base == "." || base == ".." {
		base = "recording"
	}
	stem, ext := splitExt(base)
	stem, ext = sanitizeName(prefix+stem), sanitizeName(ext)
	room := MaxNodeNameLength - utf8.RuneCountInString(tag) - utf8.RuneCountInString(ext)
	if r := []rune(stem); len(r) > room {
		// Keep the start (date, meeting id) and the end of the base name.
		head := room / 2
		stem = string(r[:head]) + "~" + string(r[len(r)-(room-head-1):])
	}
	name := stem + tag + ext
	name = strings.TrimRight(name, ".")
	if name == "" {
		name = "recording"
	}
	return name
}

// splitExt splits a base name into its stem and its extension, which is
// empty when longer than maxExtensionLength or the whole name.
func splitExt(base string) (stem, ext string) {
	ext = path.Ext(base)
	if utf8.RuneCountInString(ext) > maxExtensionLength || ext == base {
		ext = ""
	}
	return strings.TrimSuffix(base, ext), ext
}

// sanitizeName replaces every character CheckNodeName refuses by "_".
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || invisible(r) || strings.ContainsRune(illegalNameChars, r) {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(s, "_"))
}
