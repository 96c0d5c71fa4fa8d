package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/recording-storage/recording-storage/conf"
)

// memoryBackend is the memory transport: Watermill's gochannel, with a
// queue per topic and stage that behaves like the SQS queue of the aws
// transport. It keeps messages from the moment the queue exists (Setup,
// SubscribeInitialize or Subscribe) until they are acked, shares them among
// the subscribers of one stage, counts deliveries and delays redelivery after
// a Nack.
type memoryBackend struct {
	stages conf.Stages
	pubsub *gochannel.GoChannel

	mu     sync.Mutex
	queues map[queueKey]*memoryQueue
}

type queueKey struct{ topic, stage string }

// memoryQueue is one stage's subscription to a topic.
type memoryQueue struct {
	in <-chan *message.Message

	mu     sync.Mutex
	counts map[string]int // deliveries by message UUID, until acked
}

func newMemoryBackend(stages conf.Stages, logger watermill.LoggerAdapter) *memoryBackend {
	return &memoryBackend{
		stages: stages,
		pubsub: gochannel.NewGoChannel(gochannel.Config{}, logger),
		queues: map[queueKey]*memoryQueue{},
	}
}

// queue returns the queue through which stage reads topic, creating it.
func (b *memoryBackend) queue(topic, stage string) (*memoryQueue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := queueKey{topic, stage}
	if q, ok := b.queues[key]; ok {
		return q, nil
	}
	// The subscription lasts until the pub/sub closes: messages published
	// meanwhile wait in it for a subscriber of the stage.
	in, err := b.pubsub.Subscribe(context.Background(), topic)
	if err != nil {
		return nil, fmt.Errorf("cannot create queue of stage %s for topic %s: %w", stage, topic, err)
	}
	q := &memoryQueue{in: in, counts: map[string]int{}}
	b.queues[key] = q
	return q, nil
}

func (b *memoryBackend) setup(context.Context) error {
	inbound, _ := conf.InboundQueueName(b.stages.Parse.Queue)
	for _, s := range append(subscriptions(b.stages), subscription{inbound, conf.StageParse}) {
		if _, err := b.queue(s.topic, s.stage); err != nil {
			return err
		}
	}
	return nil
}

func (b *memoryBackend) publisher() (message.Publisher, error) {
	return sharedPublisher{b.pubsub}, nil
}

func (b *memoryBackend) inboundPublisher() (message.Publisher, error) {
	return sharedPublisher{b.pubsub}, nil
}

func (b *memoryBackend) subscriber(stage string, workers int) (message.Subscriber, error) {
	return &memorySubscriber{backend: b, stage: stage, workers: workers, relays: newRelays(b.stages.DrainTimeout)}, nil
}

func (b *memoryBackend) keepVisible(h message.HandlerFunc, _ time.Duration) message.HandlerFunc {
	return h
}

func (b *memoryBackend) close() error { return b.pubsub.Close() }

// sharedPublisher publishes to the transport's pub/sub, which outlives it.
type sharedPublisher struct {
	pubsub *gochannel.GoChannel
}

func (p sharedPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.pubsub.Publish(topic, msgs...)
}

func (p sharedPublisher) Close() error { return nil }

// memorySubscriber reads one stage's queues.
type memorySubscriber struct {
	backend *memoryBackend
	stage   string
	workers int
	relays  *relays
}

// SubscribeInitialize creates the stage's queue for topic.
func (s *memorySubscriber) SubscribeInitialize(topic string) error {
	_, err := s.backend.queue(topic, s.stage)
	return err
}

// Subscribe reads the stage's queue for topic, creating it if needed.
func (s *memorySubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	q, err := s.backend.queue(topic, s.stage)
	if err != nil {
		return nil, err
	}
	stages := s.backend.stages
	return s.relays.start(ctx, q.in, s.workers, deliveryHooks{
		metadata: func(orig *message.Message, md message.Metadata) {
			q.mu.Lock()
			q.counts[orig.UUID]++
			n := q.counts[orig.UUID]
			q.mu.Unlock()
			md.Set(MetaReceiveCount, strconv.Itoa(n))
		},
		nack: func(ctx context.Context, orig *message.Message) {
			q.mu.Lock()
			n := q.counts[orig.UUID]
			q.mu.Unlock()
			t := time.NewTimer(stages.NackDelay(n))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		},
		release: func(orig *message.Message) {
			q.mu.Lock()
			q.counts[orig.UUID]-- // a released delivery does not count
			q.mu.Unlock()
			orig.Nack()
		},
		settled: func(orig *message.Message, acked bool) {
			if acked {
				q.mu.Lock()
				delete(q.counts, orig.UUID)
				q.mu.Unlock()
			}
		},
	})
}

// Close ends the subscriptions; their messages not yet acked go back to
// their queues.
func (s *memorySubscriber) Close() error {
	s.relays.close()
	return nil
}
