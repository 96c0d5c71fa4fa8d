package messages

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata"
	"unicode/utf8" // meeting.timezone is checked against the IANA database on any host
)

// MaxJobMessageSize is the largest inbound job message accepted, in bytes.
// Real messages are about 1 KiB; the bound keeps every message derived from a
// job far below the 256 KiB SQS limit.
const MaxJobMessageSize = 64 << 10

// StorageTypeDracoon is the only storage type this service handles.
const StorageTypeDracoon = "dracoon"

// JobVersion is the version of the Job payload.
const JobVersion = 1

// Job is a validated and normalized recording job: the inbound message after the
// parse stage, with expirations turned into dates.
type Job struct {
	Version    int       `json:"version"`
	ID         string    `json:"id"`         // stable for the same recording: instance, meeting, bucket and keys
	ReceivedAt time.Time `json:"receivedAt"` // the clock that expirations count from
	Instance   string    `json:"instance"`
	Source     Source    `json:"source"`
	Meeting    Meeting   `json:"meeting"`
	Targets    []Target  `json:"targets"`
	CustomerID string    `json:"customerId,omitempty"`
}

// Source says where the recording's files are in S3.
type Source struct {
	Bucket string   `json:"bucket"`
	Keys   []string `json:"keys"`
}

// Meeting describes the meeting that was recorded.
type Meeting struct {
	ID          int64       `json:"id"`
	Type        MeetingType `json:"type"`
	User        Person      `json:"user"`
	Guest       *Person     `json:"guest,omitempty"`
	Date        time.Time   `json:"date"`
	Timezone    string      `json:"timezone,omitempty"`
	Description string      `json:"description,omitempty"`
}

// MeetingType is the kind of meeting; its ID selects instance targets and its
// name fills the $meetingType template variable.
type MeetingType struct {
	ID       *int64 `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Duration int64  `json:"duration,omitempty"` // minutes
}

// Person is a meeting participant.
type Person struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Target is one DRACOON room a recording goes to.
type Target struct {
	Path       string     `json:"path"`                 // normalized, relative to the instance's parent room
	Expiration string     `json:"expiration,omitempty"` // canonical phrase, empty for none
	ExpireAt   *time.Time `json:"expireAt"`             // UTC, null for no expiration
}

// ParseJob parses and validates an inbound job message. now is the clock that
// expirations count from. A bad message gives a *ValidationError listing every
// rejected field.
func ParseJob(data []byte, now time.Time) (*Job, error) {
	if len(data) > MaxJobMessageSize {
		return nil, &ValidationError{Fields: []*FieldError{{Reason: fmt.Sprintf("is %d bytes, the limit is %d", len(data), MaxJobMessageSize)}}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &ValidationError{Fields: []*FieldError{{Reason: "invalid JSON: " + err.Error()}}}
	}
	if dec.More() {
		return nil, &ValidationError{Fields: []*FieldError{{Reason: "invalid JSON: data after the top-level value"}}}
	}

	var w walker
	now = now.UTC().Truncate(time.Second)
	job := &Job{Version: JobVersion, ReceivedAt: now}
	root := w.need(doc, "")

	storage := w.need(field(root, "", "storage"))
	tv, tp := field(storage, "storage", "type")
	if s, ok := w.str(tp, tv, true); ok && s != StorageTypeDracoon {
		w.errs.add(tp, "must be %q, got %q", StorageTypeDracoon, s)
	}
	extra := w.need(field(storage, "storage", "extra"))
	job.Source = w.source(quotedField(extra, "storage.extra", "aws.s3"))

	inst := w.need(field(root, "", "instance"))
	dv, dp := field(inst, "instance", "domain")
	if s, ok := w.str(dp, dv, true); ok {
		job.Instance = strings.ToLower(strings.TrimSpace(s)) // domains are case-insensitive
		if err := CheckDomain(job.Instance); err != nil {
			w.errs.add(dp, "%s", err)
		}
	}
	job.Meeting = w.meeting(field(root, "", "meeting"))

	if dracoon := w.opt(field(extra, "storage.extra", "dracoon")); dracoon != nil {
		tv, tp := field(dracoon, "storage.extra.dracoon", "targets")
		job.Targets = w.targets(tv, tp, job.Instance, job.Meeting.Type.Name, now)
	}

	if ex := w.opt(field(root, "", "extra")); ex != nil {
		v, p := field(ex, "extra", "customerId")
		switch c := v.(type) {
		case nil:
		case string:
			job.CustomerID = strings.TrimSpace(c)
		case json.Number:
			job.CustomerID = c.String()
		default:
			w.errs.add(p, "must be a string or a number, got %s", typeName(v))
		}
	}

	if err := w.errs.err(); err != nil {
		return nil, err
	}
	job.ID = jobID(job)
	return job, nil
}

func (w *walker) source(v any, path string) Source {
	var src Source
	obj := w.need(v, path)
	if obj == nil {
		return src
	}
	b, bp := field(obj, path, "bucket")
	if s, ok := w.str(bp, b, true); ok {
		src.Bucket = strings.TrimSpace(s)
		if err := CheckBucket(src.Bucket); err != nil {
			w.errs.add(bp, "%s", err)
		}
	}
	keys, p := field(obj, path, "keys")
	if keys == nil {
		w.errs.add(p, "is required")
		return src
	}
	src.Keys = w.flattenKeys(p, keys, nil)
	switch {
	case len(src.Keys) == 0:
		w.errs.add(p, "must contain at least one non-empty key")
	case len(src.Keys) > MaxKeys:
		w.errs.add(p, "has %d keys, the limit is %d", len(src.Keys), MaxKeys)
	}
	return src
}

// flattenKeys accepts a string or (nested) arrays of strings and returns the
// non-empty keys in order, without duplicates.
func (w *walker) flattenKeys(path string, v any, out []string) []string {
	switch t := v.(type) {
	case string:
		k := strings.TrimSpace(t)
		if k == "" {
			return out
		}
		if err := CheckKey(k); err != nil {
			w.errs.add(path, "%s", err) // kept, so that it counts as a key
		}
		for _, seen := range out {
			if seen == k {
				return out
			}
		}
		return append(out, k)
	case []any:
		for i, e := range t {
			out = w.flattenKeys(path+"["+strconv.Itoa(i)+"]", e, out)
		}
		return out
	default:
		w.errs.add(path, "must be a string or an array of strings, got %s", typeName(v))
		return out
	}
}

func (w *walker) meeting(v any, path string) Meeting {
	var m Meeting
	obj := w.need(v, path)
	if obj == nil {
		return m
	}
	idv, idp := field(obj, path, "id")
	if n, ok := w.integer(idp, idv, true); ok {
		if n == 0 {
			w.errs.add(idp, "must not be zero")
		}
		m.ID = n
	}
	m.Type = w.meetingType(field(obj, path, "type"))
	uv, up := field(obj, path, "user")
	if u := w.person(uv, up); u != nil {
		m.User = *u
	}
	if _, isObj := uv.(map[string]any); uv == nil || (isObj && m.User.Email == "") {
		w.errs.add(up+".email", "is required")
	}
	m.Guest = w.person(field(obj, path, "guest"))
	datev, datep := field(obj, path, "date")
	if s, ok := w.str(datep, datev, true); ok {
		d, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			w.errs.add(datep, "%q is not an RFC 3339 date-time (like 2017-09-11T20:24:43+00:00)", s)
		}
		m.Date = d
	}
	tzv, tzp := field(obj, path, "timezone")
	if tz, ok := w.str(tzp, tzv, false); ok && strings.TrimSpace(tz) != "" {
		m.Timezone = strings.TrimSpace(tz)
		if _, err := time.LoadLocation(m.Timezone); err != nil {
			w.errs.add(tzp, "%q is not an IANA time zone name", tz)
		}
	}
	if d, ok := w.optStr(field(obj, path, "description")); ok {
		m.Description = d
	}
	return m
}

// meetingType reads the optional meeting.type object.
func (w *walker) meetingType(v any, path string) MeetingType {
	var mt MeetingType
	t := w.opt(v, path)
	if t == nil {
		return mt
	}
	idv, idp := field(t, path, "id")
	if s, isStr := idv.(string); isStr {
		// Some producers send numeric ids as strings.
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			mt.ID = &n
		} else {
			w.errs.add(idp, "must be an integer, got %q", s)
		}
	} else if n, ok := w.integer(idp, idv, false); ok {
		mt.ID = &n
	}
	if name, ok := w.optStr(field(t, path, "name")); ok {
		mt.Name = strings.TrimSpace(name)
	}
	dv, dp := field(t, path, "duration")
	if n, ok := w.integer(dp, dv, false); ok {
		if n < 0 {
			w.errs.add(dp, "must not be negative, got %d", n)
		}
		mt.Duration = n
	}
	return mt
}

func (w *walker) person(v any, path string) *Person {
	obj := w.opt(v, path)
	if obj == nil {
		return nil
	}
	var p Person
	if name, ok := w.optStr(field(obj, path, "name")); ok {
		p.Name = strings.TrimSpace(name)
	}
	if email, ok := w.optStr(field(obj, path, "email")); ok {
		p.Email = strings.TrimSpace(email)
	}
	return &p
}

func (w *walker) targets(v any, path, instance, meetingType string, now time.Time) []Target {
	if v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		w.errs.add(path, "must be an array, got %s", typeName(v))
		return nil
	}
	if len(list) > MaxTargets {
		w.errs.add(path, "has %d targets, the limit is %d", len(list), MaxTargets)
		return nil
	}
	var out []Target
	for i, e := range list {
		tp := path + "[" + strconv.Itoa(i) + "]"
		obj := w.need(e, tp)
		if obj == nil {
			continue
		}
		pv, pp := field(obj, tp, "path")
		raw, ok := w.str(pp, pv, true)
		if !ok {
			continue
		}
		ev, ep := field(obj, tp, "expiration")
		var exp *string
		if ev != nil {
			if s, ok := w.str(ep, ev, false); ok {
				exp = &s
			} else {
				continue
			}
		}
		t, err := NewTarget(raw, exp, instance, meetingType, now)
		if err != nil {
			w.errs.addErr(tp, err)
			continue
		}
		out = mergeTarget(&w.errs, tp, out, t)
	}
	return out
}

// NewTarget expands and checks one target: tmpl is a room path that may use
// $instance and $meetingType, expiration is nil for none. A bad target gives a
// *ValidationError whose field paths are relative to the target ("path",
// "expiration").
func NewTarget(tmpl string, expiration *string, instance, meetingType string, now time.Time) (Target, error) {
	var errs fieldErrors
	var t Target
	expanded, err := ExpandPath(tmpl, instance, meetingType)
	if err == nil {
		t.Path, err = NormalizeRoomPath(expanded)
	}
	if err != nil {
		errs.add("path", "%s", err)
	}
	if expiration != nil {
		if p, err := ParseExpiration(*expiration); err != nil {
			errs.add("expiration", "%s", err)
		} else {
			at := p.AddTo(now)
			t.Expiration, t.ExpireAt = p.String(), &at
		}
	}
	if err := errs.err(); err != nil {
		return Target{}, err
	}
	return t, nil
}

// mergeTarget appends t unless a target with the same room path is present:
// an identical one is dropped, one with another expiration is an error.
func mergeTarget(errs *fieldErrors, path string, list []Target, t Target) []Target {
	for _, have := range list {
		if !strings.EqualFold(have.Path, t.Path) {
			continue
		}
		if have.Expiration != t.Expiration {
			errs.add(path+".path", "room %q is listed twice with different expirations (%q and %q)", t.Path, have.Expiration, t.Expiration)
		}
		return list
	}
	return append(list, t)
}

// Caps on a job, so that one message cannot make the service do without
// bound (see the README's message section).
const (
	// MaxKeys is the most source keys of one job.
	MaxKeys = 100
	// MaxKeyLength is the longest S3 key, in bytes (S3's own limit).
	MaxKeyLength = 1024
	// MaxTargets is the most targets a message names (instance rules add
	// theirs).
	MaxTargets = 32
	// MaxDomainLength is the longest DNS name.
	MaxDomainLength = 253
)

// CheckDomain reports why domain (lower case) is not a DNS name of ASCII
// letters, digits and hyphens in labels of 1 to 63 characters, or nil.
// Internationalized names are written in their ASCII (punycode) form.
func CheckDomain(domain string) error {
	if domain == "" {
		return fmt.Errorf("is empty")
	}
	if len(domain) > MaxDomainLength {
		return fmt.Errorf("is %d characters long, a domain name has at most %d", len(domain), MaxDomainLength)
	}
	for i, label := range strings.Split(domain, ".") {
		switch {
		case label == "":
			return fmt.Errorf("%q is not a domain name: label %d is empty", domain, i+1)
		case len(label) > 63:
			return fmt.Errorf("%q is not a domain name: label %d has %d characters, at most 63", domain, i+1, len(label))
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("%q is not a domain name: label %q starts or ends with '-'", domain, label)
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a domain name: %q is not a letter, digit or '-' (write internationalized names in punycode)", domain, r)
			}
		}
	}
	return nil
}

// CheckBucket reports why name is not an S3 bucket name (3 to 63 lower-case
// letters, digits, '.' and '-', starting and ending with a letter or digit),
// or nil.
func CheckBucket(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("%q is not an S3 bucket name: it has %d characters, S3 allows 3 to 63", name, len(name))
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("%q is not an S3 bucket name: %q is not a lower-case letter, digit, '.' or '-'", name, r)
		}
	}
	if first, last := name[0], name[len(name)-1]; first == '-' || first == '.' || last == '-' || last == '.' {
		return fmt.Errorf("%q is not an S3 bucket name: it must start and end with a letter or digit", name)
	}
	return nil
}

// CheckKey reports why key is not an S3 key this service reads, or nil.
func CheckKey(key string) error {
	switch {
	case len(key) > MaxKeyLength:
		return fmt.Errorf("is %d bytes long, S3 keys have at most %d", len(key), MaxKeyLength)
	case !utf8.ValidString(key):
		return fmt.Errorf("%q is not valid UTF-8", key)
	}
	return nil
}

// TargetSpec is a room path template and its expiration phrase (nil for
// none), as a command line names a target.
type TargetSpec struct {
	Path       string
	Expiration *string
}

// NewJob builds a job from its parts, as an operator names them on a
// command line rather than in a message, with the same checks as ParseJob;
// a bad part gives a *ValidationError whose paths name the parts
// ("instance", "bucket", "keys[0]", "targets[1].expiration", "meetingId").
// The job's meeting has only the id (zero: none).
func NewJob(instance, bucket string, keys []string, targets []TargetSpec, meetingID int64, now time.Time) (*Job, error) {
	var errs fieldErrors
	now = now.UTC().Truncate(time.Second)
	job := &Job{Version: JobVersion, ReceivedAt: now, Instance: strings.ToLower(strings.TrimSpace(instance)),
		Source: Source{Bucket: strings.TrimSpace(bucket)}, Meeting: Meeting{ID: meetingID}}
	switch {
	case job.Instance == "":
		errs.add("instance", "is required")
	default:
		if err := CheckDomain(job.Instance); err != nil {
			errs.add("instance", "%s", err)
		}
	}
	if job.Source.Bucket == "" {
		errs.add("bucket", "is required")
	} else if err := CheckBucket(job.Source.Bucket); err != nil {
		errs.add("bucket", "%s", err)
	}
	for i, k := range keys {
		if strings.TrimSpace(k) == "" {
			errs.add(fmt.Sprintf("keys[%d]", i), "is empty")
			continue
		}
		if err := CheckKey(k); err != nil {
			errs.add(fmt.Sprintf("keys[%d]", i), "%s", err)
			continue
		}
		job.Source.Keys = append(job.Source.Keys, k)
	}
	switch {
	case len(keys) == 0:
		errs.add("keys", "at least one key is required")
	case len(keys) > MaxKeys:
		errs.add("keys", "has %d keys, the limit is %d", len(keys), MaxKeys)
	}
	if len(targets) > MaxTargets {
		errs.add("targets", "has %d targets, the limit is %d", len(targets), MaxTargets)
	}
	if meetingID < 0 {
		errs.add("meetingId", "must not be negative, got %d", meetingID)
	}
	for i, t := range targets {
		tp := fmt.Sprintf("targets[%d]", i)
		nt, err := NewTarget(t.Path, t.Expiration, job.Instance, "", now)
		if err != nil {
			errs.addErr(tp, err)
			continue
		}
		job.Targets = mergeTarget(&errs, tp, job.Targets, nt)
	}
	if len(targets) == 0 {
		errs.add("targets", "at least one target room is required")
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	job.ID = jobID(job)
	return job, nil
}

// MergeTargets returns the targets of a and then those of b whose room path
// (compared case-insensitively, as DRACOON compares names) is not in a yet.
// When both name a room with different expirations, the later one wins (no
// expiration is the latest): a recording is never deleted earlier than one
// of its sources asked.
func MergeTargets(a, b []Target) []Target {
	out := append([]Target(nil), a...)
next:
	for _, t := range b {
		for i, have := range out {
			if strings.EqualFold(have.Path, t.Path) {
				if later(t.ExpireAt, have.ExpireAt) {
					out[i].Expiration, out[i].ExpireAt = t.Expiration, t.ExpireAt
				}
				continue next
			}
		}
		out = append(out, t)
	}
	return out
}

// later reports whether expiration a is later than b; nil is never.
func later(a, b *time.Time) bool {
	switch {
	case b == nil:
		return false
	case a == nil:
		return true
	}
	return a.After(*b)
}

// jobID derives a stable identifier for the recording, so that a redelivered or
// resent message maps to the same job.
func jobID(j *Job) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%s", j.Instance, j.Meeting.ID, j.Source.Bucket)
	for _, k := range j.Source.Keys {
		fmt.Fprintf(h, "\x00%s", k)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
