package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

func TestFailures(t *testing.T) {
	long := strings.Repeat("é", MaxPoisonReason)
	tests := []struct {
		name        string
		err         error
		panics      bool
		deliveries  int
		wantErr     bool
		wantCalls   int32
		wantPoison  bool
		wantClass   string
		wantReason  string
		wantDeliver string
	}{
		{name: "ok", wantCalls: 1},
		{name: "permanent", err: errclass.AsPermanent(errors.New("bad field")), deliveries: 1, wantCalls: 1,
			wantPoison: true, wantClass: "permanent", wantReason: "bad field", wantDeliver: "1"},
		{name: "transient retried then nacked", err: errors.New("503"), deliveries: 1, wantErr: true, wantCalls: 3},
		{name: "unknown retried", err: errclass.AsUnknown(errors.New("lost")), deliveries: 2, wantErr: true, wantCalls: 3},
		{name: "transient on the last delivery", err: errors.New("503"), deliveries: 5, wantCalls: 3,
			wantPoison: true, wantClass: "transient", wantReason: "gave up after 5 deliveries: 503", wantDeliver: "5"},
		{name: "stopping on the last delivery is not a failure", err: fmt.Errorf("x: %w", context.Canceled), deliveries: 5,
			wantErr: true, wantCalls: 1},
		{name: "panic", panics: true, deliveries: 1, wantErr: true, wantCalls: 3},
		{name: "long reason", err: errclass.AsPermanent(errors.New(long)), deliveries: 1, wantCalls: 1,
			wantPoison: true, wantClass: "permanent", wantReason: "[truncated]", wantDeliver: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
			defer pubsub.Close()
			poisoned, err := pubsub.Subscribe(context.Background(), "poison")
			if err != nil {
				t.Fatal(err)
			}
			log := logrus.New()
			log.SetLevel(logrus.PanicLevel)
			f := Failures{Stage: "transfer", Poison: pubsub, PoisonTopic: "poison", MaxDeliveries: 5,
				Deliveries: func(*message.Message) int { return tt.deliveries },
				Retry:      middleware.Retry{MaxRetries: 2, InitialInterval: time.Millisecond}, Logger: log,
				Timeout: time.Minute} // each attempt gets a context of its own, which ends with it
			mws, err := f.Middlewares()
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			h := func(msg *message.Message) ([]*message.Message, error) {
				calls.Add(1)
				if err := msg.Context().Err(); err != nil {
					return nil, fmt.Errorf("attempt %d started with its context ended: %w", calls.Load(), err)
				}
				if tt.panics {
					panic("boom")
				}
				return nil, tt.err
			}
			for i := len(mws) - 1; i >= 0; i-- {
				h = mws[i](h)
			}
			msg := message.NewMessage("m1", []byte(`{"x":1}`))
			msg.Metadata.Set(messages.MetaJobID, "job-1")
			msg.Metadata.Set("receipt_handle", "secret-ish transport state")
			_, err = h(msg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if calls.Load() != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls.Load(), tt.wantCalls)
			}
			select {
			case pm := <-poisoned:
				if !tt.wantPoison {
					t.Fatalf("poisoned: %v", pm.Metadata)
				}
				md := pm.Metadata
				if string(pm.Payload) != `{"x":1}` || md.Get(messages.MetaJobID) != "job-1" || md.Get(MetaPoisonStage) != "transfer" ||
					md.Get(MetaPoisonClass) != tt.wantClass || !strings.Contains(md.Get(MetaPoisonReason), tt.wantReason) ||
					md.Get(MetaPoisonDeliveries) != tt.wantDeliver || md.Get("receipt_handle") != "" {
					t.Errorf("poison copy: %s %v", pm.Payload, md)
				}
				if len(md.Get(MetaPoisonReason)) > MaxPoisonReason || len(md) > 9 {
					t.Errorf("poison copy too large: reason %d bytes, %d keys", len(md.Get(MetaPoisonReason)), len(md))
				}
				pm.Ack()
			case <-time.After(100 * time.Millisecond):
				if tt.wantPoison {
					t.Fatal("nothing poisoned")
				}
			}
		})
	}
}
