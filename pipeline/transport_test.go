package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/messages"
	"github.com/recording-storage/recording-storage/pipeline"
)

func stackTransport(t *testing.T, visibility time.Duration) *pipeline.Transport {
	t.Helper()
	if os.Getenv("RS_TEST_STACK") == "" {
		t.Fatal("the local stack is not running: run `make test`, or `make stack-up` and `. .stack/env` before `go test`")
	}
	cfg, err := conf.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Below the production minimum, so that a Nack comes back within the test.
	cfg.Stages.VisibilityTimeout = visibility
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	tr, err := pipeline.NewTransport(context.Background(), cfg, pipeline.NewWatermillLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15 s")
		return nil
	}
}

// TestTransport_fan_out_and_redelivery publishes a stage message through SNS
// to two consumer groups on goaws: each group gets it with its UUID and
// metadata, and a Nacked message comes back after the visibility timeout.
func TestTransport_fan_out_and_redelivery(t *testing.T) {
	tr := stackTransport(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pub, err := tr.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	topic := fmt.Sprintf("rs-transport-test-%d", time.Now().UnixNano())
	if _, err := pub.CreateTopic(ctx, topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}

	var channels []<-chan *message.Message
	for _, group := range []string{"transfer", "audit"} {
		sub, err := tr.Subscriber(group, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ch, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatalf("Subscribe(%s): %v", group, err)
		}
		channels = append(channels, ch)
	}

	msg, err := messages.New(messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: "i.example", FileIDs: []int64{7}}, "job-1", 42)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(topic, msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	for i, ch := range channels {
		got := receive(t, ch)
		if got.UUID != msg.UUID || got.Metadata.Get(messages.MetaJobID) != "job-1" || got.Metadata.Get(messages.MetaMeetingID) != "42" {
			t.Errorf("group %d got uuid %q metadata %v", i, got.UUID, got.Metadata)
		}
		req, err := messages.Decode[messages.ShareRequest](got)
		if err != nil || req.Instance != "i.example" {
			t.Errorf("group %d decoded %+v, %v", i, req, err)
		}
		if i == 0 {
			got.Nack()
			again := receive(t, ch)
			if again.UUID != msg.UUID {
				t.Errorf("redelivered %q, want %q", again.UUID, msg.UUID)
			}
			again.Ack()
			continue
		}
		got.Ack()
	}
}
