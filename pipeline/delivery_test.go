package pipeline_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/pipeline"
)

// TestTransport_KeepVisible runs a handler three times as long as the
// visibility timeout (6 s against 2 s) with two consumers on the same queue
// of the aws transport: with KeepVisible the message is handled exactly
// once; without it, the second consumer gets it while the first still works
// (which shows that the test can see a duplicate); with KeepVisibleFor a
// limit shorter than the handling (a handling that hangs beyond its
// attempts' timeouts), it is no longer kept hidden after the limit.
func TestTransport_KeepVisible(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		keepVisible bool
		limit       time.Duration
	}{
		{name: "kept_visible", keepVisible: true},
		{name: "not_kept", keepVisible: false},
		{name: "kept_up_to_a_limit", keepVisible: false, limit: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// goaws expires visibility on a 1 s tick; KeepVisible extends
			// it every third of the timeout.
			cfg := stackConfig(t, 2*time.Second, time.Second)
			uniqueNames(&cfg)
			tr := newTransport(t, cfg)
			topic := cfg.Stages.Share.Topic
			router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			if tt.keepVisible {
				router.AddMiddleware(tr.KeepVisible)
			}
			if tt.limit > 0 {
				router.AddMiddleware(tr.KeepVisibleFor(tt.limit))
			}
			var started, finished atomic.Int32
			for _, name := range []string{"a", "b"} {
				router.AddConsumerHandler(name, topic, newSubscriber(t, tr, conf.StageShare, 1), func(msg *message.Message) error {
					started.Add(1)
					select {
					case <-time.After(6 * time.Second):
						finished.Add(1)
					case <-msg.Context().Done():
					}
					return nil
				})
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- router.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			<-router.Running()
			if err := newPublisher(t, tr).Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("slow"))); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			if !tt.keepVisible {
				for time.Now().Before(deadline) && started.Load() < 2 {
					time.Sleep(100 * time.Millisecond)
				}
				if started.Load() < 2 {
					t.Error("without KeepVisible the second consumer did not get the message: the test cannot see a duplicate")
				}
				return
			}
			for time.Now().Before(deadline) && finished.Load() < 1 {
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(2500 * time.Millisecond) // a late duplicate would show by now
			if s, f := started.Load(), finished.Load(); s != 1 || f != 1 {
				t.Errorf("handler started %d and finished %d times, want once", s, f)
			}
		})
	}
}

// TestSubscriber_Close closes a subscriber holding a message it has not
// acked, and one waiting for messages, with no drain time: both return at
// once, the output channel is closed, the message's context is done, and
// the message comes back to the next subscriber of the stage.
func TestSubscriber_Close(t *testing.T) {
	t.Parallel()
	for _, tt := range transports(t, 2*time.Second, time.Second) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			uniqueNames(&tt.cfg)
			tt.cfg.Stages.DrainTimeout = 0
			tr := newTransport(t, tt.cfg)
			topic := tt.cfg.Stages.Rooms.Topic
			holding, waiting := newSubscriber(t, tr, conf.StageRooms, 1), newSubscriber(t, tr, conf.StageShare, 1)
			ch, idle := subscribe(t, holding, topic), subscribe(t, waiting, tt.cfg.Stages.Share.Topic)
			msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
			if err := newPublisher(t, tr).Publish(topic, msg); err != nil {
				t.Fatal(err)
			}
			held := receive(t, ch, 15*time.Second)
			for _, s := range []struct {
				sub message.Subscriber
				ch  <-chan *message.Message
			}{{holding, ch}, {waiting, idle}} {
				start := time.Now()
				if err := s.sub.Close(); err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("Close took %s", d)
				}
				if _, open := <-s.ch; open {
					t.Error("output channel open after Close")
				}
			}
			select {
			case <-held.Context().Done():
			default:
				t.Error("context of the held message not done after Close")
			}
			again := receive(t, subscribe(t, newSubscriber(t, tr, conf.StageRooms, 1), topic), 15*time.Second)
			again.Ack()
			if again.UUID != msg.UUID {
				t.Errorf("got %s, want %s back", again.UUID, msg.UUID)
			}
		})
	}
}

// TestTransport_memory_deliveries checks the memory transport's queues:
// a stage's subscriber holds at most workers messages, a nacked message
// frees its worker at once and comes back after the retry delay with its
// delivery counted, and an acked message is gone.
func TestTransport_memory_deliveries(t *testing.T) {
	t.Parallel()
	const retry = 300 * time.Millisecond
	cfg := memoryConfig(retry)
	tr := newTransport(t, cfg)
	if err := tr.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	topic := cfg.Stages.Transfer.Topic
	ch := subscribe(t, newSubscriber(t, tr, conf.StageTransfer, 2), topic)
	pub := newPublisher(t, tr)
	for i := range 3 {
		if err := pub.Publish(topic, message.NewMessage("m"+strconv.Itoa(i), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	a, b := receive(t, ch, time.Second), receive(t, ch, time.Second)
	noMessage(t, ch, 200*time.Millisecond) // two workers busy

	nacked := time.Now()
	a.Nack()
	c := receive(t, ch, 100*time.Millisecond) // the worker is free at once
	if c.UUID == a.UUID || pipeline.ReceiveCount(c) != 1 {
		t.Errorf("after a Nack got %s (count %d), want the third message", c.UUID, pipeline.ReceiveCount(c))
	}
	b.Ack()
	for n := 2; n <= 3; n++ {
		again := receive(t, ch, 2*time.Second)
		if d := time.Since(nacked); again.UUID != a.UUID || pipeline.ReceiveCount(again) != n || d < retry {
			t.Errorf("got %s (count %d) after %s, want %s (count %d) after %s", again.UUID, pipeline.ReceiveCount(again), d, a.UUID, n, retry)
		}
		if n < 3 {
			nacked = time.Now()
			again.Nack()
		} else {
			again.Ack()
		}
	}
	c.Ack()
	noMessage(t, ch, 2*retry)
	_ = conf.TransportMemory
}

// TestSubscriber_Close_drains: a stopping subscriber lets the handler in
// flight run on with a live context for the drain timeout; an Ack given
// then still removes the message. A handler still running when the drain
// ends has its context cancelled, and its message comes back at once, not
// after the visibility timeout (60 s here), its delivery not counted.
func TestSubscriber_Close_drains(t *testing.T) {
	t.Parallel()
	for _, tt := range transports(t, 60*time.Second, time.Second) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			uniqueNames(&tt.cfg)
			tt.cfg.Stages.DrainTimeout = 2 * time.Second
			tr := newTransport(t, tt.cfg)
			topic := tt.cfg.Stages.Rooms.Topic
			pub := newPublisher(t, tr)
			publish := func(body string) string {
				msg := message.NewMessage(watermill.NewUUID(), []byte(body))
				if err := pub.Publish(topic, msg); err != nil {
					t.Fatal(err)
				}
				return msg.UUID
			}
			closeAsync := func(sub message.Subscriber) <-chan time.Duration {
				done := make(chan time.Duration, 1)
				start := time.Now()
				go func() {
					if err := sub.Close(); err != nil {
						t.Error(err)
					}
					done <- time.Since(start)
				}()
				return done
			}

			// Acked within the drain: gone for good.
			sub := newSubscriber(t, tr, conf.StageRooms, 1)
			ch := subscribe(t, sub, topic)
			publish("drained")
			held := receive(t, ch, 15*time.Second)
			closed := closeAsync(sub)
			time.Sleep(time.Second)
			if err := held.Context().Err(); err != nil {
				t.Fatalf("the handler's context ended %v into the drain", err)
			}
			held.Ack()
			if d := <-closed; d > 2*time.Second {
				t.Errorf("Close took %s after the Ack", d)
			}

			// Still running when the drain ends: released at once.
			sub = newSubscriber(t, tr, conf.StageRooms, 1)
			ch = subscribe(t, sub, topic)
			id := publish("released")
			held = receive(t, ch, 15*time.Second)
			closed = closeAsync(sub)
			select {
			case <-held.Context().Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the handler's context lives on after the drain")
			}
			held.Nack() // what a cancelled handler does
			<-closed
			start := time.Now()
			again := receive(t, subscribe(t, newSubscriber(t, tr, conf.StageRooms, 1), topic), 15*time.Second)
			again.Ack()
			if again.UUID != id || string(again.Payload) != "released" || pipeline.Deliveries(again) != 1 {
				t.Errorf("got %s %q with %d deliveries, want %s back with 1", again.UUID, again.Payload, pipeline.Deliveries(again), id)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the released message came back after %s", d)
			}
		})
	}
}
