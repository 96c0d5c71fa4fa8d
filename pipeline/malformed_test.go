package pipeline_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/pipeline"
)

// TestParse_malformed_corpus_through_SQS sends the corpus of malformed job
// messages (testdata/messages/malformed.json) through the inbound SQS queue
// with valid jobs among them: the parse stage poisons each bad one with a
// reason naming its field, passes every good one on, and does not crash.
func TestParse_malformed_corpus_through_SQS(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../testdata/messages/malformed.json")
	if err != nil {
		t.Fatal(err)
	}
	var corpus []struct{ Name, Field, Reason, Message string }
	if err := json.Unmarshal(raw, &corpus); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile("../testdata/messages/original-example.json")
	if err != nil {
		t.Fatal(err)
	}

	cfg := stackConfig(t, 30*time.Second, time.Second)
	uniqueNames(&cfg)
	cfg.Stages.Parse.Workers = 4
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Stages: []string{conf.StageParse}, Steps: &failingSteps{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	tr := svc.Transport()
	parsed := subscribe(t, newSubscriber(t, tr, conf.StageResolve, 4), cfg.Stages.Resolve.Topic)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-svc.Running()

	pub, err := tr.InboundPublisher()
	if err != nil {
		t.Fatal(err)
	}
	queue := tr.InboundQueue()
	bad := map[string]int{} // body -> corpus index
	goods := 0
	for i, m := range corpus {
		if err := pub.Publish(queue, message.NewMessage(watermill.NewUUID(), []byte(m.Message))); err != nil {
			// SQS itself refuses it (a NUL, say): it can never arrive.
			t.Logf("%s: not sendable: %v", m.Name, err)
			continue
		}
		bad[m.Message] = i
		if i%30 == 0 {
			if err := pub.Publish(queue, message.NewMessage(watermill.NewUUID(), good)); err != nil {
				t.Fatal(err)
			}
			goods++
		}
	}
	if len(bad) < 100 {
		t.Fatalf("only %d malformed messages were sent", len(bad))
	}
	for range goods {
		m := receive(t, parsed, time.Minute)
		m.Ack()
	}

	q, err := tr.PoisonQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[int]bool{}
	deadline := time.Now().Add(2 * time.Minute)
	for len(found) < len(bad) && time.Now().Before(deadline) {
		msgs, err := q.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, pm := range msgs {
			i, ok := bad[pm.Payload]
			if !ok {
				t.Fatalf("poisoned a message not of the corpus: %.200q", pm.Payload)
			}
			m := corpus[i]
			if pm.Stage != conf.StageParse || pm.Class != "permanent" || !strings.Contains(pm.Reason, m.Field+": ") {
				t.Errorf("%s: poisoned by %s (%s) with %q; want parse, permanent, naming %s", m.Name, pm.Stage, pm.Class, pm.Reason, m.Field)
			}
			found[i] = true
		}
		time.Sleep(time.Second)
	}
	if len(found) != len(bad) {
		t.Fatalf("%d of %d malformed messages poisoned", len(found), len(bad))
	}
	noMessage(t, parsed, time.Second)
}
