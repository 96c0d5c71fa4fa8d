package pipeline_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/messages"
	"github.com/recording-storage/recording-storage/pipeline"
)

// failingSteps fails every resolve with a transient error.
type failingSteps struct{ calls atomic.Int32 }

func (f *failingSteps) Resolve(context.Context, *messages.Job, steps.ResolveOptions) (messages.ResolvedJob, error) {
	f.calls.Add(1)
	return messages.ResolvedJob{}, errors.New("DRACOON answered 503")
}
func (f *failingSteps) EnsureRooms(context.Context, messages.ResolvedJob) (messages.RoomsReady, error) {
	panic("not reached")
}
func (f *failingSteps) Transfer(context.Context, messages.RoomsReady, bool) (messages.Transferred, error) {
	panic("not reached")
}
func (f *failingSteps) Share(context.Context, messages.ShareRequest) (dracoon.KeyStats, error) {
	panic("not reached")
}

// TestService_poisons_after_max_deliveries: a job that keeps failing
// transiently is retried in the process, comes back through its queue, and
// is poisoned with its class after stages.max_deliveries deliveries.
// (goaws counts no deliveries, so this runs on the memory transport.)
func TestService_poisons_after_max_deliveries(t *testing.T) {
	cfg := memoryConfig(50 * time.Millisecond)
	cfg.Stages.MaxDeliveries = 3
	f := &failingSteps{}
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Stages: []string{"resolve"}, Steps: f, Logger: log,
		Retry: middleware.Retry{MaxRetries: 1, InitialInterval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := svc.Transport().Subscriber("test", 1)
	if err != nil {
		t.Fatal(err)
	}
	poisoned, err := watch.Subscribe(ctx, cfg.Stages.Poison)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	<-svc.Running()
	job := &messages.Job{Version: messages.JobVersion, ID: "j1", Instance: "x.example", Meeting: messages.Meeting{ID: 7}}
	msg, err := messages.New(job, job.ID, job.Meeting.ID)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := svc.Transport().Publisher()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(cfg.Stages.Resolve.Topic, msg); err != nil {
		t.Fatal(err)
	}
	select {
	case pm := <-poisoned:
		pm.Ack()
		md := pm.Metadata
		if md.Get(pipeline.MetaPoisonStage) != "resolve" || md.Get(pipeline.MetaPoisonClass) != "transient" ||
			md.Get(pipeline.MetaPoisonDeliveries) != "3" || md.Get(messages.MetaJobID) != "j1" {
			t.Errorf("poison copy metadata %v", md)
		}
	case <-ctx.Done():
		t.Fatal("not poisoned")
	}
	if got := f.calls.Load(); got != 6 {
		t.Errorf("%d attempts, want 6 (3 deliveries x 2 attempts)", got)
	}
	cancel()
	<-done
}
