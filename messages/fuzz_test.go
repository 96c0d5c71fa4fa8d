package messages_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/recording-storage/recording-storage/messages"
)

// FuzzParseJob checks that no input makes the parser panic, that every
// rejection is a *ValidationError, and that every accepted job is normalized.
func FuzzParseJob(f *testing.F) {
	if data, err := os.ReadFile("../testdata/messages/original-example.json"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, `"x"`, `{"storage":{"type":"dracoon","extra":{"aws.s3":{"bucket":"b","keys":[["a"],""]}}}}`,
		`{"storage":{"type":"dracoon","extra":{"dracoon":{"targets":[{"path":"$instance/$meetingType","expiration":"1 year 13 months"}]},"aws.s3":{"bucket":"b","keys":"k"}}},"meeting":{"id":1e3,"date":"2020-02-29T00:00:00Z","user":{"email":"e"},"type":{"id":"7","name":"n"}},"instance":{"domain":"d"}}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := messages.ParseJob(data, now)
		if err != nil {
			var verr *messages.ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if job.Source.Bucket == "" || len(job.Source.Keys) == 0 || job.Instance == "" || job.Meeting.ID == 0 || job.Meeting.User.Email == "" {
			t.Fatalf("accepted an incomplete job: %+v", job)
		}
		for _, tg := range job.Targets {
			if _, err := messages.NormalizeRoomPath(tg.Path); err != nil {
				t.Fatalf("accepted target %q: %v", tg.Path, err)
			}
			if tg.ExpireAt != nil && tg.ExpireAt.Before(now) {
				t.Fatalf("expiration %s before now", tg.ExpireAt)
			}
		}
		if _, err := json.Marshal(job); err != nil {
			t.Fatalf("cannot encode job: %v", err)
		}
	})
}

// FuzzParseExpiration checks that no phrase makes the parser panic and that
// an accepted phrase prints in a canonical form that parses to the same
// period and moves a date forward.
func FuzzParseExpiration(f *testing.F) {
	for _, s := range []string{"4 years 3 months 2 weeks 1 day", "1 Year", "10days", "0 days", "1 hour", "", "9999999999 years", "1 month 1 month"} {
		f.Add(s)
	}
	now := time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := messages.ParseExpiration(s)
		if err != nil {
			return
		}
		again, err := messages.ParseExpiration(p.String())
		if err != nil || again.String() != p.String() {
			t.Fatalf("%q prints as %q, which parses to %q (%v)", s, p.String(), again.String(), err)
		}
		if at := p.AddTo(now); !at.After(now) {
			t.Fatalf("%q moves %s to %s", s, now, at)
		}
	})
}

// FuzzNormalizeRoomPath checks that no path makes the check panic, and that
// an accepted path is normalized for good: NFC, within the depth, every
// segment a name DRACOON takes, and the same when normalized again.
func FuzzNormalizeRoomPath(f *testing.F) {
	for _, s := range []string{"some room/sub-room", "/a/b/", "a//b", "Cafe\u0301", "a/../b", "evil\u202eexe", strings.Repeat("r/", 12)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n, err := messages.NormalizeRoomPath(p)
		if err != nil {
			return
		}
		again, err := messages.NormalizeRoomPath(n)
		if err != nil || again != n {
			t.Fatalf("%q normalizes to %q, then to %q (%v)", p, n, again, err)
		}
		segs := messages.SplitRoomPath(n)
		if len(segs) > messages.MaxRoomPathDepth || !norm.NFC.IsNormalString(n) {
			t.Fatalf("%q normalizes to %q: %d segments, NFC %v", p, n, len(segs), norm.NFC.IsNormalString(n))
		}
		for _, s := range segs {
			if err := messages.CheckNodeName(s); err != nil {
				t.Fatalf("%q normalizes to %q with segment %q: %v", p, n, s, err)
			}
		}
	})
}
