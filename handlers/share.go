package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/messages"
)

// ShareTransferred hands the file keys of a transferred job's files to
// every member of their rooms who lacks them.
type ShareTransferred struct {
	Steps Steps
}

// Handle shares the files of the Transferred report in msg.
func (s ShareTransferred) Handle(msg *message.Message) error {
	t, err := messages.Decode[messages.Transferred](msg)
	if err != nil {
		return err
	}
	_, err = s.Steps.Share(msg.Context(), steps.ShareRequest(t))
	return err
}

// ShareRequested serves share requests: files, rooms, or a whole instance
// (the periodic sweep).
type ShareRequested struct {
	Steps Steps
}

// Handle serves the ShareRequest in msg.
func (s ShareRequested) Handle(msg *message.Message) error {
	req, err := messages.Decode[messages.ShareRequest](msg)
	if err != nil {
		return err
	}
	_, err = s.Steps.Share(msg.Context(), req)
	return err
}
