package handlers

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/logging"
	"github.com/recording-storage/recording-storage/messages"
)

// KeysHook receives the outcome of every share: whether it was a sweep,
// and the keys set, skipped and failed.
type KeysHook func(sweep bool, st messages.KeyStats)

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
	Steps  Steps
	Keys   KeysHook // may be nil
	Sweeps *Sweeps  // coalesces sweeps; nil: every sweep request is served
	Logger logrus.FieldLogger
}

// Handle serves the ShareRequest in msg. A sweep that fails is logged
// (code 15016) and done with: the next interval sweeps again, so a sweep
// is never retried for hours and then poisoned; only a stopping service
// gives it back to its queue.
func (s ShareRequested) Handle(msg *message.Message) error {
	req, err := messages.Decode[messages.ShareRequest](msg)
	if err != nil {
		return err
	}
	if !req.Sweep {
		return share(msg, s.Steps, s.Keys, req)
	}
	sweep := func() error { return share(msg, s.Steps, s.Keys, req) }
	if s.Sweeps != nil {
		err = s.Sweeps.serve(msg.Context(), req, sweep)
	} else {
		err = sweep()
	}
	if err == nil || msg.Context().Err() != nil {
		return err
	}
	if s.Logger != nil {
		logging.WithCode(s.Logger, logging.CodeSharerError).WithError(err).WithField("instance", req.Instance).
			Error("sweep failed; the next interval sweeps again")
	}
	return nil
}

// Sweeps coalesces the sweep requests of an instance in one process: one
// sweep of an instance runs at a time, and a request made before the start
// of a sweep of its instance that has since succeeded is served by that
// sweep already, so that requests that piled up while the share stage was
// busy (or down) cost one sweep, not one each. Safe for concurrent use.
type Sweeps struct {
	mu      sync.Mutex
	done    map[string]time.Time     // by instance: the start of its last successful sweep
	running map[string]chan struct{} // by instance: closed when its sweep ends
}

// NewSweeps returns an empty ledger of sweeps.
func NewSweeps() *Sweeps {
	return &Sweeps{done: map[string]time.Time{}, running: map[string]chan struct{}{}}
}

// serve runs sweep for req unless a later sweep of its instance covers it,
// waiting for a sweep of the instance that runs already. A request without
// its time (from an older release) is always served.
func (s *Sweeps) serve(ctx context.Context, req messages.ShareRequest, sweep func() error) error {
	for {
		s.mu.Lock()
		if start, ok := s.done[req.Instance]; ok && !req.RequestedAt.IsZero() && req.RequestedAt.Before(start) {
			s.mu.Unlock()
			return nil // covered
		}
		if ch, ok := s.running[req.Instance]; ok {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		ch := make(chan struct{})
		s.running[req.Instance] = ch
		start := time.Now()
		s.mu.Unlock()

		err := sweep()
		s.mu.Lock()
		delete(s.running, req.Instance)
		close(ch)
		if err == nil && start.After(s.done[req.Instance]) {
			s.done[req.Instance] = start
		}
		s.mu.Unlock()
		return err
	}
}

// share runs the share step and reports its counts.
func share(msg *message.Message, st Steps, keys KeysHook, req messages.ShareRequest) error {
	stats, err := st.Share(msg.Context(), req)
	if keys != nil {
		keys(req.Sweep, stats)
	}
	return err
}
