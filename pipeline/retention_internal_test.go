package pipeline

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amazonsqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
)

// TestSetup_sets_retention: every queue the service creates, or reads, is
// given the retention of conf.QueueRetention (14 days) explicitly, the
// poison queue and the dead-letter queue included. goaws keeps no retention,
// so the attributes are read off the requests the transport sends.
func TestSetup_sets_retention(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	cfg.Stages.Transport = conf.TransportAWS
	p := "rs-" + strings.ReplaceAll(watermill.NewUUID(), "-", "")[:10] + "-"
	s := &cfg.Stages
	s.Parse.Queue, s.Resolve.Topic, s.Rooms.Topic = p+"jobs", p+"parsed", p+"resolved"
	s.Transfer.Topic, s.Share.Topic, s.Transferred, s.Poison = p+"ready", p+"share", p+"transferred", p+"poison"
	b, err := newAWSBackend(context.Background(), cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		retention = map[string]string{} // queue name or URL -> MessageRetentionPeriod sent
	)
	record := middleware.InitializeMiddlewareFunc("record", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		mu.Lock()
		switch v := in.Parameters.(type) {
		case *amazonsqs.CreateQueueInput:
			if r, ok := v.Attributes["MessageRetentionPeriod"]; ok {
				retention[*v.QueueName] = r
			}
		case *amazonsqs.SetQueueAttributesInput:
			if r, ok := v.Attributes["MessageRetentionPeriod"]; ok {
				retention[*v.QueueUrl] = r
			}
		}
		mu.Unlock()
		return next.HandleInitialize(ctx, in)
	})
	b.sqs = amazonsqs.New(b.sqs.Options(), awsclient.SQSOptions(cfg.AWS), func(o *amazonsqs.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error { return st.Initialize.Add(record, middleware.Before) })
	})
	if err := b.setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(int(conf.QueueRetention / time.Second))
	names := []string{s.Parse.Queue, conf.DeadLetterQueue(s.Poison), conf.SubscriptionQueue(s.Poison, conf.PoisonInspectGroup)}
	for _, sub := range subscriptions(*s) {
		names = append(names, conf.SubscriptionQueue(sub.topic, sub.stage))
	}
	for _, name := range names {
		found := false
		for q, r := range retention {
			if q == name || strings.HasSuffix(q, "/"+name) {
				found = true
				if r != want {
					t.Errorf("queue %s: retention %s s, want %s", name, r, want)
				}
			}
		}
		if !found {
			t.Errorf("queue %s: no retention set", name)
		}
	}
	if want != "1209600" {
		t.Errorf("conf.QueueRetention is %s s, SQS's maximum is 1209600", want)
	}
}
