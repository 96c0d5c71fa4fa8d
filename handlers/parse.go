package handlers

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/messages"
)

// Parse validates inbound job messages, the original service's JSON as
// producers send it, and passes the job on. An invalid message fails with a
// permanent error naming every bad field.
type Parse struct {
	Now func() time.Time // the clock expirations count from; nil: time.Now
}

// Handle parses msg's body.
func (p Parse) Handle(msg *message.Message) ([]*message.Message, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	job, err := messages.ParseJob(msg.Payload, now())
	if err != nil {
		return nil, err
	}
	return one(messages.New(job, job.ID, job.Meeting.ID))
}
