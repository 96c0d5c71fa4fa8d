// Package pipeline is the topology of the service: how messages travel
// between the stages over SNS topics and SQS queues, or over Go channels when
// every stage runs in one process.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// Transport connects the stages. With the aws transport, producers send jobs
// to a plain SQS queue that the parse stage reads, and every further stage
// publishes to SNS topics that each consuming stage reads through its own SQS
// queue ("<topic>-<stage>", raw delivery), so that stages scale and fail
// independently. The memory transport gives the same behaviour with Go
// channels inside one process.
//
// Received messages carry MetaReceiveCount; a nacked message comes back after
// stages.retry_delay; KeepVisible keeps a message from a second worker while
// its handler runs; publishers refuse messages beyond the SQS and SNS limits.
type Transport struct {
	cfg     conf.Config
	logger  watermill.LoggerAdapter
	backend backend
}

// subscription is a topic a stage (or conf.PoisonInspectGroup) reads.
type subscription struct{ topic, stage string }

// subscriptions returns every topic that a stage reads, with the stage, as
// conf.StageTable declares them; the parse stage reads the inbound queue
// instead. The poison topic's queue is for operators: SNS drops what no
// queue receives.
func subscriptions(s conf.Stages) []subscription {
	var subs []subscription
	for _, d := range conf.StageTable() {
		for _, in := range d.Inputs {
			if !in.Inbound {
				subs = append(subs, subscription{in.From(s), d.Name})
			}
		}
	}
	return append(subs, subscription{s.Poison, conf.PoisonInspectGroup})
}

// backend is one kind of transport.
type backend interface {
	setup(ctx context.Context) error
	publisher() (message.Publisher, error)
	inboundPublisher() (message.Publisher, error)
	subscriber(group string, workers int) (message.Subscriber, error)
	keepVisible(h message.HandlerFunc, limit time.Duration) message.HandlerFunc
	close() error
}

// NewTransport prepares the transport that cfg.Stages.Transport names. It
// creates nothing yet: see Setup.
func NewTransport(ctx context.Context, cfg conf.Config, logger watermill.LoggerAdapter) (*Transport, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	t := &Transport{cfg: cfg, logger: logger}
	switch cfg.Stages.Transport {
	case conf.TransportAWS:
		b, err := newAWSBackend(ctx, cfg, logger)
		if err != nil {
			return nil, err
		}
		t.backend = b
	case conf.TransportMemory:
		t.backend = newMemoryBackend(cfg.Stages, logger)
	default:
		return nil, errclass.AsPermanent(fmt.Errorf("cannot create transport: stages.transport must be %q or %q, got %q",
			conf.TransportAWS, conf.TransportMemory, cfg.Stages.Transport))
	}
	return t, nil
}

// Kind returns conf.TransportAWS or conf.TransportMemory.
func (t *Transport) Kind() string { return t.cfg.Stages.Transport }

// Setup creates every topic and queue of the configuration that is missing
// and applies the queue attributes (the visibility timeout) to queues that
// already exist. Subscribe creates what it needs itself; Setup also creates
// the topics that are only published to, so that a process running some
// stages can publish to stages that run elsewhere. It is safe to repeat.
func (t *Transport) Setup(ctx context.Context) error { return t.backend.setup(ctx) }

// Input returns what the handlers of stage read, one per input of its
// declaration (conf.StageTable): for the parse stage the inbound queue (a
// name or URL for aws, its name for memory), for the others topics.
func (t *Transport) Input(stage string) ([]string, error) {
	d, ok := conf.LookupStage(stage)
	if !ok {
		return nil, errclass.AsPermanent(fmt.Errorf("cannot find the input of stage %q: no such stage", stage))
	}
	ins := stageInputs(t.cfg.Stages, stage)
	for i, in := range d.Inputs {
		if in.Inbound && t.Kind() == conf.TransportMemory {
			ins[i], _ = conf.InboundQueueName(ins[i])
		}
	}
	return ins, nil
}

// stageInputs returns what each input of stage reads in s (see
// conf.StageInput.From); nil for a stage that is not declared.
func stageInputs(s conf.Stages, stage string) []string {
	d, _ := conf.LookupStage(stage)
	var ins []string
	for _, in := range d.Inputs {
		ins = append(ins, in.From(s))
	}
	return ins
}

// InboundQueue returns the inbound queue as the parse stage's subscriber
// reads it (see Input).
func (t *Transport) InboundQueue() string {
	ins, _ := t.Input(conf.StageParse) // declared: cannot fail
	return ins[0]
}

// Publisher returns a publisher to topics. It refuses messages that SQS or
// SNS would refuse (see ErrMessageLimits), drops metadata with empty values,
// and does not forward the delivery metadata of received messages
// (MetaReceiptHandle, MetaQueueURL, MetaReceiveCount).
func (t *Transport) Publisher() (message.Publisher, error) {
	p, err := t.backend.publisher()
	if err != nil {
		return nil, err
	}
	return limitPublisher{next: p}, nil
}

// InboundPublisher returns a publisher to the inbound queue, named as Input
// returns it for conf.StageParse: it sends as producers do, with SendMessage to the
// plain SQS queue (with the message's metadata as attributes). It is for
// tools and tests; the stages publish with Publisher.
func (t *Transport) InboundPublisher() (message.Publisher, error) {
	p, err := t.backend.inboundPublisher()
	if err != nil {
		return nil, err
	}
	return limitPublisher{next: p}, nil
}

// Subscriber returns a subscriber for stage that handles up to workers
// messages at once. For conf.StageParse it reads the inbound queue given to
// Subscribe; for any other name it reads the topic given to Subscribe through
// the stage's own queue, so every stage gets every message of a topic and the
// subscribers of one stage share them. Subscribe creates the topic and queue
// if they are missing. Close returns promptly; messages not yet acked come
// back later.
func (t *Transport) Subscriber(stage string, workers int) (message.Subscriber, error) {
	if stage == "" {
		return nil, errclass.AsPermanent(errors.New("cannot create subscriber: empty stage name"))
	}
	if workers < 1 {
		workers = 1
	}
	return t.backend.subscriber(stage, workers)
}

// KeepVisible is a handler middleware that keeps the message hidden from
// other workers while h runs, however long it runs, by extending its
// visibility timeout every third of it. Add it outside the middleware that
// retries or waits (first, with Router.AddMiddleware), so that retries are
// covered too. With the memory transport it returns h.
func (t *Transport) KeepVisible(h message.HandlerFunc) message.HandlerFunc {
	return t.backend.keepVisible(h, 0)
}

// KeepVisibleFor is KeepVisible for at most limit after the handling
// started: a handling that runs longer (it outlived every attempt's
// timeout: it hangs) is no longer kept hidden, so that another worker gets
// the message once its visibility timeout ends. Zero means no limit.
func (t *Transport) KeepVisibleFor(limit time.Duration) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc { return t.backend.keepVisible(h, limit) }
}

// Close releases the transport; with the memory transport it ends every
// subscription and drops the messages not yet handled. Close subscribers and
// publishers first.
func (t *Transport) Close() error { return t.backend.close() }
