package handlers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/messages"
)

// sweepSteps counts the sweeps it serves, each taking a while, and fails
// the first fail of them.
type sweepSteps struct {
	calls atomic.Int32
	fail  int32
}

func (s *sweepSteps) Resolve(context.Context, *messages.Job, steps.ResolveOptions) (messages.ResolvedJob, error) {
	panic("not reached")
}
func (s *sweepSteps) EnsureRooms(context.Context, messages.ResolvedJob) (messages.RoomsReady, error) {
	panic("not reached")
}
func (s *sweepSteps) Transfer(context.Context, messages.RoomsReady, bool) (messages.Transferred, error) {
	panic("not reached")
}
func (s *sweepSteps) Share(context.Context, messages.ShareRequest) (messages.KeyStats, error) {
	n := s.calls.Add(1)
	time.Sleep(100 * time.Millisecond)
	if n <= s.fail {
		return messages.KeyStats{}, errors.New("DRACOON answered 503")
	}
	return messages.KeyStats{Set: 1}, nil
}

// TestShareRequested_coalesces_sweeps: sweep requests of one instance that
// piled up cost one sweep; a request made after a sweep started gets a
// sweep of its own; a failed sweep covers nothing; another instance is
// swept on its own; a request without its time is always served.
func TestShareRequested_coalesces_sweeps(t *testing.T) {
	t.Parallel()
	st := &sweepSteps{}
	h := ShareRequested{Steps: st, Sweeps: NewSweeps()}
	handle := func(instance string, at time.Time) error {
		msg, err := messages.New(messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: instance,
			Sweep: true, RequestedAt: at}, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		msg.SetContext(context.Background())
		return h.Handle(msg)
	}
	piled := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := handle("a.example", piled); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := st.calls.Load(); n != 1 {
		t.Errorf("5 piled-up requests cost %d sweeps, want 1", n)
	}
	if err := handle("a.example", time.Now()); err != nil || st.calls.Load() != 2 {
		t.Errorf("a later request: %v, %d sweeps, want a second one", err, st.calls.Load())
	}
	if err := handle("b.example", piled); err != nil || st.calls.Load() != 3 {
		t.Errorf("another instance: %v, %d sweeps, want its own", err, st.calls.Load())
	}
	if err := handle("b.example", time.Time{}); err != nil || st.calls.Load() != 4 {
		t.Errorf("a request without its time: %v, %d sweeps, want it served", err, st.calls.Load())
	}

	// A failed sweep is logged and done with (the next interval sweeps
	// again), not retried into the poison queue; it covers nothing.
	failing := &sweepSteps{fail: 1}
	log, hook := logtest.NewNullLogger()
	h = ShareRequested{Steps: failing, Sweeps: NewSweeps(), Logger: log}
	at := time.Now()
	if err := handle("c.example", at); err != nil || failing.calls.Load() != 1 {
		t.Fatalf("a failing sweep: %v after %d sweeps, want it logged, not returned", err, failing.calls.Load())
	}
	if e := hook.LastEntry(); e == nil || e.Data["code"] != 15016 || e.Data["instance"] != "c.example" {
		t.Errorf("a failing sweep logged %+v, want code 15016 with its instance", e)
	}
	if err := handle("c.example", at); err != nil || failing.calls.Load() != 2 {
		t.Errorf("after a failed sweep: %v, %d sweeps, want the request served again", err, failing.calls.Load())
	}
}
