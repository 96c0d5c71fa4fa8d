package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	amazonsqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueMetricsInterval is how often a process asks SQS for the depth of
// each queue its stages read: one GetQueueAttributes per queue and
// interval, whatever the number of workers.
const QueueMetricsInterval = 30 * time.Second

// metaSentTimestamp carries the SQS SentTimestamp of a received message from
// the unmarshaler to the subscriber, which removes it (it is not forwarded).
const metaSentTimestamp = "sqs_sent_timestamp"

// Queue states of recording_storage_queue_messages, from SQS's
// ApproximateNumberOfMessages, ...NotVisible and ...Delayed.
const (
	queueStateVisible  = "visible"
	queueStateInFlight = "in_flight"
	queueStateDelayed  = "delayed"
)

// queueMetrics are the gauges of the queues a process reads.
type queueMetrics struct {
	messages *prometheus.GaugeVec // queue, stage, state
	oldest   *prometheus.GaugeVec // queue, stage
}

func newQueueMetrics(reg prometheus.Registerer) (*queueMetrics, error) {
	m := &queueMetrics{
		messages: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recording_storage_queue_messages",
			Help: "Messages in a queue a stage of this process reads, by state (visible: waiting; in_flight: received, not yet deleted; delayed), as SQS approximates them, polled every 30s."},
			[]string{"queue", "stage", "state"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recording_storage_queue_oldest_message_age_seconds",
			Help: "Estimated age of the oldest waiting message of a queue a stage of this process reads: 0 when none waits, else the time since the later of the last received message's SentTimestamp and the last poll that found the queue empty (an upper bound)."},
			[]string{"queue", "stage"}),
	}
	for _, c := range []prometheus.Collector{m.messages, m.oldest} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cannot register the queue metrics: %w", err)
		}
	}
	return m, nil
}

// queueClock remembers, per queue URL, the SentTimestamp of the last message
// received, so that the age of the oldest waiting one can be estimated. It
// is safe for concurrent use.
type queueClock struct {
	mu   sync.Mutex
	sent map[string]time.Time
}

func newQueueClock() *queueClock { return &queueClock{sent: map[string]time.Time{}} }

// received notes a message received from the queue at url, sent at
// millis (SQS SentTimestamp, milliseconds since the epoch).
func (c *queueClock) received(url, millis string) {
	ms, err := strconv.ParseInt(millis, 10, 64)
	if err != nil {
		return
	}
	at := time.UnixMilli(ms)
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.sent[url]) {
		c.sent[url] = at
	}
}

func (c *queueClock) lastSent(url string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[url]
}

// watchedQueue is one queue the poller asks for.
type watchedQueue struct {
	stage, input, name string
	url                string    // found on first use
	empty              time.Time // the last poll that found no waiting message
}

// watchQueues polls the depth of the queues the stages read every
// QueueMetricsInterval until ctx is done. Errors are logged, once per
// queue until it answers again.
func (b *awsBackend) watchQueues(ctx context.Context, stages []string, m *queueMetrics) {
	topo := NewTopology(b.cfg)
	started := time.Now()
	var queues []*watchedQueue
	for _, st := range stages {
		io, _ := topo.Stage(st)
		for i, input := range b.inputs(io) {
			queues = append(queues, &watchedQueue{stage: st, input: input, name: io.Queues[i], empty: started})
		}
	}
	if len(queues) == 0 {
		return
	}
	failing := map[string]bool{}
	t := time.NewTicker(QueueMetricsInterval)
	defer t.Stop()
	for {
		for _, q := range queues {
			err := b.pollQueue(ctx, q, m)
			if ctx.Err() != nil {
				return
			}
			if (err != nil) != failing[q.name] {
				failing[q.name] = err != nil
				if err != nil {
					b.logger.Error("Cannot read the depth of a queue", err, watermill.LogFields{"queue": q.name})
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollQueue reads the depth of q once and sets its gauges.
func (b *awsBackend) pollQueue(ctx context.Context, q *watchedQueue, m *queueMetrics) error {
	ctx, cancel := context.WithTimeout(ctx, awsCallTimeout)
	defer cancel()
	if q.url == "" {
		url, err := b.lookupQueue(ctx, q.stage, q.input)
		if err != nil {
			return err
		}
		q.url = url
	}
	out, err := b.sqs.GetQueueAttributes(ctx, &amazonsqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		return fmt.Errorf("cannot get the attributes of queue %s: %w", q.name, err)
	}
	now := time.Now()
	var errs []error
	count := func(attr sqstypes.QueueAttributeName) float64 {
		v, ok := out.Attributes[string(attr)]
		if !ok {
			return 0 // goaws has no delayed messages
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("queue %s: attribute %s is %q, not a number", q.name, attr, v))
		}
		return n
	}
	visible := count(sqstypes.QueueAttributeNameApproximateNumberOfMessages)
	m.messages.WithLabelValues(q.name, q.stage, queueStateVisible).Set(visible)
	m.messages.WithLabelValues(q.name, q.stage, queueStateInFlight).Set(count(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible))
	m.messages.WithLabelValues(q.name, q.stage, queueStateDelayed).Set(count(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed))
	age := 0.0
	if visible == 0 {
		q.empty = now
	} else {
		// A waiting message arrived after the last poll that found the queue
		// empty, and (roughly: SQS keeps no strict order) after the last
		// message received from it.
		since := q.empty
		if sent := b.clock.lastSent(q.url); sent.After(since) {
			since = sent
		}
		age = max(now.Sub(since).Seconds(), 0)
	}
	m.oldest.WithLabelValues(q.name, q.stage).Set(age)
	return errors.Join(errs...)
}
