package pipeline_test

import (
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/pipeline"
)

// TestPublisher_limits publishes messages at and beyond the SQS and SNS
// limits (which goaws does not enforce) through both transports: those
// within arrive with their metadata, minus empty values and the delivery
// metadata of a received message; the others fail with a permanent error
// before anything of their batch is sent.
func TestPublisher_limits(t *testing.T) {
	t.Parallel()
	keys := func(n int) message.Metadata {
		md := message.Metadata{}
		for i := range n {
			md.Set("key_"+strconv.Itoa(i), "v")
		}
		return md
	}
	with := func(md message.Metadata, kv ...string) message.Metadata {
		md = maps.Clone(md)
		for i := 0; i < len(kv); i += 2 {
			md.Set(kv[i], kv[i+1])
		}
		return md
	}
	const uuid = "0123456789abcdef0123456789abcdef"
	// A body that, with Watermill's UUID attribute, is exactly 256 KiB.
	largest := strings.Repeat("b", pipeline.MaxMessageSize-len("_watermill_message_uuid")-len("String")-len(uuid))
	tests := []struct {
		name    string
		payload string
		meta    message.Metadata
		want    message.Metadata // received metadata without delivery keys; nil: refused
		wantErr string
	}{
		{name: "nine_keys", payload: "x", meta: keys(9), want: keys(9)},
		{name: "empty_values_dropped", payload: "x", meta: with(keys(9), "empty", ""), want: keys(9)},
		{name: "delivery_metadata_dropped", payload: "x",
			meta: with(keys(9), pipeline.MetaReceiveCount, "3", pipeline.MetaReceiptHandle, "r", pipeline.MetaQueueURL, "u"), want: keys(9)},
		{name: "largest", payload: largest, meta: message.Metadata{}, want: message.Metadata{}},
		{name: "ten_keys", payload: "x", meta: keys(10), wantErr: "10 metadata keys"},
		{name: "too_large", payload: largest + "b", meta: message.Metadata{}, wantErr: "262145 bytes with metadata, more than 262144"},
		{name: "too_large_with_metadata", payload: largest, meta: message.Metadata{"k": "v"}, wantErr: "more than 262144"},
		{name: "empty_payload", payload: "", meta: message.Metadata{}, wantErr: "empty payload"},
		{name: "payload_not_utf8", payload: "\xff", meta: message.Metadata{}, wantErr: "payload is not UTF-8"},
		{name: "payload_control_character", payload: "a\x00b", meta: message.Metadata{}, wantErr: "payload is not UTF-8"},
		{name: "value_control_character", payload: "x", meta: message.Metadata{"k": "a\x1fb"}, wantErr: `value of metadata "k"`},
		{name: "key_with_space", payload: "x", meta: message.Metadata{"a b": "v"}, wantErr: `metadata key "a b" is not an SQS attribute name`},
		{name: "key_with_aws_prefix", payload: "x", meta: message.Metadata{"AWS.trace": "v"}, wantErr: `metadata key "AWS.trace"`},
		{name: "key_too_long", payload: "x", meta: message.Metadata{strings.Repeat("k", 257): "v"}, wantErr: "is not an SQS attribute name"},
	}
	for _, tr := range transports(t, 30*time.Second, time.Second) {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			uniqueNames(&tr.cfg)
			transport := newTransport(t, tr.cfg)
			pub := newPublisher(t, transport)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					topic := tr.cfg.Stages.Share.Topic + "-" + strings.ReplaceAll(tt.name, "_", "-")
					msg := message.NewMessage(uuid, []byte(tt.payload))
					msg.Metadata = maps.Clone(tt.meta)
					if tt.want == nil {
						err := pub.Publish(topic, msg)
						if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
							t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
						}
						if !errors.Is(err, pipeline.ErrMessageLimits) || !errclass.IsPermanent(err) {
							t.Errorf("error %v: not a permanent ErrMessageLimits", err)
						}
						return
					}
					ch := subscribe(t, newSubscriber(t, transport, conf.StageShare, 1), topic)
					if err := pub.Publish(topic, msg); err != nil {
						t.Fatal(err)
					}
					got := receive(t, ch, 15*time.Second)
					got.Ack()
					if got.UUID != msg.UUID || string(got.Payload) != tt.payload {
						t.Fatalf("got %s (%d bytes), want %s (%d bytes)", got.UUID, len(got.Payload), msg.UUID, len(tt.payload))
					}
					md := maps.Clone(got.Metadata)
					for _, k := range []string{pipeline.MetaReceiveCount, pipeline.MetaReceiptHandle, pipeline.MetaQueueURL} {
						delete(md, k)
					}
					if !maps.Equal(md, tt.want) || pipeline.ReceiveCount(got) != 1 {
						t.Errorf("received metadata %v, want %v and a receive count of 1", got.Metadata, tt.want)
					}
				})
			}
			t.Run("refused_batch_sends_nothing", func(t *testing.T) {
				t.Parallel()
				topic := tr.cfg.Stages.Share.Topic + "-batch"
				ch := subscribe(t, newSubscriber(t, transport, conf.StageShare, 1), topic)
				valid, refused := message.NewMessage(watermill.NewUUID(), []byte("valid")), message.NewMessage(watermill.NewUUID(), nil)
				if err := pub.Publish(topic, valid, refused); !errors.Is(err, pipeline.ErrMessageLimits) {
					t.Fatalf("error %v, want ErrMessageLimits", err)
				}
				noMessage(t, ch, 1500*time.Millisecond)
			})
		})
	}
}
