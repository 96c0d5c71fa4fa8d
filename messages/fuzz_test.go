package messages_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

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
