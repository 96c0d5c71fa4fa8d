package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
	"github.com/recording-storage/recording-storage/pipeline"
)

// TestTransport_fan_out_and_redelivery publishes a stage message to a topic
// read by two stages: each gets it with its UUID and metadata and the
// delivery metadata, and a Nack brings it back after the retry delay (1 s),
// long before the visibility timeout (30 s).
func TestTransport_fan_out_and_redelivery(t *testing.T) {
	t.Parallel()
	for _, tt := range transports(t, 30*time.Second, time.Second) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			uniqueNames(&tt.cfg)
			tr := newTransport(t, tt.cfg)
			if err := tr.Setup(context.Background()); err != nil {
				t.Fatal(err)
			}
			ins, err := tr.Input(conf.StageShare)
			if err != nil {
				t.Fatal(err)
			}
			topic := ins[0] // the share requests' topic
			share := subscribe(t, newSubscriber(t, tr, conf.StageShare, 1), topic)
			audit := subscribe(t, newSubscriber(t, tr, "audit", 1), topic)

			msg, err := messages.New(messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: "i.example", FileIDs: []int64{7}}, "job-1", 42)
			if err != nil {
				t.Fatal(err)
			}
			if err := newPublisher(t, tr).Publish(topic, msg); err != nil {
				t.Fatalf("Publish: %v", err)
			}

			var got [2]*message.Message
			for i, ch := range []<-chan *message.Message{share, audit} {
				got[i] = receive(t, ch, 15*time.Second)
				m := got[i]
				if m.UUID != msg.UUID || m.Metadata.Get(messages.MetaJobID) != "job-1" || m.Metadata.Get(messages.MetaMeetingID) != "42" {
					t.Errorf("got uuid %q metadata %v", m.UUID, m.Metadata)
				}
				if req, err := messages.Decode[messages.ShareRequest](m); err != nil || req.Instance != "i.example" {
					t.Errorf("decoded %+v, %v", req, err)
				}
				if n := pipeline.ReceiveCount(m); n != 1 {
					t.Errorf("receive count %d, want 1", n)
				}
				if tt.name == conf.TransportAWS && (m.Metadata.Get(pipeline.MetaReceiptHandle) == "" || m.Metadata.Get(pipeline.MetaQueueURL) == "") {
					t.Errorf("no SQS delivery metadata: %v", m.Metadata)
				}
			}
			got[1].Ack()
			nacked := time.Now()
			got[0].Nack()
			again := receive(t, share, 10*time.Second)
			elapsed := time.Since(nacked)
			again.Ack()
			if again.UUID != msg.UUID {
				t.Errorf("redelivered %q, want %q", again.UUID, msg.UUID)
			}
			// goaws makes a message visible on a 1 s tick.
			if elapsed < 900*time.Millisecond || elapsed > 5*time.Second {
				t.Errorf("redelivered after %s, want the retry delay of 1s (the visibility timeout is 30s)", elapsed)
			}
			switch n := pipeline.ReceiveCount(again); {
			case n == 2:
			case n == 1 && tt.name == conf.TransportAWS:
				t.Log("goaws v0.4.5 never counts deliveries: ApproximateReceiveCount stays 1 (real SQS says 2)")
			default:
				t.Errorf("receive count after a Nack %d, want 2", n)
			}
			noMessage(t, audit, 1500*time.Millisecond)
		})
	}
}

// TestTransport_inbound_queue sends job bodies to the inbound queue as
// producers do (SendMessage, no SNS), with the queue configured by name and
// by URL: the parse stage gets each body as sent, with the SQS message ID as
// UUID when Watermill's attribute is missing, and a message with attributes
// it cannot read still arrives, flagged, instead of staying in the queue.
func TestTransport_inbound_queue(t *testing.T) {
	t.Parallel()
	binaryType, numberType := aws.String("Binary"), aws.String("Number.int")
	tests := []struct {
		name      string
		byURL     bool
		attrs     map[string]sqstypes.MessageAttributeValue
		wantUUID  string // empty: the SQS message ID
		wantMeta  map[string]string
		wantError string // in MetaDecodeError
	}{
		{name: "plain_body"},
		{name: "queue_url", byURL: true},
		{name: "uuid_attribute", attrs: map[string]sqstypes.MessageAttributeValue{
			"_watermill_message_uuid": {DataType: aws.String("String"), StringValue: aws.String("uuid-1")},
			"source":                  {DataType: aws.String("String"), StringValue: aws.String("calendar")},
		}, wantUUID: "uuid-1", wantMeta: map[string]string{"source": "calendar"}},
		{name: "binary_uuid", attrs: map[string]sqstypes.MessageAttributeValue{
			"_watermill_message_uuid": {DataType: binaryType, BinaryValue: []byte("uuid-2")},
			"n":                       {DataType: aws.String("Number"), StringValue: aws.String("5")},
		}, wantUUID: "uuid-2", wantMeta: map[string]string{"n": "5"}},
		// goaws drops the values of custom types such as Number.int (real
		// SQS keeps them): an attribute without a value is left out.
		{name: "attribute_without_value", attrs: map[string]sqstypes.MessageAttributeValue{
			"blob": {DataType: numberType, StringValue: aws.String("5")},
		}, wantError: `attribute "blob" of type "Number.int" has no text value`},
		{name: "binary_attribute_not_text", attrs: map[string]sqstypes.MessageAttributeValue{
			"blob": {DataType: binaryType, BinaryValue: []byte{0xff, 0x00, 0xfe}},
		}, wantError: `attribute "blob" of type "Binary" has no text value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := stackConfig(t, 30*time.Second, time.Second)
			uniqueNames(&cfg)
			client := sqsClient(t, cfg)
			ctx := context.Background()
			if tt.byURL {
				// A URL must name an existing queue; the SDK sends to the
				// configured endpoint, goaws reads only the name.
				if _, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(cfg.Stages.Parse.Queue)}); err != nil {
					t.Fatal(err)
				}
				cfg.Stages.Parse.Queue = "https://sqs.us-east-1.amazonaws.com/000000000000/" + cfg.Stages.Parse.Queue
			}
			tr := newTransport(t, cfg)
			queue := tr.InboundQueue()
			if queue != cfg.Stages.Parse.Queue {
				t.Fatalf("InboundQueue() = %q, want %q", queue, cfg.Stages.Parse.Queue)
			}
			ch := subscribe(t, newSubscriber(t, tr, conf.StageParse, 1), queue)

			body := `{"storage":{"type":"dracoon"},"note":"` + tt.name + `"}`
			url, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue[strings.LastIndex(queue, "/")+1:])})
			if err != nil {
				t.Fatal(err)
			}
			sent, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url.QueueUrl, MessageBody: aws.String(body), MessageAttributes: tt.attrs})
			if err != nil {
				t.Fatal(err)
			}
			got := receive(t, ch, 15*time.Second)
			got.Ack()
			want := tt.wantUUID
			if want == "" {
				want = aws.ToString(sent.MessageId)
			}
			if got.UUID != want || string(got.Payload) != body {
				t.Errorf("got uuid %q payload %q, want %q %q", got.UUID, got.Payload, want, body)
			}
			for k, v := range tt.wantMeta {
				if got.Metadata.Get(k) != v {
					t.Errorf("metadata %s = %q, want %q", k, got.Metadata.Get(k), v)
				}
			}
			if e := got.Metadata.Get(pipeline.MetaDecodeError); !strings.Contains(e, tt.wantError) || (tt.wantError == "") != (e == "") {
				t.Errorf("decode error %q, want %q", e, tt.wantError)
			}
			if _, ok := got.Metadata["blob"]; ok {
				t.Error("unreadable attribute kept")
			}
			if pipeline.ReceiveCount(got) != 1 || got.Metadata.Get(pipeline.MetaReceiptHandle) == "" {
				t.Errorf("delivery metadata %v", got.Metadata)
			}
		})
	}
}

// TestTransport_Setup creates the topology on the stack over queues that
// already exist with other attributes: every queue gets the configured
// visibility timeout, every topic exists (a publish reaches the stage), and
// Setup can be repeated.
func TestTransport_Setup(t *testing.T) {
	t.Parallel()
	cfg := stackConfig(t, 7*time.Second, time.Second)
	uniqueNames(&cfg)
	client := sqsClient(t, cfg)
	ctx := context.Background()
	queues := []string{cfg.Stages.Parse.Queue, conf.SubscriptionQueue(cfg.Stages.Resolve.Topic, conf.StageResolve)}
	for _, q := range queues[:2] {
		if _, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(q), Attributes: map[string]string{"VisibilityTimeout": "30"}}); err != nil {
			t.Fatal(err)
		}
	}
	queues = append(queues,
		conf.SubscriptionQueue(cfg.Stages.Rooms.Topic, conf.StageRooms),
		conf.SubscriptionQueue(cfg.Stages.Transfer.Topic, conf.StageTransfer),
		conf.SubscriptionQueue(cfg.Stages.Share.Topic, conf.StageShare),
		conf.SubscriptionQueue(cfg.Stages.Transferred, conf.StageShare))
	tr := newTransport(t, cfg)
	for range 2 {
		if err := tr.Setup(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range queues {
		url, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q)})
		if err != nil {
			t.Fatalf("queue %s: %v", q, err)
		}
		attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url.QueueUrl,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout, sqstypes.QueueAttributeNameRedrivePolicy}})
		if err != nil {
			t.Fatal(err)
		}
		if vt := attrs.Attributes["VisibilityTimeout"]; vt != "7" {
			t.Errorf("queue %s: VisibilityTimeout %s, want 7", q, vt)
		}
		// Every queue a stage reads has the dead-letter backstop (goaws
		// keeps no retention period, so that is not visible here).
		var redrive struct {
			Target string `json:"deadLetterTargetArn"`
			Count  any    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &redrive); err != nil ||
			!strings.HasSuffix(redrive.Target, conf.DeadLetterQueue(cfg.Stages.Poison)) ||
			fmt.Sprint(redrive.Count) != strconv.Itoa(cfg.Stages.DeadLetterReceives()) {
			t.Errorf("queue %s: RedrivePolicy %q, want %s after %d receives", q, attrs.Attributes["RedrivePolicy"],
				conf.DeadLetterQueue(cfg.Stages.Poison), cfg.Stages.DeadLetterReceives())
		}
	}
	// Messages published before any subscriber runs wait in the stage queues;
	// the publish-only topics exist.
	pub := newPublisher(t, tr)
	for _, topic := range []string{cfg.Stages.Rooms.Topic, cfg.Stages.Poison} {
		if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(topic))); err != nil {
			t.Errorf("Publish(%s): %v", topic, err)
		}
	}
	got := receive(t, subscribe(t, newSubscriber(t, tr, conf.StageRooms, 1), cfg.Stages.Rooms.Topic), 15*time.Second)
	got.Ack()
	if string(got.Payload) != cfg.Stages.Rooms.Topic {
		t.Errorf("rooms stage got %q", got.Payload)
	}
}

// TestTransport_errors checks the mistakes the transport reports itself, as
// permanent errors naming what is wrong.
func TestTransport_errors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, cfg conf.Config) error
		want string
	}{
		{name: "queue_name_too_long", run: func(t *testing.T, cfg conf.Config) error {
			sub := newSubscriber(t, newTransport(t, cfg), strings.Repeat("g", 40), 1)
			_, err := sub.Subscribe(ctx, cfg.Stages.Share.Topic+strings.Repeat("t", 30))
			return err
		}, want: "SQS allows 1 to 80 letters"},
		{name: "missing_inbound_queue_url", run: func(t *testing.T, cfg conf.Config) error {
			cfg.Stages.Parse.Queue = "https://sqs.us-east-1.amazonaws.com/000000000000/" + cfg.Stages.Parse.Queue
			return newTransport(t, cfg).Setup(ctx)
		}, want: "cannot find inbound queue"},
		{name: "wrong_account", run: func(t *testing.T, cfg conf.Config) error {
			cfg.AWS.AccountID = "123456789012"
			return newTransport(t, cfg).Setup(ctx)
		}, want: "check aws.account_id and aws.region"},
		{name: "no_account", run: func(t *testing.T, cfg conf.Config) error {
			cfg.AWS.AccountID = ""
			_, err := pipeline.NewTransport(ctx, cfg, nil)
			return err
		}, want: "aws.account_id must be set"},
		{name: "unknown_transport", run: func(t *testing.T, cfg conf.Config) error {
			cfg.Stages.Transport = "kafka"
			_, err := pipeline.NewTransport(ctx, cfg, nil)
			return err
		}, want: `stages.transport must be "aws" or "memory", got "kafka"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := stackConfig(t, 30*time.Second, time.Second)
			uniqueNames(&cfg)
			err := tt.run(t, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if tt.name != "missing_inbound_queue_url" && !errclass.IsPermanent(err) {
				t.Errorf("error %v is %s, want permanent", err, errclass.Of(err))
			}
		})
	}
}

// TestPoisonQueue_dead_letters: a message SQS moved to the dead-letter
// queue (here sent there as SQS would leave it) shows in the operators'
// listing with the stage that reads it, and a requeue sends it back there.
func TestPoisonQueue_dead_letters(t *testing.T) {
	t.Parallel()
	cfg := stackConfig(t, 7*time.Second, time.Second)
	uniqueNames(&cfg)
	ctx := context.Background()
	tr := newTransport(t, cfg)
	if err := tr.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	client := sqsClient(t, cfg)
	dlq, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(conf.DeadLetterQueue(cfg.Stages.Poison))})
	if err != nil {
		t.Fatalf("no dead-letter queue: %v", err)
	}
	attr := func(v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: dlq.QueueUrl, MessageBody: aws.String(`{"version":1}`),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{"_watermill_message_uuid": attr(watermill.NewUUID()),
			messages.MetaPayload: attr(messages.PayloadRoomsReady + "/1"), messages.MetaJobID: attr("dead-job")}}); err != nil {
		t.Fatal(err)
	}
	q, err := tr.PoisonQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := q.List(ctx)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("List = %+v, %v; want the dead-lettered message", msgs, err)
	}
	m := msgs[0]
	if !m.DeadLettered || m.Stage != conf.StageTransfer || m.Class != "unknown" || m.JobID != "dead-job" ||
		!strings.Contains(m.Reason, "dead-lettered") {
		t.Fatalf("listed as %+v", m)
	}
	in := subscribe(t, newSubscriber(t, tr, conf.StageTransfer, 1), cfg.Stages.Transfer.Topic)
	if done, err := q.Requeue(ctx, m.ID); err != nil || len(done) != 1 {
		t.Fatalf("Requeue = %v, %v", done, err)
	}
	got := receive(t, in, 15*time.Second)
	got.Ack()
	if string(got.Payload) != `{"version":1}` || got.Metadata.Get(messages.MetaJobID) != "dead-job" {
		t.Errorf("requeued as %q %v", got.Payload, got.Metadata)
	}
}
