package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
)

// TestQueueMetrics: the gauges show the waiting messages of a queue on the
// stack and an age since the last poll that found it empty; a received
// message moves the estimate to its SentTimestamp, which is not forwarded;
// an empty queue has age 0.
func TestQueueMetrics(t *testing.T) {
	cfg := awstest.Config(t)
	cfg.Stages.Parse.Queue = "qm-" + strings.ToLower(watermill.NewShortUUID()[:8])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := NewTransport(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	b := tr.backend.(*awsBackend)
	if _, err := b.ensureInbound(ctx, cfg.Stages.Parse.Queue); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := newQueueMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	q := &watchedQueue{stage: conf.StageParse, input: cfg.Stages.Parse.Queue, name: cfg.Stages.Parse.Queue, empty: time.Now().Add(-time.Hour)}
	gauges := func() (visible, age float64) {
		t.Helper()
		if err := b.pollQueue(ctx, q, m); err != nil {
			t.Fatal(err)
		}
		return testutil.ToFloat64(m.messages.WithLabelValues(q.name, conf.StageParse, queueStateVisible)),
			testutil.ToFloat64(m.oldest.WithLabelValues(q.name, conf.StageParse))
	}

	if visible, age := gauges(); visible != 0 || age != 0 {
		t.Fatalf("empty queue: visible %v, age %v; want 0, 0", visible, age)
	}
	q.empty = time.Now().Add(-time.Hour) // as if the last empty poll was an hour ago
	pub, err := tr.InboundPublisher()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := pub.Publish(cfg.Stages.Parse.Queue, message.NewMessage(watermill.NewUUID(), []byte("{}"))); err != nil {
			t.Fatal(err)
		}
	}
	if visible, age := gauges(); visible != 2 || age < 3500 {
		t.Fatalf("two messages: visible %v, age %v; want 2 and about an hour", visible, age)
	}

	sub, err := tr.Subscriber(conf.StageParse, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	in := tr.InboundQueue()
	ch, err := sub.Subscribe(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	msg := <-ch
	if _, leaked := msg.Metadata[metaSentTimestamp]; leaked {
		t.Errorf("the SentTimestamp reached the handler's metadata: %v", msg.Metadata)
	}
	msg.Ack()
	if _, age := gauges(); age > 60 {
		t.Errorf("after a receive the age is %v s; want the time since that message was sent", age)
	}
}
