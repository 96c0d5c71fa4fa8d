package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/messages"
)

// Transfer brings every recording of a job whose rooms are ready into every
// room, and removes the sources afterwards when RemoveSource is set. A job
// already complete everywhere passes without uploading anything.
type Transfer struct {
	Steps        Steps
	RemoveSource bool // s3.remove_after_transfer
}

// Handle transfers the job in msg.
func (t Transfer) Handle(msg *message.Message) ([]*message.Message, error) {
	rr, err := messages.Decode[messages.RoomsReady](msg)
	if err != nil {
		return nil, err
	}
	done, err := t.Steps.Transfer(msg.Context(), rr, t.RemoveSource)
	if err != nil {
		return nil, err
	}
	return one(messages.New(done, rr.Job.ID, rr.Job.Meeting.ID))
}
