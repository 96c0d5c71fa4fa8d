package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestFileNames(t *testing.T) {
	date := time.Date(2017, 9, 11, 22, 24, 43, 0, time.FixedZone("CEST", 2*3600))
	long := strings.Repeat("x", 200) + ".mp4"
	tests := []struct {
		name string
		keys []string
		want map[string]string
	}{
		{"plain", []string{"rec/video.mp4"}, map[string]string{"rec/video.mp4": "2017-09-11_20-24-43_42_video.mp4"}},
		{"illegal characters", []string{`a/b:c|d?.mp4`}, map[string]string{`a/b:c|d?.mp4`: "2017-09-11_20-24-43_42_b_c_d_.mp4"}},
		{"trailing dot", []string{"x/name."}, map[string]string{"x/name.": "2017-09-11_20-24-43_42_name"}},
		{"same base name", []string{"a/v.mp4", "b/v.mp4"}, map[string]string{
			"a/v.mp4": "2017-09-11_20-24-43_42_v_" + hash8("a/v.mp4") + ".mp4",
			"b/v.mp4": "2017-09-11_20-24-43_42_v_" + hash8("b/v.mp4") + ".mp4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &Job{Meeting: Meeting{ID: 42, Date: date}, Source: Source{Keys: tt.keys}}
			got := FileNames(j)
			for k, w := range tt.want {
				if got[k] != w {
					t.Errorf("%q: %q, want %q", k, got[k], w)
				}
			}
		})
	}
	j := &Job{Meeting: Meeting{ID: 42, Date: date}, Source: Source{Keys: []string{long, "k/" + long, "CON", "-x", "\x00bad\xff"}}}
	seen := map[string]bool{}
	for k, n := range FileNames(j) {
		if err := CheckNodeName(n); err != nil {
			t.Errorf("%q -> %q: %v", k, n, err)
		}
		if utf8.RuneCountInString(n) > MaxNodeNameLength {
			t.Errorf("%q: too long", n)
		}
		if seen[n] {
			t.Errorf("name %q given twice", n)
		}
		seen[n] = true
		if strings.HasSuffix(k, ".mp4") && !strings.HasSuffix(n, ".mp4") {
			t.Errorf("%q lost its extension: %q", k, n)
		}
	}
	if a, b := FileNames(j), FileNames(j); len(a) != len(b) || a[long] != b[long] {
		t.Error("names are not deterministic")
	}
}

func hash8(k string) string {
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:4])
}

func TestFileNames_without_meeting(t *testing.T) {
	j := &Job{Source: Source{Keys: []string{"a/rec.mp4"}}}
	if got := FileNames(j)["a/rec.mp4"]; got != "rec.mp4" {
		t.Errorf("got %q, want rec.mp4", got)
	}
}
