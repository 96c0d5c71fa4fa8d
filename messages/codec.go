package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// Payload is implemented by every message that passes between stages.
type Payload interface {
	// PayloadType returns the payload's type name and version.
	PayloadType() (name string, version int)
}

// ErrWrongPayload reports a message whose payload type or version is not the
// one a stage expects.
var ErrWrongPayload = errors.New("wrong payload")

// New encodes p as a new message carrying the job's identifying metadata.
func New(p Payload, jobID string, meetingID int64) (*message.Message, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("cannot encode payload: %w", err)
	}
	if len(data) > MaxPayloadSize {
		name, _ := p.PayloadType()
		return nil, errclass.AsPermanent(fmt.Errorf("cannot encode %s payload: %d bytes is more than the limit of %d", name, len(data), MaxPayloadSize))
	}
	msg := message.NewMessage(watermill.NewUUID(), data)
	msg.Metadata.Set(MetaPayload, Label(p))
	if jobID != "" {
		msg.Metadata.Set(MetaJobID, jobID)
	}
	if meetingID != 0 {
		msg.Metadata.Set(MetaMeetingID, strconv.FormatInt(meetingID, 10))
	}
	return msg, nil
}

// Upgrader is implemented by a payload whose previous version does not
// decode as the current one: Upgrade fills the payload from data, the JSON
// of version from.
type Upgrader interface {
	Upgrade(from int, data []byte) error
}

// ErrNewerPayload reports a message written by a newer release of the
// service, with a payload version this one does not know. It is transient:
// during a rolling deployment a worker of the newer release takes it.
var ErrNewerPayload = errclass.New(errclass.Transient, "payload of a newer version")

// Decode decodes msg into a T, checking the payload type and version: the
// current version, or the previous one, so that two releases can run side
// by side during a rolling deployment. A previous version decodes as the
// current one (a version only adds fields) unless *T is an Upgrader. A wrong
// payload type, or an older version, is a permanent error wrapping
// ErrWrongPayload; a newer version a transient one wrapping
// ErrNewerPayload; an undecodable body a permanent *FieldError.
func Decode[T Payload](msg *message.Message) (T, error) {
	var v T
	name, current := v.PayloadType()
	label := msg.Metadata.Get(MetaPayload)
	gotName, gotVersion, ok := parseLabel(label)
	switch {
	case !ok || gotName != name || gotVersion < current-1 || gotVersion < 1:
		return v, errclass.AsPermanent(fmt.Errorf("%w: got %q, want %q (or version %d)", ErrWrongPayload, label, Label(v), current-1))
	case gotVersion > current:
		return v, fmt.Errorf("cannot decode %q: this release reads %s versions %d and %d: %w", label, name, current-1, current, ErrNewerPayload)
	}
	if up, isUp := any(&v).(Upgrader); isUp && gotVersion < current {
		if err := up.Upgrade(gotVersion, msg.Payload); err != nil {
			return v, &FieldError{Reason: "cannot upgrade " + label + " payload: " + err.Error()}
		}
		return v, nil
	}
	if err := json.Unmarshal(msg.Payload, &v); err != nil {
		return v, &FieldError{Reason: "cannot decode " + label + " payload: " + err.Error()}
	}
	return v, nil
}

// parseLabel splits a payload label "name/version".
func parseLabel(label string) (name string, version int, ok bool) {
	name, ver, ok := strings.Cut(label, "/")
	if !ok {
		return "", 0, false
	}
	version, err := strconv.Atoi(ver)
	return name, version, err == nil
}

// Label returns the payload metadata of p: its type and version, e.g.
// "rooms-ready/1".
func Label(p Payload) string {
	name, version := p.PayloadType()
	return name + "/" + strconv.Itoa(version)
}
