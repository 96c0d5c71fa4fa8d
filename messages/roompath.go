package messages

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxNodeNameLength is the longest node name DRACOON accepts, in characters.
const MaxNodeNameLength = 150

// illegalNameChars are the characters DRACOON refuses in node names.
const illegalNameChars = `\<>:"|?*/`

// MaxRoomPathDepth is the most rooms a room path names, one inside the other.
const MaxRoomPathDepth = 10

// NormalizeRoomPath checks a room path relative to the instance's parent room
// and returns it with leading and trailing "/" removed, in Unicode NFC, so
// that two spellings of one name (composed or not) are one room. Every
// segment must be a name DRACOON accepts for a room, and the path at most
// MaxRoomPathDepth deep.
func NormalizeRoomPath(p string) (string, error) {
	trimmed := strings.Trim(p, "/")
	if trimmed == "" {
		return "", fmt.Errorf("room path %q is empty", p)
	}
	if !utf8.ValidString(trimmed) {
		return "", fmt.Errorf("room path %q is not valid UTF-8", p)
	}
	trimmed = norm.NFC.String(trimmed)
	segs := strings.Split(trimmed, "/")
	if len(segs) > MaxRoomPathDepth {
		return "", fmt.Errorf("room path %q is %d rooms deep, the limit is %d", trimmed, len(segs), MaxRoomPathDepth)
	}
	for i, s := range segs {
		if err := CheckNodeName(s); err != nil {
			return "", fmt.Errorf("segment %d of %q: %w", i+1, trimmed, err)
		}
	}
	return trimmed, nil
}

// SplitRoomPath returns the segments of a normalized room path.
func SplitRoomPath(p string) []string { return strings.Split(p, "/") }

// CheckNodeName reports why DRACOON would refuse name as a node name, or nil.
func CheckNodeName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("name %q is not allowed", name)
	case utf8.RuneCountInString(name) > MaxNodeNameLength:
		return fmt.Errorf("name is %d characters long, the limit is %d", utf8.RuneCountInString(name), MaxNodeNameLength)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not valid UTF-8", name)
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("name %q must not start with '-'", name)
	case strings.HasSuffix(name, "."):
		return fmt.Errorf("name %q must not end with '.'", name)
	}
	if i := strings.IndexAny(name, illegalNameChars); i >= 0 {
		return fmt.Errorf("name %q contains the illegal character %q", name, name[i])
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("name %q contains a control character", name)
		}
		if invisible(r) {
			return fmt.Errorf("name %q contains the invisible formatting character %U (bidirectional override, zero-width or the like)", name, r)
		}
	}
	if reservedName(name) {
		return fmt.Errorf("name %q is reserved", name)
	}
	return nil
}

// invisible reports a formatting character (Unicode category Cf: the
// bidirectional overrides and isolates, zero-width spaces and joiners, the
// byte order mark, the soft hyphen): it shows nothing, or reorders what it
// shows, so a name holding one can pose as another.
func invisible(r rune) bool { return unicode.Is(unicode.Cf, r) }

// reservedName reports device names (CON, PRN, AUX, NUL, COM1-9, LPT1-9),
// alone or followed by an extension, in any case.
func reservedName(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		return base[3] >= '1' && base[3] <= '9'
	}
	return false
}

// Template variables that room paths may contain.
const (
	VarInstance    = "$instance"
	VarMeetingType = "$meetingType"
)

// ExpandPath replaces $instance and $meetingType in a room path template.
// It fails when the template uses $meetingType and the meeting type has no name.
func ExpandPath(tmpl, instance, meetingType string) (string, error) {
	if strings.Contains(tmpl, VarMeetingType) && strings.TrimSpace(meetingType) == "" {
		return "", fmt.Errorf("path %q uses %s but the meeting type has no name", tmpl, VarMeetingType)
	}
	for _, v := range []struct{ name, value string }{{VarInstance, instance}, {VarMeetingType, meetingType}} {
		if strings.Contains(tmpl, v.name) && strings.Contains(v.value, "/") {
			return "", fmt.Errorf("path %q: the value of %s (%q) contains '/'", tmpl, v.name, v.value)
		}
	}
	r := strings.NewReplacer(VarInstance, instance, VarMeetingType, meetingType)
	return r.Replace(tmpl), nil
}
