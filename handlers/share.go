package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/messages"
)

// KeysHook receives the outcome of every share: whether it was a sweep,
// and the keys set, skipped and failed.
type KeysHook func(sweep bool, st dracoon.KeyStats)

// ShareTransferred hands the file keys of a transferred job's files to
// every member of their rooms who lacks them.
type ShareTransferred struct {
	Steps Steps
	Keys  KeysHook // may be nil
}

// Handle shares the files of the Transferred report in msg.
func (s ShareTransferred) Handle(msg *message.Message) error {
	t, err := messages.Decode[messages.Transferred](msg)
	if err != nil {
		return err
	}
	return share(msg, s.Steps, s.Keys, steps.ShareRequest(t))
}

// ShareRequested serves share requests: files, rooms, or a whole instance
// (the periodic sweep).
type ShareRequested struct {
	Steps Steps
	Keys  KeysHook // may be nil
}

// Handle serves the ShareRequest in msg.
func (s ShareRequested) Handle(msg *message.Message) error {
	req, err := messages.Decode[messages.ShareRequest](msg)
	if err != nil {
		return err
	}
	return share(msg, s.Steps, s.Keys, req)
}

// share runs the share step and reports its counts.
func share(msg *message.Message, st Steps, keys KeysHook, req messages.ShareRequest) error {
	stats, err := st.Share(msg.Context(), req)
	if keys != nil {
		keys(req.Sweep, stats)
	}
	return err
}
