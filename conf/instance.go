package conf

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/recording-storage/recording-storage/messages"
)

// StorageDracoon is the only instance storage type.
const StorageDracoon = "dracoon"

// Instance is the configuration of one instance domain: where its recordings
// go. Its secrets are Secret values, so printing an Instance never shows them.
type Instance struct {
	Storage string         `json:"storage" yaml:"storage"`
	Dracoon DracoonAccount `json:"dracoon" yaml:"dracoon"`
	// Sources are the S3 buckets (and key prefixes) the instance's jobs may
	// name; a job naming another is refused. Empty: any bucket the
	// service's credentials can read (a warning at every job).
	Sources []SourceRule `json:"sources,omitempty" yaml:"sources,omitempty"`
}

// SourceRule allows the keys of a bucket that start with a prefix (empty:
// every key).
type SourceRule struct {
	Bucket string `json:"bucket" yaml:"bucket"`
	Prefix string `json:"prefix,omitempty" yaml:"prefix,omitempty"`
}

// AllowsSource reports whether a job of the instance may read (and remove)
// bucket/key: every source is allowed when no rule is set.
func (in Instance) AllowsSource(bucket, key string) bool {
	if len(in.Sources) == 0 {
		return true
	}
	for _, r := range in.Sources {
		if r.Bucket == bucket && strings.HasPrefix(key, r.Prefix) {
			return true
		}
	}
	return false
}

// DracoonAccount is the DRACOON account and rooms of an instance.
type DracoonAccount struct {
	BaseURL            string      `json:"baseUrl" yaml:"baseUrl"` // e.g. https://dracoon.example.com; the API is below /api
	Login              string      `json:"login" yaml:"login"`
	Password           Secret      `json:"password" yaml:"password"`
	EncryptionPassword Secret      `json:"encryptionPassword" yaml:"encryptionPassword"` // unlocks the account's private key
	ClientID           string      `json:"clientId" yaml:"clientId"`
	ClientSecret       Secret      `json:"clientSecret" yaml:"clientSecret"`
	ParentRoomID       int64       `json:"parentRoomId" yaml:"parentRoomId"` // every target path is below this room
	Targets            TargetRules `json:"targets" yaml:"targets"`
}

// TargetRules are the per-meeting-type targets of an instance. In JSON and
// YAML they are a list, or a string holding that list as JSON (as the original
// configurator stored them).
type TargetRules []TargetRule

// TargetRule sends recordings of one meeting type, or of any, to rooms.
type TargetRule struct {
	MeetingTypeID MeetingTypeID `json:"meetingTypeId" yaml:"meetingTypeId"`
	CopyTo        []TargetSpec  `json:"copyTo" yaml:"copyTo"`
}

// TargetSpec is a room path template and its expiration (nil for none).
type TargetSpec struct {
	Path       string  `json:"path" yaml:"path"`
	Expiration *string `json:"expiration,omitempty" yaml:"expiration,omitempty"`
}

// MeetingTypeID is a meeting type ID or the wildcard "any".
type MeetingTypeID struct {
	Any bool
	ID  int64
}

// Matches reports whether the rule applies to a meeting type (nil: unknown type).
func (m MeetingTypeID) Matches(id *int64) bool {
	return m.Any || (id != nil && *id == m.ID)
}

// String returns "any" or the decimal ID.
func (m MeetingTypeID) String() string {
	if m.Any {
		return "any"
	}
	return strconv.FormatInt(m.ID, 10)
}

// MarshalJSON writes "any" or the number.
func (m MeetingTypeID) MarshalJSON() ([]byte, error) {
	if m.Any {
		return []byte(`"any"`), nil
	}
	return []byte(strconv.FormatInt(m.ID, 10)), nil
}

// UnmarshalJSON reads "any", a number, or a number in a string.
func (m *MeetingTypeID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		s = string(b)
	}
	return m.parse(s)
}

// UnmarshalYAML reads "any" or a number.
func (m *MeetingTypeID) UnmarshalYAML(n *yaml.Node) error { return m.parse(n.Value) }

func (m *MeetingTypeID) parse(s string) error {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "any") {
		*m = MeetingTypeID{Any: true}
		return nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("meetingTypeId must be a positive integer or \"any\", got %s", s)
	}
	*m = MeetingTypeID{ID: id}
	return nil
}

// UnmarshalJSON reads a list of rules or a string holding one.
func (r *TargetRules) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if strings.TrimSpace(s) == "" {
			*r = nil
			return nil
		}
		b = []byte(s)
	}
	var list []TargetRule
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("targets: %w", err)
	}
	*r = list
	return nil
}

// UnmarshalYAML reads a list of rules or a string holding one as JSON.
func (r *TargetRules) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return r.UnmarshalJSON([]byte(strconv.Quote(n.Value)))
	}
	var list []TargetRule
	if err := n.Decode(&list); err != nil {
		return err
	}
	*r = list
	return nil
}

// TargetsFor returns the target specs that apply to a meeting type, in rule
// order (nil id: only "any" rules apply).
func (r TargetRules) TargetsFor(meetingTypeID *int64) []TargetSpec {
	var out []TargetSpec
	for _, rule := range r {
		if rule.MeetingTypeID.Matches(meetingTypeID) {
			out = append(out, rule.CopyTo...)
		}
	}
	return out
}

// Validate checks the instance configuration; every error names the field.
func (in Instance) Validate() error {
	var v validator
	if in.Storage != StorageDracoon {
		v.addf("storage must be %q, got %q", StorageDracoon, in.Storage)
	}
	d := in.Dracoon
	if u, err := url.Parse(d.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname()))) {
		v.addf("dracoon.baseUrl must be an https URL (http only on loopback), got %q", d.BaseURL)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"dracoon.login", d.Login != ""}, {"dracoon.password", d.Password.IsSet()},
		{"dracoon.encryptionPassword", d.EncryptionPassword.IsSet()},
		{"dracoon.clientId", d.ClientID != ""}, {"dracoon.clientSecret", d.ClientSecret.IsSet()},
	} {
		if !f.set {
			v.addf("%s must be set", f.name)
		}
	}
	if d.ParentRoomID <= 0 {
		v.addf("dracoon.parentRoomId must be a positive room id, got %d", d.ParentRoomID)
	}
	for i, r := range in.Sources {
		if err := messages.CheckBucket(r.Bucket); err != nil {
			v.addf("sources[%d].bucket: %s", i, err)
		}
	}
	for i, rule := range d.Targets {
		for j, spec := range rule.CopyTo {
			path := fmt.Sprintf("dracoon.targets[%d].copyTo[%d]", i, j)
			// Template variables are checked with stand-in values; the real
			// ones are checked again when a job uses the rule.
			if _, err := messages.NewTarget(spec.Path, spec.Expiration, "instance", "meeting type", time.Time{}); err != nil {
				var verr *messages.ValidationError
				if errors.As(err, &verr) {
					for _, f := range verr.Fields {
						v.addf("%s.%s: %s", path, f.Path, f.Reason)
					}
				}
			}
		}
	}
	return v.err()
}

// IsLoopback reports whether host (a name or an address, without port) is
// this machine: localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
