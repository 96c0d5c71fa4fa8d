package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStamp(t *testing.T) {
	s := StampOf("recordings", "a/rec.mp4", `"0123abcd"`, "")
	// The README tells operators to check a stamp with sha256sum of these texts.
	src := sha256.Sum256([]byte("s3://recordings/a/rec.mp4"))
	ver := sha256.Sum256([]byte("0123abcd\n"))
	if s.Source != hex.EncodeToString(src[:]) || s.Version != hex.EncodeToString(ver[:]) {
		t.Fatalf("StampOf = %+v", s)
	}
	notes := s.Notes()
	if utf8.RuneCountInString(notes) > 255 {
		t.Fatalf("notes have %d characters, DRACOON keeps 255", utf8.RuneCountInString(notes))
	}
	if got, ok := ParseStamp(notes); !ok || got != s {
		t.Fatalf("ParseStamp(%q) = %+v, %v", notes, got, ok)
	}
	if StampOf("recordings", "a/rec.mp4", "0123abcd", "") != s {
		t.Error("quotes around the ETag change the stamp")
	}

	tests := []struct {
		name                string
		notes               string
		sameSource, matches bool
	}{
		{"itself", notes, true, true},
		{"another version", StampOf("recordings", "a/rec.mp4", `"ffff"`, "").Notes(), true, false},
		{"a version id", StampOf("recordings", "a/rec.mp4", `"0123abcd"`, "v2").Notes(), true, false},
		{"another key", StampOf("recordings", "b/rec.mp4", `"0123abcd"`, "").Notes(), false, false},
		{"another bucket", StampOf("other", "a/rec.mp4", `"0123abcd"`, "").Notes(), false, false},
		{"no notes", "", false, false},
		{"edited notes", notes + " (checked)", false, false},
		{"user text first", "see " + notes, false, false},
		{"upper-case digest", strings.ToUpper(notes), false, false},
		{"short digest", notes[:len(notes)-1], false, false},
		{"another format", strings.Replace(notes, "/1 ", "/2 ", 1), false, false},
	}
	for _, tt := range tests {
		if got := s.SameSource(tt.notes); got != tt.sameSource {
			t.Errorf("%s: SameSource = %v, want %v", tt.name, got, tt.sameSource)
		}
		if got := s.Matches(tt.notes); got != tt.matches {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.matches)
		}
	}
}

func TestAlternateName(t *testing.T) {
	v1 := StampOf("b", "k/rec.mp4", `"e1"`, "")
	v2 := StampOf("b", "k/rec.mp4", `"e2"`, "")
	long := strings.Repeat("x", 200) + ".mp4"
	names := []string{"2017-09-11_20-24-43_123_rec.mp4", "rec", ".mp4", "archive.tar.gz", long,
		strings.Repeat("y", 138) + ".mp4", strings.Repeat("z", 70) + "." + strings.Repeat("e", 20)}
	for _, name := range names {
		a1, a2 := AlternateName(name, v1), AlternateName(name, v2)
		if a1 == name || a1 == a2 {
			t.Errorf("%q: alternates %q and %q are not names of their own", name, a1, a2)
		}
		if AlternateName(name, v1) != a1 {
			t.Errorf("%q: AlternateName is not deterministic", name)
		}
		if err := CheckNodeName(a1); err != nil {
			t.Errorf("%q: alternate %q: %v", name, a1, err)
		}
		fam := NameFamily(name)
		if fam == "" || !strings.HasPrefix(name, fam) || !strings.HasPrefix(a1, fam) || !strings.HasPrefix(a2, fam) {
			t.Errorf("%q: family %q is not a prefix of the name and its alternates %q, %q", name, fam, a1, a2)
		}
	}
	if got := AlternateName("2017-09-11_20-24-43_123_rec.mp4", v1); !strings.HasPrefix(got, "2017-09-11_20-24-43_123_rec_") ||
		!strings.HasSuffix(got, ".mp4") || len(got) != len("2017-09-11_20-24-43_123_rec.mp4")+9 {
		t.Errorf("alternate = %q, want the name with _ and 8 hex digits before the extension", got)
	}
}
