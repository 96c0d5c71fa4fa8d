package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/messages"
)

// Rooms finds or creates every target room of a resolved job.
type Rooms struct {
	Steps Steps
}

// Handle ensures the rooms of the job in msg.
func (r Rooms) Handle(msg *message.Message) ([]*message.Message, error) {
	rj, err := messages.Decode[messages.ResolvedJob](msg)
	if err != nil {
		return nil, err
	}
	rr, err := r.Steps.EnsureRooms(msg.Context(), rj)
	if err != nil {
		return nil, err
	}
	return one(messages.New(rr, rj.Job.ID, rj.Job.Meeting.ID))
}
