package messages_test

import (
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/messages"
)

func TestNormalizeRoomPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "simple", in: "some room/sub-room", want: "some room/sub-room"},
		{name: "slashes_trimmed", in: "//a/b/", want: "a/b"},
		{name: "unicode", in: "Aufzeichnungen/Müller 2024", want: "Aufzeichnungen/Müller 2024"},
		{name: "dots_inside", in: "v1.2/x.y", want: "v1.2/x.y"},
		{name: "max_length", in: strings.Repeat("ä", 150), want: strings.Repeat("ä", 150)},
		{name: "empty", in: "", wantErr: "is empty"},
		{name: "only_slashes", in: "///", wantErr: "is empty"},
		{name: "empty_segment", in: "a//b", wantErr: "segment 2"},
		{name: "blank_segment", in: "a/ /b", wantErr: "empty name"},
		{name: "dot", in: "a/./b", wantErr: `"." is not allowed`},
		{name: "dotdot", in: "../b", wantErr: `".." is not allowed`},
		{name: "too_long", in: strings.Repeat("x", 151), wantErr: "151 characters"},
		{name: "backslash", in: `a\b`, wantErr: "illegal character"},
		{name: "colon", in: "a:b", wantErr: "illegal character"},
		{name: "asterisk", in: "a*", wantErr: "illegal character"},
		{name: "question", in: "a?", wantErr: "illegal character"},
		{name: "quote", in: `"a"`, wantErr: "illegal character"},
		{name: "lt_gt_pipe", in: "a<b>|c", wantErr: "illegal character"},
		{name: "control", in: "a\x01b", wantErr: "control character"},
		{name: "leading_dash", in: "-a", wantErr: "must not start with '-'"},
		{name: "trailing_dot", in: "a/b.", wantErr: "must not end with '.'"},
		{name: "reserved_con", in: "CON", wantErr: "reserved"},
		{name: "reserved_lower", in: "x/nul", wantErr: "reserved"},
		{name: "reserved_with_ext", in: "aux.mp4", wantErr: "reserved"},
		{name: "reserved_com1", in: "COM1", wantErr: "reserved"},
		{name: "reserved_lpt9", in: "lpt9.txt", wantErr: "reserved"},
		{name: "com0_allowed", in: "COM0", want: "COM0"},
		{name: "com10_allowed", in: "COM10", want: "COM10"},
		{name: "console_allowed", in: "CONSOLE", want: "CONSOLE"},
		{name: "invalid_utf8", in: "a\xffb", wantErr: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := messages.NormalizeRoomPath(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NormalizeRoomPath(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeRoomPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestExpandPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, tmpl, instance, meetingType string
		want, wantErr                     string
	}{
		{name: "both", tmpl: "$instance/$meetingType", instance: "acme.example", meetingType: "live now", want: "acme.example/live now"},
		{name: "inside_a_name", tmpl: "rec-$meetingType-2024", meetingType: "sales", want: "rec-sales-2024"},
		{name: "none", tmpl: "fixed/room", want: "fixed/room"},
		{name: "meeting_type_without_name", tmpl: "x/$meetingType", wantErr: "has no name"},
		{name: "slash_in_value", tmpl: "$meetingType", meetingType: "a/b", wantErr: "contains '/'"},
		{name: "unused_slash_value_ok", tmpl: "$instance", instance: "i", meetingType: "a/b", want: "i"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := messages.ExpandPath(tt.tmpl, tt.instance, tt.meetingType)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ExpandPath = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ExpandPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
