package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/pipeline"
)

// The universal Pub/Sub test suite of Watermill, against the transports.
//
// Like watermill-aws's own suites, the aws ones force short mode: emulators
// are slow (goaws long-polls in 100 ms steps, expires visibility on a 1 s
// tick) and the long mode's 5000-message runs would take minutes. Tests the
// suite skips by these flags: TestReconnect (no RestartServiceCommand: the
// stack is shared with the other tests), TestNewSubscriberReceivesOldMessages
// (a queue hands a message to one subscriber, not to every new one),
// TestPublishSubscribeInOrder and TestNoAck (no order guarantee; TestNoAck is
// run on its own, see below) and, for the plain queue, TestConsumerGroups.

// suiteSubscriberStage is the stage that the suite's subscribers without a
// consumer group read as.
const suiteSubscriberStage = "suite"

// suiteTransport returns one transport for a whole suite run: its
// constructors are called many times per test and must share the queues.
func suiteTransport(t *testing.T, cfg conf.Config) *pipeline.Transport {
	// Nacked messages come back at once (the suite nacks a lot); a message
	// is redelivered 2 s after a subscriber closed without acking it.
	cfg.Stages.VisibilityTimeout = 2 * time.Second
	cfg.Stages.RetryDelay, cfg.Stages.RetryDelayMax = 0, 0
	// Watermill's contract: a message's context ends when its subscriber
	// closes (the service's drain is tested on its own).
	cfg.Stages.DrainTimeout = 0
	return newTransport(t, cfg)
}

func suiteConstructors(tr *pipeline.Transport, inbound bool) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	pair := func(t *testing.T, stage string) (message.Publisher, message.Subscriber) {
		pub, err := tr.Publisher()
		if inbound {
			pub, err = tr.InboundPublisher()
		}
		if err != nil {
			t.Fatal(err)
		}
		sub, err := tr.Subscriber(stage, 1)
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	if inbound {
		return func(t *testing.T) (message.Publisher, message.Subscriber) { return pair(t, conf.StageParse) }, nil
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return pair(t, suiteSubscriberStage) },
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) { return pair(t, group) }
}

// shortTopic keeps "<topic>-<consumer group>" within SQS's 80 characters:
// the suite's consumer groups are "cg_" and a UUID (39 characters).
func shortTopic(tctx tests.TestContext) string {
	return "rs-" + strings.ReplaceAll(string(tctx.TestID), "-", "")
}

// TestPubSub_aws_inbound_queue runs the suite on the parse stage's plain SQS
// queue: publishing is SendMessage, subscribing reads the queue.
func TestPubSub_aws_inbound_queue(t *testing.T) {
	t.Parallel()
	tr := suiteTransport(t, stackConfig(t, 0, 0))
	pubSub, _ := suiteConstructors(tr, true)
	features := tests.Features{
		// A plain queue has no consumer groups: every subscriber competes.
		ConsumerGroups: false,
		// SQS delivers at least once: a message not acked when its
		// subscriber closes comes back.
		ExactlyOnceDelivery: false,
		// Standard SQS queues do not keep order (watermill-aws claims it for
		// one message per receive on localstack; that is not an SQS promise).
		// TestNoAck, which the flag also skips, runs on its own (awsSuite).
		GuaranteedOrder: false,
		Persistent:      true,
		ForceShort:      true,
	}
	awsSuite(t, features, pubSub, nil)
}

// TestPubSub_aws_topics runs the suite on SNS topics read through one SQS
// queue per consumer group.
func TestPubSub_aws_topics(t *testing.T) {
	t.Parallel()
	tr := suiteTransport(t, stackConfig(t, 0, 0))
	pubSub, group := suiteConstructors(tr, false)
	features := tests.Features{
		ConsumerGroups:      true, // a stage is a consumer group, with its own queue
		ExactlyOnceDelivery: false,
		GuaranteedOrder:     false, // as watermill-aws's SNS suite: SNS to SQS keeps no order
		Persistent:          true,
		ForceShort:          true,
		GenerateTopicFunc:   shortTopic,
	}
	awsSuite(t, features, pubSub, group)
}

// awsSuite runs the suite with features, and then TestNoAck, which the
// suite skips without GuaranteedOrder: one worker holds one message and the
// next waits for its Ack, which SQS keeps although it keeps no order.
func awsSuite(t *testing.T, features tests.Features, pubSub tests.PubSubConstructor, group tests.ConsumerGroupPubSubConstructor) {
	tests.TestPubSub(t, features, pubSub, group)
	t.Run("TestNoAck_one_worker", func(t *testing.T) {
		t.Parallel()
		features := features
		features.GuaranteedOrder = true
		tests.TestNoAck(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, pubSub)
	})
}

// TestPubSub_memory runs the suite on the memory transport. Compared with
// gochannel's own flags (no consumer groups, exactly once, not persistent,
// a single instance), its queues per stage add consumer groups, keep
// messages for every subscriber of the transport (Persistent) and let the
// subscribers of one stage compete (no single instance); a message not
// acked when its subscriber closes comes back, so delivery is at least once.
// It is fast, so it runs in full unless -short.
func TestPubSub_memory(t *testing.T) {
	t.Parallel()
	tr := suiteTransport(t, memoryConfig(0))
	pubSub, group := suiteConstructors(tr, false)
	tests.TestPubSub(t, tests.Features{
		ConsumerGroups:      true,
		ExactlyOnceDelivery: false,
		GuaranteedOrder:     false, // gochannel hands out each message in its own goroutine
		Persistent:          true,
	}, pubSub, group)
}
