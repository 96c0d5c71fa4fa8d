package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers"
	"github.com/recording-storage/recording-storage/handlers/steps"
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
func (f *failingSteps) Share(context.Context, messages.ShareRequest) (messages.KeyStats, error) {
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
	pub, poisoned, _ := runStage(t, cfg, "resolve", f, cfg.Stages.Rooms.Topic)
	publishJob(t, pub, cfg.Stages.Resolve.Topic, nil)
	select {
	case pm := <-poisoned:
		pm.Ack()
		md := pm.Metadata
		if md.Get(pipeline.MetaPoisonStage) != "resolve" || md.Get(pipeline.MetaPoisonClass) != "transient" ||
			md.Get(pipeline.MetaPoisonDeliveries) != "3" || md.Get(messages.MetaJobID) != "j1" {
			t.Errorf("poison copy metadata %v", md)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not poisoned")
	}
	if got := f.calls.Load(); got != 6 {
		t.Errorf("%d attempts, want 6 (3 deliveries x 2 attempts)", got)
	}
}

// outageSteps fails every resolve transiently until the outage ends, then
// resolves.
type outageSteps struct {
	failingSteps
	until time.Time
}

func (o *outageSteps) Resolve(_ context.Context, job *messages.Job, _ steps.ResolveOptions) (messages.ResolvedJob, error) {
	o.calls.Add(1)
	if time.Now().Before(o.until) {
		return messages.ResolvedJob{}, errors.New("DRACOON answered 503")
	}
	return messages.ResolvedJob{Version: messages.ResolvedJobVersion, Job: *job}, nil
}

// TestService_survives_an_outage: the wait before each redelivery doubles,
// so an outage longer than max_deliveries fixed delays (the old budget)
// but shorter than the growing ones poisons nothing, and the job goes on
// once the outage ends. (Compressed: 100 ms doubling to 800 ms, 6
// deliveries: 2.3 s of waits; with a fixed 100 ms they took 0.5 s.)
func TestService_survives_an_outage(t *testing.T) {
	cfg := memoryConfig(100 * time.Millisecond)
	cfg.Stages.RetryDelayMax = 800 * time.Millisecond
	cfg.Stages.MaxDeliveries = 6
	outage := 1500 * time.Millisecond
	if old := time.Duration(cfg.Stages.MaxDeliveries-1) * cfg.Stages.RetryDelay; outage <= old || outage >= cfg.Stages.OutageBudget() {
		t.Fatalf("outage %s must lie between the old budget %s and the new %s", outage, old, cfg.Stages.OutageBudget())
	}
	f := &outageSteps{until: time.Now().Add(outage)}
	pub, poisoned, resolved := runStage(t, cfg, "resolve", f, cfg.Stages.Rooms.Topic)
	publishJob(t, pub, cfg.Stages.Resolve.Topic, nil)
	select {
	case m := <-resolved:
		m.Ack()
	case pm := <-poisoned:
		pm.Ack()
		t.Fatalf("poisoned during the outage after %d attempts: %v", f.calls.Load(), pm.Metadata)
	case <-time.After(20 * time.Second):
		t.Fatal("neither resolved nor poisoned")
	}
}

// publishJob publishes a job message to topic, changed by mod (nil: none).
func publishJob(t *testing.T, pub message.Publisher, topic string, mod func(*message.Message)) {
	t.Helper()
	job := &messages.Job{Version: messages.JobVersion, ID: "j1", Instance: "x.example", Meeting: messages.Meeting{ID: 7}}
	msg, err := messages.New(job, job.ID, job.Meeting.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(msg)
	}
	if err := pub.Publish(topic, msg); err != nil {
		t.Fatal(err)
	}
}

// runStage runs one stage of a memory-transport service with steps and
// returns a publisher and the channels of the poison topic and of topic.
func runStage(t *testing.T, cfg conf.Config, stage string, st handlers.Steps, topic string) (message.Publisher, <-chan *message.Message, <-chan *message.Message) {
	t.Helper()
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	svc, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Stages: []string{stage}, Steps: st, Logger: log,
		Registry: prometheus.NewRegistry(), Retry: middleware.Retry{MaxRetries: 1, InitialInterval: time.Millisecond}})
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
	out, err := watch.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	<-svc.Running()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	pub, err := svc.Transport().Publisher()
	if err != nil {
		t.Fatal(err)
	}
	return pub, poisoned, out
}

// growingSteps resolves a job into a result 2 KiB longer.
type growingSteps struct{ failingSteps }

func (*growingSteps) Resolve(_ context.Context, job *messages.Job, _ steps.ResolveOptions) (messages.ResolvedJob, error) {
	return messages.ResolvedJob{Version: messages.ResolvedJobVersion, Job: *job,
		Sources: []messages.SourceObject{{Key: strings.Repeat("k", 2<<10)}}}, nil
}

// TestService_failed_output_publish_is_poisoned: a result that cannot be
// published (here: the producer's correlation id makes it too big for SQS)
// fails the delivery and is poisoned with the reason, not Nacked forever;
// the poison copy fits, its correlation id cut.
func TestService_failed_output_publish_is_poisoned(t *testing.T) {
	cfg := memoryConfig(50 * time.Millisecond)
	cfg.Stages.MaxDeliveries = 3
	pub, poisoned, out := runStage(t, cfg, "resolve", &growingSteps{}, cfg.Stages.Rooms.Topic)
	// The job fits with the correlation id; the resolved job, longer, does not.
	publishJob(t, pub, cfg.Stages.Resolve.Topic, func(msg *message.Message) {
		middleware.SetCorrelationID(strings.Repeat("c", pipeline.MaxMessageSize-len(msg.Payload)-300), msg)
	})
	select {
	case pm := <-poisoned:
		pm.Ack()
		md := pm.Metadata
		if md.Get(pipeline.MetaPoisonStage) != "resolve" || md.Get(pipeline.MetaPoisonClass) != "permanent" ||
			!strings.Contains(md.Get(pipeline.MetaPoisonReason), "cannot publish the result") ||
			len(middleware.MessageCorrelationID(pm)) > 1<<10 {
			t.Errorf("poison copy metadata %.300v", md)
		}
	case m := <-out:
		t.Fatalf("a result beyond the limits was published: %d bytes", len(m.Payload))
	case <-time.After(20 * time.Second):
		t.Fatal("not poisoned")
	}
}

// TestService_poison_copy_always_fits: a message whose poison copy, with
// the reason added, would exceed SQS's limit is poisoned with its body cut,
// its whole size and SHA-256 recorded, instead of coming back forever.
func TestService_poison_copy_always_fits(t *testing.T) {
	cfg := memoryConfig(50 * time.Millisecond)
	inbound, _ := conf.InboundQueueName(cfg.Stages.Parse.Queue)
	pub, poisoned, _ := runStage(t, cfg, "parse", &outageSteps{}, cfg.Stages.Resolve.Topic)
	body := []byte(`{"storage": "` + strings.Repeat("x", pipeline.MaxMessageSize-200))
	if err := pub.Publish(inbound, message.NewMessage(watermill.NewUUID(), body)); err != nil {
		t.Fatal(err)
	}
	select {
	case pm := <-poisoned:
		pm.Ack()
		sum := sha256.Sum256(body)
		cut := pm.Metadata.Get(pipeline.MetaPoisonCut)
		if !strings.Contains(cut, fmt.Sprintf("cut from %d bytes, sha256 %x", len(body), sum)) || len(pm.Payload) >= len(body) ||
			!bytes.HasPrefix(body, pm.Payload) || pm.Metadata.Get(pipeline.MetaPoisonStage) != "parse" {
			t.Errorf("poison copy: %d bytes, cut %q, stage %q", len(pm.Payload), cut, pm.Metadata.Get(pipeline.MetaPoisonStage))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not poisoned")
	}
}

// hangingSteps never resolves: it waits for its context.
type hangingSteps struct{ failingSteps }

func (h *hangingSteps) Resolve(ctx context.Context, _ *messages.Job, _ steps.ResolveOptions) (messages.ResolvedJob, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return messages.ResolvedJob{}, ctx.Err()
}

// TestService_attempt_timeout: a stage's attempt that hangs ends at the
// stage's timeout (stages.<stage>.timeout) and counts as a failed attempt,
// so that a hanging job is retried and then poisoned, not held for ever.
func TestService_attempt_timeout(t *testing.T) {
	cfg := memoryConfig(50 * time.Millisecond)
	cfg.Stages.MaxDeliveries = 2
	cfg.Stages.Resolve.Timeout = 200 * time.Millisecond
	h := &hangingSteps{}
	pub, poisoned, _ := runStage(t, cfg, "resolve", h, cfg.Stages.Rooms.Topic)
	publishJob(t, pub, cfg.Stages.Resolve.Topic, nil)
	select {
	case pm := <-poisoned:
		pm.Ack()
		if r := pm.Metadata.Get(pipeline.MetaPoisonReason); !strings.Contains(r, "deadline exceeded") {
			t.Errorf("poison reason %q, want the attempt's deadline", r)
		}
		if n := h.calls.Load(); n != 4 {
			t.Errorf("%d attempts, want 4 (2 deliveries x 2 attempts)", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("a hanging job was not poisoned (%d attempts)", h.calls.Load())
	}
}

// stubbornSteps resolves after a while, whatever its context says.
type stubbornSteps struct {
	failingSteps
	started chan struct{}
}

func (s *stubbornSteps) Resolve(context.Context, *messages.Job, steps.ResolveOptions) (messages.ResolvedJob, error) {
	close(s.started)
	time.Sleep(12 * time.Second)
	return messages.ResolvedJob{}, errors.New("too late")
}

// TestService_stop_leaves_stubborn_handlers: a handler that ignores the end
// of the drain does not keep the service from stopping cleanly soon after.
func TestService_stop_leaves_stubborn_handlers(t *testing.T) {
	t.Parallel()
	cfg := memoryConfig(50 * time.Millisecond)
	cfg.Stages.DrainTimeout = 0
	st := &stubbornSteps{started: make(chan struct{})}
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Stages: []string{"resolve"}, Steps: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	<-svc.Running()
	job := &messages.Job{Version: messages.JobVersion, ID: "j1", Instance: "x.example", Meeting: messages.Meeting{ID: 7}}
	msg, _ := messages.New(job, job.ID, job.Meeting.ID)
	pub, _ := svc.Transport().Publisher()
	if err := pub.Publish(cfg.Stages.Resolve.Topic, msg); err != nil {
		t.Fatal(err)
	}
	<-st.started
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want a clean stop", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("stopped after %s", d)
		}
	case <-time.After(11 * time.Second):
		t.Fatal("the service waited for the stubborn handler")
	}
}
