package messages_test

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/messages"
)

var testNow = time.Date(2017, 9, 11, 20, 24, 43, 0, time.UTC)

// validMessage returns the original service's example message as a generic
// document that a test case can change.
func validMessage(t testing.TB) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../testdata/messages/original-example.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// at walks a dotted path of object keys ("storage.extra") in doc.
func at(doc map[string]any, path string) map[string]any {
	cur := doc
	for _, k := range strings.Split(path, ".") {
		if k == "aws_s3" {
			k = "aws.s3"
		}
		cur = cur[k].(map[string]any)
	}
	return cur
}

func target(doc map[string]any, i int) map[string]any {
	return at(doc, "storage.extra.dracoon")["targets"].([]any)[i].(map[string]any)
}

func TestParseJob_original_example(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../testdata/messages/original-example.json")
	if err != nil {
		t.Fatal(err)
	}
	job, err := messages.ParseJob(data, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if job.Source.Bucket != "24s-public" || len(job.Source.Keys) != 1 || job.Source.Keys[0] != "sandbox/test-video.mp4" {
		t.Errorf("source = %+v", job.Source)
	}
	if job.Instance != "24slocal.new.com" || job.Meeting.ID != 22980 || job.Meeting.Type.Name != "live now" || job.Meeting.User.Email == "" {
		t.Errorf("job = %+v", job)
	}
	if len(job.Targets) != 1 || job.Targets[0].Path != "some room/sub-room" || job.Targets[0].ExpireAt == nil ||
		job.Targets[0].ExpireAt.Format(time.RFC3339) != "2021-12-26T20:24:43Z" {
		t.Errorf("targets = %+v", job.Targets)
	}
	if len(job.ID) != 32 {
		t.Errorf("id = %q", job.ID)
	}
	again, _ := messages.ParseJob(data, testNow.Add(time.Hour))
	if again.ID != job.ID {
		t.Errorf("job id changed with the clock: %q != %q", again.ID, job.ID)
	}
}

func TestParseJob_accepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(doc map[string]any)
		check  func(t *testing.T, j *messages.Job)
	}{
		{
			name:   "keys_as_single_string",
			change: func(d map[string]any) { at(d, "storage.extra.aws_s3")["keys"] = "a.mp4" },
			check:  func(t *testing.T, j *messages.Job) { wantKeys(t, j, "a.mp4") },
		},
		{
			name: "keys_nested_arrays_flattened_empty_dropped_deduplicated",
			change: func(d map[string]any) {
				at(d, "storage.extra.aws_s3")["keys"] = []any{"a.mp4", []any{"b.m4a", "", []any{"c.txt"}}, "", "a.mp4"}
			},
			check: func(t *testing.T, j *messages.Job) { wantKeys(t, j, "a.mp4", "b.m4a", "c.txt") },
		},
		{
			name:   "expiration_absent",
			change: func(d map[string]any) { delete(target(d, 0), "expiration") },
			check:  func(t *testing.T, j *messages.Job) { wantNoExpiry(t, j) },
		},
		{
			name:   "expiration_null",
			change: func(d map[string]any) { target(d, 0)["expiration"] = nil },
			check:  func(t *testing.T, j *messages.Job) { wantNoExpiry(t, j) },
		},
		{
			name: "templates_expanded",
			change: func(d map[string]any) {
				target(d, 0)["path"] = "/$instance/$meetingType/"
			},
			check: func(t *testing.T, j *messages.Job) {
				if j.Targets[0].Path != "24slocal.new.com/live now" {
					t.Errorf("path = %q", j.Targets[0].Path)
				}
			},
		},
		{
			name: "same_target_twice_merged",
			change: func(d map[string]any) {
				ts := at(d, "storage.extra.dracoon")
				ts["targets"] = append(ts["targets"].([]any), map[string]any{"path": "/some room/sub-room", "expiration": "4 YEARS 3 months 1 day 2 weeks"})
			},
			check: func(t *testing.T, j *messages.Job) {
				if len(j.Targets) != 1 {
					t.Errorf("targets = %+v", j.Targets)
				}
			},
		},
		{
			name:   "no_targets_in_message",
			change: func(d map[string]any) { delete(at(d, "storage.extra"), "dracoon") },
			check: func(t *testing.T, j *messages.Job) {
				if len(j.Targets) != 0 {
					t.Errorf("targets = %+v", j.Targets)
				}
			},
		},
		{
			name: "meeting_type_id_timezone_customer",
			change: func(d map[string]any) {
				at(d, "meeting.type")["id"] = 14
				at(d, "meeting")["timezone"] = "Europe/Amsterdam"
				d["extra"] = map[string]any{"customerId": 12345}
			},
			check: func(t *testing.T, j *messages.Job) {
				if j.Meeting.Type.ID == nil || *j.Meeting.Type.ID != 14 || j.Meeting.Timezone != "Europe/Amsterdam" || j.CustomerID != "12345" {
					t.Errorf("meeting = %+v, customer = %q", j.Meeting, j.CustomerID)
				}
			},
		},
		{
			name:   "date_with_offset",
			change: func(d map[string]any) { at(d, "meeting")["date"] = "2021-03-04T05:06:07.5+02:00" },
			check: func(t *testing.T, j *messages.Job) {
				if !j.Meeting.Date.Equal(time.Date(2021, 3, 4, 3, 6, 7, 5e8, time.UTC)) {
					t.Errorf("date = %s", j.Meeting.Date)
				}
			},
		},
		{
			name:   "domain_lowercased_for_lookup",
			change: func(d map[string]any) { at(d, "instance")["domain"] = " 24sLocal.New.COM " },
			check: func(t *testing.T, j *messages.Job) {
				if j.Instance != "24slocal.new.com" {
					t.Errorf("instance = %q", j.Instance)
				}
			},
		},
		{
			name:   "unknown_fields_ignored",
			change: func(d map[string]any) { d["future"] = map[string]any{"x": 1} },
			check:  func(t *testing.T, j *messages.Job) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := validMessage(t)
			tt.change(doc)
			data, _ := json.Marshal(doc)
			job, err := messages.ParseJob(data, testNow)
			if err != nil {
				t.Fatalf("ParseJob: %v", err)
			}
			tt.check(t, job)
		})
	}
}

func wantKeys(t *testing.T, j *messages.Job, keys ...string) {
	t.Helper()
	if strings.Join(j.Source.Keys, ",") != strings.Join(keys, ",") {
		t.Errorf("keys = %q, want %q", j.Source.Keys, keys)
	}
}

func wantNoExpiry(t *testing.T, j *messages.Job) {
	t.Helper()
	if j.Targets[0].ExpireAt != nil || j.Targets[0].Expiration != "" {
		t.Errorf("target = %+v, want no expiration", j.Targets[0])
	}
}

func TestParseJob_rejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(doc map[string]any)
		raw    string // used instead of the changed document when set
		want   []string
	}{
		{name: "not_json", raw: "{", want: []string{"message: invalid JSON"}},
		{name: "trailing_data", raw: "{} {}", want: []string{"message: invalid JSON: data after"}},
		{name: "not_an_object", raw: "[]", want: []string{"message: must be an object, got an array"}},
		{name: "empty_object", raw: "{}", want: []string{"storage: is required", "instance: is required", "meeting: is required"}},
		{name: "too_large", raw: `{"x":"` + strings.Repeat("a", messages.MaxJobMessageSize) + `"}`, want: []string{"message: is 65544 bytes, the limit is 65536"}},
		{name: "storage_type_other", change: func(d map[string]any) { at(d, "storage")["type"] = "s3" }, want: []string{`storage.type: must be "dracoon", got "s3"`}},
		{name: "storage_type_missing", change: func(d map[string]any) { delete(at(d, "storage"), "type") }, want: []string{"storage.type: is required"}},
		{name: "storage_type_number", change: func(d map[string]any) { at(d, "storage")["type"] = 1 }, want: []string{"storage.type: must be a string, got a number"}},
		{name: "extra_missing", change: func(d map[string]any) { delete(at(d, "storage"), "extra") }, want: []string{"storage.extra: is required"}},
		{name: "s3_missing", change: func(d map[string]any) { delete(at(d, "storage.extra"), "aws.s3") }, want: []string{`storage.extra["aws.s3"]: is required`}},
		{name: "bucket_empty", change: func(d map[string]any) { at(d, "storage.extra.aws_s3")["bucket"] = " " }, want: []string{`storage.extra["aws.s3"].bucket: must not be empty`}},
		{name: "bucket_missing", change: func(d map[string]any) { delete(at(d, "storage.extra.aws_s3"), "bucket") }, want: []string{`storage.extra["aws.s3"].bucket: is required`}},
		{name: "keys_missing", change: func(d map[string]any) { delete(at(d, "storage.extra.aws_s3"), "keys") }, want: []string{`storage.extra["aws.s3"].keys: is required`}},
		{name: "keys_all_empty", change: func(d map[string]any) { at(d, "storage.extra.aws_s3")["keys"] = []any{"", []any{""}} }, want: []string{`storage.extra["aws.s3"].keys: must contain at least one non-empty key`}},
		{name: "keys_number", change: func(d map[string]any) { at(d, "storage.extra.aws_s3")["keys"] = []any{"a", 5} }, want: []string{`storage.extra["aws.s3"].keys[1]: must be a string or an array of strings, got a number`}},
		{name: "targets_not_array", change: func(d map[string]any) { at(d, "storage.extra.dracoon")["targets"] = "x" }, want: []string{"storage.extra.dracoon.targets: must be an array, got a string"}},
		{name: "target_not_object", change: func(d map[string]any) { at(d, "storage.extra.dracoon")["targets"] = []any{"x"} }, want: []string{"storage.extra.dracoon.targets[0]: must be an object, got a string"}},
		{name: "target_path_missing", change: func(d map[string]any) { delete(target(d, 0), "path") }, want: []string{"storage.extra.dracoon.targets[0].path: is required"}},
		{name: "target_path_dotdot", change: func(d map[string]any) { target(d, 0)["path"] = "a/../b" }, want: []string{`storage.extra.dracoon.targets[0].path: segment 2 of "a/../b": name ".." is not allowed`}},
		{name: "target_path_reserved", change: func(d map[string]any) { target(d, 0)["path"] = "rooms/LPT1" }, want: []string{`storage.extra.dracoon.targets[0].path: segment 2 of "rooms/LPT1": name "LPT1" is reserved`}},
		{name: "expiration_hour", change: func(d map[string]any) { target(d, 0)["expiration"] = "1 hour" }, want: []string{`storage.extra.dracoon.targets[0].expiration: unknown unit "hour" (want year, month, week or day)`}},
		{name: "expiration_forever", change: func(d map[string]any) { target(d, 0)["expiration"] = "forever" }, want: []string{`storage.extra.dracoon.targets[0].expiration: "forever" is not a sequence of "<number> <unit>" phrases`}},
		{name: "expiration_no_space", change: func(d map[string]any) { target(d, 0)["expiration"] = "10days" }, want: []string{`storage.extra.dracoon.targets[0].expiration: "10days" is not a sequence`}},
		{name: "expiration_empty", change: func(d map[string]any) { target(d, 0)["expiration"] = "" }, want: []string{"storage.extra.dracoon.targets[0].expiration: must not be empty"}},
		{name: "expiration_number", change: func(d map[string]any) { target(d, 0)["expiration"] = 5 }, want: []string{"storage.extra.dracoon.targets[0].expiration: must be a string, got a number"}},
		{name: "expiration_zero", change: func(d map[string]any) { target(d, 0)["expiration"] = "0 days" }, want: []string{"storage.extra.dracoon.targets[0].expiration: count must be positive"}},
		{name: "meeting_type_without_name_in_template", change: func(d map[string]any) {
			target(d, 0)["path"] = "$meetingType"
			delete(at(d, "meeting"), "type")
		}, want: []string{"storage.extra.dracoon.targets[0].path: path \"$meetingType\" uses $meetingType but the meeting type has no name"}},
		{name: "duplicate_target_other_expiration", change: func(d map[string]any) {
			ts := at(d, "storage.extra.dracoon")
			ts["targets"] = append(ts["targets"].([]any), map[string]any{"path": "Some Room/sub-room", "expiration": "1 day"})
		}, want: []string{`storage.extra.dracoon.targets[1].path: room "Some Room/sub-room" is listed twice with different expirations`}},
		{name: "meeting_id_zero", change: func(d map[string]any) { at(d, "meeting")["id"] = 0 }, want: []string{"meeting.id: must not be zero"}},
		{name: "meeting_id_missing", change: func(d map[string]any) { delete(at(d, "meeting"), "id") }, want: []string{"meeting.id: is required"}},
		{name: "meeting_id_string", change: func(d map[string]any) { at(d, "meeting")["id"] = "22980" }, want: []string{"meeting.id: must be an integer, got a string"}},
		{name: "meeting_id_fraction", change: func(d map[string]any) { at(d, "meeting")["id"] = 1.5 }, want: []string{"meeting.id: must be an integer, got 1.5"}},
		{name: "meeting_type_id_bad", change: func(d map[string]any) { at(d, "meeting.type")["id"] = "any" }, want: []string{`meeting.type.id: must be an integer, got "any"`}},
		{name: "meeting_duration_negative", change: func(d map[string]any) { at(d, "meeting.type")["duration"] = -5 }, want: []string{"meeting.type.duration: must not be negative, got -5"}},
		{name: "meeting_date_missing", change: func(d map[string]any) { delete(at(d, "meeting"), "date") }, want: []string{"meeting.date: is required"}},
		{name: "meeting_date_not_rfc3339", change: func(d map[string]any) { at(d, "meeting")["date"] = "2017-09-11 20:24:43" }, want: []string{`meeting.date: "2017-09-11 20:24:43" is not an RFC 3339 date-time`}},
		{name: "user_email_missing", change: func(d map[string]any) { delete(at(d, "meeting.user"), "email") }, want: []string{"meeting.user.email: is required"}},
		{name: "user_missing", change: func(d map[string]any) { delete(at(d, "meeting"), "user") }, want: []string{"meeting.user.email: is required"}},
		{name: "user_not_object", change: func(d map[string]any) { at(d, "meeting")["user"] = "bob" }, want: []string{"meeting.user: must be an object, got a string"}},
		{name: "timezone_unknown", change: func(d map[string]any) { at(d, "meeting")["timezone"] = "Mars/Olympus" }, want: []string{`meeting.timezone: "Mars/Olympus" is not an IANA time zone name`}},
		{name: "domain_missing", change: func(d map[string]any) { delete(at(d, "instance"), "domain") }, want: []string{"instance.domain: is required"}},
		{name: "domain_with_slash", change: func(d map[string]any) { at(d, "instance")["domain"] = "a/../b" }, want: []string{`instance.domain: "a/../b" is not a domain name`}},
		{name: "domain_dotdot", change: func(d map[string]any) { at(d, "instance")["domain"] = ".." }, want: []string{`instance.domain: ".." is not a domain name: label 1 is empty`}},
		{name: "domain_nul", change: func(d map[string]any) { at(d, "instance")["domain"] = "a\x00b.example" }, want: []string{`instance.domain: "a\x00b.example" is not a domain name: '\x00' is not a letter`}},
		{name: "domain_newline", change: func(d map[string]any) { at(d, "instance")["domain"] = "a.example\nb" }, want: []string{`instance.domain: "a.example\nb" is not a domain name`}},
		{name: "domain_at", change: func(d map[string]any) { at(d, "instance")["domain"] = "user@a.example" }, want: []string{`instance.domain: "user@a.example" is not a domain name: '@'`}},
		{name: "domain_fullwidth", change: func(d map[string]any) { at(d, "instance")["domain"] = "ｅｘａｍｐｌｅ.com" }, want: []string{`instance.domain: "ｅｘａｍｐｌｅ.com" is not a domain name: 'ｅ' is not a letter, digit or '-' (write internationalized names in punycode)`}},
		{name: "domain_hyphen_label", change: func(d map[string]any) { at(d, "instance")["domain"] = "-a.example" }, want: []string{`label "-a" starts or ends with '-'`}},
		{name: "domain_too_long", change: func(d map[string]any) { at(d, "instance")["domain"] = strings.Repeat("a.", 130) + "com" }, want: []string{"instance.domain: is 263 characters long, a domain name has at most 253"}},
		{name: "bucket_upper_case", change: func(d map[string]any) { at(d, "storage.extra.aws_s3")["bucket"] = "Recordings" }, want: []string{`storage.extra["aws.s3"].bucket: "Recordings" is not an S3 bucket name: 'R'`}},
		{name: "bucket_short", change: func(d map[string]any) { at(d, "storage.extra.aws_s3")["bucket"] = "ab" }, want: []string{`"ab" is not an S3 bucket name: it has 2 characters`}},
		{name: "key_too_long", change: func(d map[string]any) { at(d, "storage.extra.aws_s3")["keys"] = []any{strings.Repeat("k", 1025)} }, want: []string{`storage.extra["aws.s3"].keys[0]: is 1025 bytes long, S3 keys have at most 1024`}},
		{name: "too_many_keys", change: func(d map[string]any) {
			keys := []any{}
			for i := range messages.MaxKeys + 1 {
				keys = append(keys, "k"+strconv.Itoa(i))
			}
			at(d, "storage.extra.aws_s3")["keys"] = keys
		}, want: []string{`storage.extra["aws.s3"].keys: has 101 keys, the limit is 100`}},
		{name: "too_many_targets", change: func(d map[string]any) {
			ts := []any{}
			for i := range messages.MaxTargets + 1 {
				ts = append(ts, map[string]any{"path": "r" + strconv.Itoa(i)})
			}
			at(d, "storage.extra.dracoon")["targets"] = ts
		}, want: []string{"storage.extra.dracoon.targets: has 33 targets, the limit is 32"}},
		{name: "target_path_too_deep", change: func(d map[string]any) { target(d, 0)["path"] = strings.Repeat("r/", 10) + "r" }, want: []string{`storage.extra.dracoon.targets[0].path: room path "` + strings.Repeat("r/", 10) + `r" is 11 rooms deep, the limit is 10`}},
		{name: "target_path_bidi_override", change: func(d map[string]any) { target(d, 0)["path"] = "rooms/evil\u202emp4.exe" }, want: []string{`storage.extra.dracoon.targets[0].path: segment 2 of "rooms/evil\u202emp4.exe": name "evil\u202emp4.exe" contains the invisible formatting character U+202E`}},
		{name: "target_path_zero_width", change: func(d map[string]any) { target(d, 0)["path"] = "ad\u200bmin" }, want: []string{`contains the invisible formatting character U+200B`}},
		{name: "customer_id_object", change: func(d map[string]any) { d["extra"] = map[string]any{"customerId": map[string]any{}} }, want: []string{"extra.customerId: must be a string or a number, got an object"}},
		{name: "several_problems_all_reported", change: func(d map[string]any) {
			at(d, "meeting")["id"] = 0
			target(d, 0)["expiration"] = "1 hour"
			target(d, 0)["path"] = "a//b"
		}, want: []string{"meeting.id: must not be zero", "targets[0].path: segment 2", `targets[0].expiration: unknown unit "hour"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.raw == "" {
				doc := validMessage(t)
				tt.change(doc)
				data, _ = json.Marshal(doc)
			}
			job, err := messages.ParseJob(data, testNow)
			if err == nil {
				t.Fatalf("ParseJob accepted the message: %+v", job)
			}
			var verr *messages.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %v is a %T, want *messages.ValidationError", err, err)
			}
			if len(verr.Fields) != len(tt.want) {
				t.Errorf("got %d field errors, want %d: %v", len(verr.Fields), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var fe *messages.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("errors.As(*FieldError) failed on %v", err)
			}
		})
	}
}

func TestMergeTargets(t *testing.T) {
	at := func(y int) *time.Time { v := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC); return &v }
	a := []messages.Target{{Path: "x", Expiration: "1 year", ExpireAt: at(2026)}, {Path: "y"}}
	b := []messages.Target{{Path: "X", Expiration: "2 years", ExpireAt: at(2027)}, {Path: "Y", Expiration: "1 day", ExpireAt: at(2025)}, {Path: "z"}}
	got := messages.MergeTargets(a, b)
	if len(got) != 3 || got[0].Path != "x" || got[0].Expiration != "2 years" || got[1].ExpireAt != nil || got[2].Path != "z" {
		t.Fatalf("MergeTargets = %+v", got)
	}
	if len(a) != 2 || a[0].Expiration != "1 year" {
		t.Fatal("MergeTargets changed its input")
	}
}

// TestParseJob_room_names_in_NFC: two spellings of one room name (composed
// and decomposed) are one target, in NFC.
func TestParseJob_room_names_in_NFC(t *testing.T) {
	t.Parallel()
	doc := validMessage(t)
	at(doc, "storage.extra.dracoon")["targets"] = []any{map[string]any{"path": "Caf\u00e9/a"}, map[string]any{"path": "Cafe\u0301/a"}}
	data, _ := json.Marshal(doc)
	job, err := messages.ParseJob(data, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Targets) != 1 || job.Targets[0].Path != "Caf\u00e9/a" {
		t.Fatalf("targets %+q, want one, %q", job.Targets, "Caf\u00e9/a")
	}
}

// malformed is one message of the corpus testdata/messages/malformed.json:
// a message each rule of the job message refuses, and what it must say.
type malformed struct {
	Name    string `json:"name"`
	Field   string `json:"field"`  // the JSON path the rejection names
	Reason  string `json:"reason"` // a part of its reason; empty: any
	Message string `json:"message"`
}

// loadMalformed reads the corpus of malformed job messages.
func loadMalformed(t *testing.T) []malformed {
	t.Helper()
	raw, err := os.ReadFile("../testdata/messages/malformed.json")
	if err != nil {
		t.Fatal(err)
	}
	var list []malformed
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	return list
}

// TestParseJob_malformed_corpus: every message of the corpus is rejected
// with a reason naming its field.
func TestParseJob_malformed_corpus(t *testing.T) {
	t.Parallel()
	list := loadMalformed(t)
	if len(list) < 100 {
		t.Fatalf("the corpus has %d messages, want at least 100", len(list))
	}
	for _, m := range list {
		job, err := messages.ParseJob([]byte(m.Message), testNow)
		var verr *messages.ValidationError
		switch {
		case err == nil:
			t.Errorf("%s: accepted: %+v", m.Name, job)
		case !errors.As(err, &verr):
			t.Errorf("%s: %T %v, want a *ValidationError", m.Name, err, err)
		case !strings.Contains(err.Error(), m.Field+": "+m.Reason) && !(m.Reason != "" && strings.Contains(err.Error(), m.Field+": ") && strings.Contains(err.Error(), m.Reason)):
			t.Errorf("%s: %v; want %q with %q", m.Name, err, m.Field, m.Reason)
		}
	}
}
