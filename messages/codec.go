package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

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
	msg.Metadata.Set(MetaPayload, payloadLabel(p))
	if jobID != "" {
		msg.Metadata.Set(MetaJobID, jobID)
	}
	if meetingID != 0 {
		msg.Metadata.Set(MetaMeetingID, strconv.FormatInt(meetingID, 10))
	}
	return msg, nil
}

// Decode decodes msg into a T, checking the payload type and version. A wrong
// payload is a permanent error wrapping ErrWrongPayload; an undecodable body
// is a permanent *FieldError.
func Decode[T Payload](msg *message.Message) (T, error) {
	var v T
	if got, want := msg.Metadata.Get(MetaPayload), payloadLabel(v); got != want {
		return v, errclass.AsPermanent(fmt.Errorf("%w: got %q, want %q", ErrWrongPayload, got, want))
	}
	if err := json.Unmarshal(msg.Payload, &v); err != nil {
		return v, &FieldError{Reason: "cannot decode " + payloadLabel(v) + " payload: " + err.Error()}
	}
	return v, nil
}

func payloadLabel(p Payload) string {
	name, version := p.PayloadType()
	return name + "/" + strconv.Itoa(version)
}
