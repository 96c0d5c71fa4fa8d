package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/messages"
)

// Resolve applies the instance configuration to a parsed job: its rules'
// targets, expiration dates, and the source objects as S3 has them.
type Resolve struct {
	Steps Steps
}

// Handle resolves the job in msg.
func (r Resolve) Handle(msg *message.Message) ([]*message.Message, error) {
	job, err := messages.Decode[messages.Job](msg)
	if err != nil {
		return nil, err
	}
	rj, err := r.Steps.Resolve(msg.Context(), &job, steps.ResolveOptions{InstanceRules: true})
	if err != nil {
		return nil, err
	}
	return one(messages.New(rj, job.ID, job.Meeting.ID))
}
