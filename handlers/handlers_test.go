package handlers_test

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// fakeSteps records what the handlers ask of the steps and answers with
// fixed results, or err.
type fakeSteps struct {
	err      error
	resolved *messages.Job
	opts     steps.ResolveOptions
	rooms    *messages.ResolvedJob
	transfer *messages.RoomsReady
	remove   bool
	shared   []messages.ShareRequest
}

func (f *fakeSteps) Resolve(_ context.Context, job *messages.Job, opts steps.ResolveOptions) (messages.ResolvedJob, error) {
	f.resolved, f.opts = job, opts
	return messages.ResolvedJob{Version: messages.ResolvedJobVersion, Job: *job, ParentRoomID: 7}, f.err
}

func (f *fakeSteps) EnsureRooms(_ context.Context, rj messages.ResolvedJob) (messages.RoomsReady, error) {
	f.rooms = &rj
	return messages.RoomsReady{Version: messages.RoomsReadyVersion, Job: rj.Job,
		Rooms: []messages.TargetRoom{{Target: messages.Target{Path: "a"}, RoomID: 9}}}, f.err
}

func (f *fakeSteps) Transfer(_ context.Context, rr messages.RoomsReady, removeSource bool) (messages.Transferred, error) {
	f.transfer, f.remove = &rr, removeSource
	return messages.Transferred{Version: messages.TransferredVersion, JobID: rr.Job.ID, Instance: rr.Job.Instance,
		Files: []messages.TransferredFile{{Key: "k", Uploads: []messages.UploadedFile{{RoomID: 9, NodeID: 41}, {RoomID: 10, NodeID: 42}}}}}, f.err
}

func (f *fakeSteps) Share(_ context.Context, req messages.ShareRequest) (messages.KeyStats, error) {
	f.shared = append(f.shared, req)
	return messages.KeyStats{Set: 2, Skipped: 1}, f.err
}

// exampleJob returns the original service's example message, parsed.
func exampleJob(t *testing.T) (raw []byte, job messages.Job) {
	t.Helper()
	raw, err := os.ReadFile("../testdata/messages/original-example.json")
	if err != nil {
		t.Fatal(err)
	}
	j, err := messages.ParseJob(raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return raw, *j
}

func encode(t *testing.T, p messages.Payload, job messages.Job) *message.Message {
	t.Helper()
	msg, err := messages.New(p, job.ID, job.Meeting.ID)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestNew_handlers: each stage input's handler decodes its payload, asks
// its step, and publishes the step's result as the next stage's payload;
// a failing step's error comes back with its class; a message of another
// payload is refused permanently.
func TestNew_handlers(t *testing.T) {
	raw, job := exampleJob(t)
	rj := messages.ResolvedJob{Version: messages.ResolvedJobVersion, Job: job}
	rr := messages.RoomsReady{Version: messages.RoomsReadyVersion, Job: job}
	tr := messages.Transferred{Version: messages.TransferredVersion, JobID: job.ID, Instance: job.Instance,
		Files: []messages.TransferredFile{{Key: "k", Uploads: []messages.UploadedFile{{RoomID: 9, NodeID: 41}}}}}
	req := messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: job.Instance, RoomIDs: []int64{9}}
	tests := []struct {
		handler string
		in      *message.Message
		out     string // payload label of the result; "": none
		check   func(t *testing.T, f *fakeSteps, keys []messages.KeyStats)
	}{
		{conf.StageParse, message.NewMessage(watermill.NewUUID(), raw), "job/1", func(t *testing.T, f *fakeSteps, _ []messages.KeyStats) {}},
		{conf.StageResolve, encode(t, job, job), "resolved-job/1", func(t *testing.T, f *fakeSteps, _ []messages.KeyStats) {
			if f.resolved == nil || f.resolved.ID != job.ID || !f.opts.InstanceRules {
				t.Errorf("Resolve got %+v, %+v", f.resolved, f.opts)
			}
		}},
		{conf.StageRooms, encode(t, rj, job), "rooms-ready/1", func(t *testing.T, f *fakeSteps, _ []messages.KeyStats) {
			if f.rooms == nil || f.rooms.Job.ID != job.ID {
				t.Errorf("EnsureRooms got %+v", f.rooms)
			}
		}},
		{conf.StageTransfer, encode(t, rr, job), "transferred/1", func(t *testing.T, f *fakeSteps, _ []messages.KeyStats) {
			if f.transfer == nil || f.transfer.Job.ID != job.ID || !f.remove {
				t.Errorf("Transfer got %+v, remove %v", f.transfer, f.remove)
			}
		}},
		{conf.HandlerShareTransferred, encode(t, tr, job), "", func(t *testing.T, f *fakeSteps, keys []messages.KeyStats) {
			if len(f.shared) != 1 || !slices.Equal(f.shared[0].FileIDs, []int64{41}) || f.shared[0].Sweep || len(keys) != 1 {
				t.Errorf("Share got %+v, keys hook %v", f.shared, keys)
			}
		}},
		{conf.HandlerShareRequested, encode(t, req, job), "", func(t *testing.T, f *fakeSteps, keys []messages.KeyStats) {
			if len(f.shared) != 1 || !slices.Equal(f.shared[0].RoomIDs, []int64{9}) || len(keys) != 1 || keys[0].Set != 2 {
				t.Errorf("Share got %+v, keys hook %v", f.shared, keys)
			}
		}},
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	for _, tt := range tests {
		t.Run(tt.handler, func(t *testing.T) {
			for _, failing := range []error{nil, errclass.AsPermanent(errors.New("room quota exceeded")), errors.New("DRACOON answered 503")} {
				f := &fakeSteps{err: failing}
				var keys []messages.KeyStats
				h, err := handlers.New(tt.handler, handlers.Deps{Steps: f, RemoveSource: true, Logger: log,
					Keys: func(_ bool, st messages.KeyStats) { keys = append(keys, st) }})
				if err != nil {
					t.Fatal(err)
				}
				msg := tt.in.Copy()
				msg.SetContext(context.Background())
				out, err := h(msg)
				if failing != nil && tt.handler != conf.StageParse {
					if !errors.Is(err, failing) || errclass.Of(err) != errclass.Of(failing) || len(out) != 0 {
						t.Errorf("step failing with %v: handler gave %v (%s), %d messages", failing, err, errclass.Of(err), len(out))
					}
					continue
				}
				if err != nil {
					t.Fatalf("handler: %v", err)
				}
				var labels []string
				for _, o := range out {
					labels = append(labels, o.Metadata.Get(messages.MetaPayload))
					if o.Metadata.Get(messages.MetaJobID) != job.ID {
						t.Errorf("output metadata %v lacks the job id %s", o.Metadata, job.ID)
					}
				}
				if want := []string{tt.out}; tt.out == "" && len(out) != 0 || tt.out != "" && !slices.Equal(labels, want) {
					t.Errorf("published %v, want %q", labels, tt.out)
				}
				tt.check(t, f, keys)
			}
		})
	}
}

// TestNew_wrong_payload: a handler refuses a message of another stage's
// payload permanently, without asking its step.
func TestNew_wrong_payload(t *testing.T) {
	_, job := exampleJob(t)
	wrong := encode(t, messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: job.Instance}, job)
	for _, d := range conf.StageTable() {
		for _, in := range d.Inputs {
			if in.Inbound || in.Handler == conf.HandlerShareRequested {
				continue
			}
			t.Run(in.Handler, func(t *testing.T) {
				f := &fakeSteps{}
				h, err := handlers.New(in.Handler, handlers.Deps{Steps: f})
				if err != nil {
					t.Fatal(err)
				}
				msg := wrong.Copy()
				msg.SetContext(context.Background())
				_, err = h(msg)
				if !errors.Is(err, messages.ErrWrongPayload) || !errclass.IsPermanent(err) {
					t.Errorf("error %v, want a permanent ErrWrongPayload", err)
				}
				if f.resolved != nil || f.rooms != nil || f.transfer != nil || len(f.shared) != 0 {
					t.Error("the step was asked")
				}
			})
		}
	}
}

// TestNew_every_declared_input: every input of the stage declaration has
// a handler, and a name outside it has none.
func TestNew_every_declared_input(t *testing.T) {
	for _, d := range conf.StageTable() {
		for _, in := range d.Inputs {
			if h, err := handlers.New(in.Handler, handlers.Deps{}); err != nil || h == nil {
				t.Errorf("stage %s input %s: %v", d.Name, in.Handler, err)
			}
		}
	}
	if _, err := handlers.New("audit", handlers.Deps{}); err == nil || !strings.Contains(err.Error(), `"audit"`) {
		t.Errorf(`New("audit"): %v`, err)
	}
}

// TestParse_invalid: an invalid inbound message fails permanently naming
// the field.
func TestParse_invalid(t *testing.T) {
	h, err := handlers.New(conf.StageParse, handlers.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := exampleJob(t)
	bad := strings.Replace(string(raw), `"domain"`, `"domainX"`, 1)
	msg := message.NewMessage(watermill.NewUUID(), []byte(bad))
	msg.SetContext(context.Background())
	_, err = h(msg)
	if !errclass.IsPermanent(err) || !strings.Contains(err.Error(), "domain") {
		t.Errorf("error %v, want a permanent one naming domain", err)
	}
}
