package pipeline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/pipeline"
)

// stackConfig returns the configuration of the aws transport on the local
// stack, with short timeouts for tests: a visibility timeout of visibility
// and a retry delay of retry.
func stackConfig(t *testing.T, visibility, retry time.Duration) conf.Config {
	t.Helper()
	cfg := awstest.Config(t)
	cfg.Stages.Transport = conf.TransportAWS
	// Below the production minimum of 1m, so that tests see redeliveries.
	cfg.Stages.VisibilityTimeout = visibility
	cfg.Stages.RetryDelay, cfg.Stages.RetryDelayMax = retry, retry
	return cfg
}

// memoryConfig returns the configuration of the memory transport.
func memoryConfig(retry time.Duration) conf.Config {
	cfg := conf.Default()
	cfg.Stages.Transport = conf.TransportMemory
	cfg.Stages.RetryDelay, cfg.Stages.RetryDelayMax = retry, retry
	return cfg
}

// transports returns the configurations of both transports.
func transports(t *testing.T, visibility, retry time.Duration) []struct {
	name string
	cfg  conf.Config
} {
	return []struct {
		name string
		cfg  conf.Config
	}{
		{name: conf.TransportMemory, cfg: memoryConfig(retry)},
		{name: conf.TransportAWS, cfg: stackConfig(t, visibility, retry)},
	}
}

// uniqueNames gives every topic and queue of cfg a name of its own, so that
// tests running at once on the stack do not share queues.
func uniqueNames(cfg *conf.Config) {
	p := "rs-" + strings.ReplaceAll(watermill.NewUUID(), "-", "")[:10] + "-"
	s := &cfg.Stages
	s.Parse.Queue = p + s.Parse.Queue
	s.Parse.Topic = p + s.Parse.Topic
	for _, st := range []*conf.Stage{&s.Resolve, &s.Rooms, &s.Transfer, &s.Share} {
		st.Topic = p + st.Topic
	}
	s.Transferred = p + s.Transferred
	s.Poison = p + s.Poison
}

func testLogger() watermill.LoggerAdapter {
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	return pipeline.NewWatermillLogger(log)
}

func newTransport(t *testing.T, cfg conf.Config) *pipeline.Transport {
	t.Helper()
	tr, err := pipeline.NewTransport(context.Background(), cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func newPublisher(t *testing.T, tr *pipeline.Transport) message.Publisher {
	t.Helper()
	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

func newSubscriber(t *testing.T, tr *pipeline.Transport, stage string, workers int) message.Subscriber {
	t.Helper()
	sub, err := tr.Subscriber(stage, workers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func subscribe(t *testing.T, sub message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", topic, err)
	}
	return ch
}

// receive returns the next message of ch, failing after within.
func receive(t *testing.T, ch <-chan *message.Message, within time.Duration) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return m
	case <-time.After(within):
		t.Fatalf("no message within %s", within)
		return nil
	}
}

// noMessage fails if ch yields a message within d.
func noMessage(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-ch:
		if ok {
			t.Fatalf("unexpected message %s %q %v", m.UUID, m.Payload, m.Metadata)
		}
	case <-time.After(d):
	}
}

// sqsClient returns a plain SQS client on the stack, as producers use.
func sqsClient(t *testing.T, cfg conf.Config) *sqs.Client {
	t.Helper()
	awsCfg, err := awsclient.Config(context.Background(), cfg.AWS)
	if err != nil {
		t.Fatal(err)
	}
	return awsclient.SQS(awsCfg, cfg.AWS)
}
