package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-aws/sns"
	"github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	amazonsns "github.com/aws/aws-sdk-go-v2/service/sns"
	amazonsqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// awsCallTimeout bounds the SQS calls the transport makes on its own (Nack
// delays, visibility extensions), so that none outlives its purpose.
const awsCallTimeout = 10 * time.Second

// awsBackend is the aws transport: watermill-aws v1.0.3 over SNS and SQS.
type awsBackend struct {
	cfg    conf.Config
	aws    aws.Config
	logger watermill.LoggerAdapter
	topics sns.TopicResolver
	sqs    *amazonsqs.Client
	sns    *amazonsns.Client
	clock  *queueClock // when the last message received from each queue was sent

	visibility int32 // seconds a received message stays hidden

	dlqMu     sync.Mutex
	dlqReady  bool          // the dead-letter queue exists
	heartbeat time.Duration // how often KeepVisible extends the visibility
}

func newAWSBackend(ctx context.Context, cfg conf.Config, logger watermill.LoggerAdapter) (*awsBackend, error) {
	if cfg.AWS.AccountID == "" {
		return nil, errclass.AsPermanent(errors.New("cannot create the aws transport: aws.account_id must be set, SNS topic ARNs need it"))
	}
	awsCfg, err := awsclient.Config(ctx, cfg.AWS)
	if err != nil {
		return nil, err
	}
	topics, err := sns.NewGenerateArnTopicResolver(cfg.AWS.AccountID, cfg.AWS.Region)
	if err != nil {
		return nil, errclass.AsPermanent(fmt.Errorf("cannot resolve SNS topics: %w", err))
	}
	visibility := max(seconds(cfg.Stages.VisibilityTimeout), 1)
	return &awsBackend{
		cfg:        cfg,
		aws:        awsCfg,
		logger:     logger,
		topics:     topics,
		sqs:        awsclient.SQS(awsCfg, cfg.AWS),
		sns:        awsclient.SNS(awsCfg, cfg.AWS),
		clock:      newQueueClock(),
		visibility: visibility,
		heartbeat:  time.Duration(visibility) * time.Second / 3,
	}, nil
}

// seconds rounds d up to whole seconds, as SQS counts them.
func seconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}

func (b *awsBackend) setup(ctx context.Context) error {
	s := b.cfg.Stages
	if err := b.ensureDeadLetter(ctx); err != nil {
		return err
	}
	for _, topic := range []string{s.Poison} { // the others come with their subscriptions
		if _, err := b.ensureTopic(ctx, topic); err != nil {
			return err
		}
	}
	if _, err := b.ensureInbound(ctx, s.Parse.Queue); err != nil {
		return err
	}
	for _, st := range subscriptions(s) {
		if _, err := b.ensureSubscription(ctx, st.topic, st.stage); err != nil {
			return err
		}
	}
	return nil
}

// ensureTopic creates topic if it is missing and returns its ARN.
func (b *awsBackend) ensureTopic(ctx context.Context, topic string) (sns.TopicArn, error) {
	want, err := b.topics.ResolveTopic(ctx, topic)
	if err != nil {
		return "", errclass.AsPermanent(fmt.Errorf("cannot resolve topic %s: %w", topic, err))
	}
	out, err := b.sns.CreateTopic(ctx, &amazonsns.CreateTopicInput{Name: aws.String(topic)})
	if err != nil {
		return "", fmt.Errorf("cannot create topic %s: %w", topic, err)
	}
	if got := aws.ToString(out.TopicArn); got != string(want) {
		return "", errclass.AsPermanent(fmt.Errorf("cannot use topic %s: its ARN is %s, not %s: check aws.account_id and aws.region",
			topic, got, want))
	}
	return want, nil
}

// queueAttributes are applied to the queue name that reader reads, new or
// not (see queueAttributes in the topology).
func (b *awsBackend) queueAttributes(reader string) map[string]string {
	return queueAttributes(b.cfg, reader)
}

// ensureDeadLetter creates the dead-letter queue (conf.DeadLetterQueue)
// with its attributes: every queue a stage reads has a redrive policy to it,
// so that a message received conf.Stages.DeadLetterReceives times without
// an outcome (one that kills the process each time) moves there, where
// `poison list` shows it.
// It is made once per backend, before the first queue that names it.
func (b *awsBackend) ensureDeadLetter(ctx context.Context) error {
	b.dlqMu.Lock()
	defer b.dlqMu.Unlock()
	if b.dlqReady {
		return nil
	}
	if _, err := b.ensureQueueWith(ctx, conf.DeadLetterQueue(b.cfg.Stages.Poison), deadLetterAttributes()); err != nil {
		return err
	}
	b.dlqReady = true
	return nil
}

// ensureInbound makes sure the inbound queue exists, given by name (created
// if missing) or by URL (which must exist), applies the queue attributes and
// returns its URL.
func (b *awsBackend) ensureInbound(ctx context.Context, queue string) (string, error) {
	name, ok := conf.InboundQueueName(queue)
	if !ok {
		return "", errclass.AsPermanent(fmt.Errorf("cannot use inbound queue %q: not a queue name or URL", queue))
	}
	if name == queue {
		return b.ensureQueueWith(ctx, name, b.queueAttributes(conf.StageParse))
	}
	if _, err := b.queueArn(ctx, queue); err != nil {
		return "", fmt.Errorf("cannot find inbound queue %s: %w", queue, err)
	}
	// A queue given by URL may be of another account or region, where
	// the dead-letter queue cannot be.
	attrs := b.queueAttributes(conf.StageParse)
	delete(attrs, string(sqstypes.QueueAttributeNameRedrivePolicy))
	if err := b.setQueueAttributes(ctx, queue, attrs); err != nil {
		return "", err
	}
	return queue, nil
}

// ensureQueueWith creates the queue name if it is missing, applies attrs
// and returns its URL.
func (b *awsBackend) ensureQueueWith(ctx context.Context, name string, attrs map[string]string) (string, error) {
	if n, ok := conf.InboundQueueName(name); !ok || n != name {
		return "", errclass.AsPermanent(fmt.Errorf("cannot create queue %q: SQS queue names are 1 to 80 letters, digits, '-' or '_' (this one has %d characters)",
			name, len(name)))
	}
	if _, redrive := attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)]; redrive {
		// SQS refuses a redrive policy to a queue that does not exist.
		if err := b.ensureDeadLetter(ctx); err != nil {
			return "", err
		}
	}
	got, err := b.sqs.GetQueueUrl(ctx, &amazonsqs.GetQueueUrlInput{QueueName: aws.String(name)})
	var missing *sqstypes.QueueDoesNotExist
	if errors.As(err, &missing) {
		created, cerr := b.sqs.CreateQueue(ctx, &amazonsqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if cerr != nil {
			return "", fmt.Errorf("cannot create queue %s: %w", name, cerr)
		}
		return aws.ToString(created.QueueUrl), nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot find queue %s: %w", name, err)
	}
	url := aws.ToString(got.QueueUrl)
	if err := b.setQueueAttributes(ctx, url, attrs); err != nil {
		return "", err
	}
	return url, nil
}

func (b *awsBackend) setQueueAttributes(ctx context.Context, url string, attrs map[string]string) error {
	if _, err := b.sqs.SetQueueAttributes(ctx, &amazonsqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: attrs}); err != nil {
		return fmt.Errorf("cannot set the attributes of queue %s: %w", url, err)
	}
	return nil
}

func (b *awsBackend) queueArn(ctx context.Context, url string) (sqs.QueueArn, error) {
	out, err := b.sqs.GetQueueAttributes(ctx, &amazonsqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("cannot get the ARN of queue %s: %w", url, err)
	}
	arn := out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("cannot get the ARN of queue %s: no QueueArn attribute", url)
	}
	return sqs.QueueArn(arn), nil
}

// ensureSubscription creates what stage needs to read topic: the topic, the
// queue "<topic>-<stage>" with the queue attributes and a policy that lets
// the topic send to it, and the topic's raw-delivery subscription to the
// queue. It returns the queue's URL.
func (b *awsBackend) ensureSubscription(ctx context.Context, topic, stage string) (string, error) {
	name := conf.SubscriptionQueue(topic, stage)
	if n, ok := conf.InboundQueueName(name); !ok || n != name {
		return "", errclass.AsPermanent(fmt.Errorf("cannot subscribe stage %s to topic %s: the queue name %q has %d characters, SQS allows 1 to 80 letters, digits, '-' or '_'",
			stage, topic, name, len(name)))
	}
	topicArn, err := b.ensureTopic(ctx, topic)
	if err != nil {
		return "", err
	}
	url, err := b.ensureQueueWith(ctx, name, b.queueAttributes(stage))
	if err != nil {
		return "", err
	}
	queueArn, err := b.queueArn(ctx, url)
	if err != nil {
		return "", err
	}
	policy, err := sns.GenerateQueueAccessPolicyDefault(ctx, sns.GenerateQueueAccessPolicyParams{
		SqsQueueArn: queueArn, SnsTopicArn: topicArn, SqsURL: sqs.QueueURL(url),
	})
	if err != nil {
		return "", fmt.Errorf("cannot generate the access policy of queue %s: %w", name, err)
	}
	policyJSON, err := json.Marshal(policy)
	if err != nil {
		return "", fmt.Errorf("cannot encode the access policy of queue %s: %w", name, err)
	}
	if err := b.setQueueAttributes(ctx, url, map[string]string{"Policy": string(policyJSON)}); err != nil {
		return "", err
	}
	in, err := sns.GenerateSubscribeInputDefault(ctx, sns.GenerateSubscribeInputParams{
		SqsTopic: name, SnsTopicArn: topicArn, SqsQueueArn: queueArn,
	})
	if err != nil {
		return "", fmt.Errorf("cannot generate the subscription of queue %s to topic %s: %w", name, topic, err)
	}
	subscribed, err := b.subscribed(ctx, topicArn, queueArn)
	if err != nil {
		return "", err
	}
	if !subscribed {
		if _, err := b.sns.Subscribe(ctx, in); err != nil {
			return "", fmt.Errorf("cannot subscribe queue %s to topic %s: %w", name, topic, err)
		}
	}
	return url, nil
}

// subscribed reports whether the queue is subscribed to the topic already.
// SNS answers a repeated Subscribe with the existing subscription, but
// goaws adds another one each time, so every start would multiply them.
func (b *awsBackend) subscribed(ctx context.Context, topicArn sns.TopicArn, queueArn sqs.QueueArn) (bool, error) {
	p := amazonsns.NewListSubscriptionsByTopicPaginator(b.sns, &amazonsns.ListSubscriptionsByTopicInput{TopicArn: aws.String(string(topicArn))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("cannot list the subscriptions of topic %s: %w", topicArn, err)
		}
		for _, sub := range page.Subscriptions {
			if aws.ToString(sub.Endpoint) == string(queueArn) && aws.ToString(sub.Protocol) == "sqs" {
				return true, nil
			}
		}
	}
	return false, nil
}

func (b *awsBackend) publisher() (message.Publisher, error) {
	pub, err := sns.NewPublisher(sns.PublisherConfig{
		AWSConfig:     b.aws,
		OptFns:        []func(*amazonsns.Options){awsclient.SNSOptions(b.cfg.AWS)},
		TopicResolver: b.topics,
		Marshaler:     topicArnMarshaler{},
		// With stages.create_resources false nothing is created, not even a
		// topic that vanished after the start.
		DoNotCreateTopicIfNotExists: !b.cfg.Stages.CreateResources,
	}, b.logger)
	if err != nil {
		return nil, fmt.Errorf("cannot create SNS publisher: %w", err)
	}
	return pub, nil
}

func (b *awsBackend) inboundPublisher() (message.Publisher, error) {
	pub, err := sqs.NewPublisher(sqs.PublisherConfig{
		AWSConfig:                   b.aws,
		OptFns:                      []func(*amazonsqs.Options){awsclient.SQSOptions(b.cfg.AWS)},
		DoNotCreateQueueIfNotExists: true, // Setup and Subscribe create queues, with their attributes
		QueueUrlResolver:            queueResolver{byName: sqs.NewGetQueueUrlByNameUrlResolver(sqs.GetQueueUrlByNameUrlResolverConfig{})},
	}, b.logger)
	if err != nil {
		return nil, fmt.Errorf("cannot create SQS publisher: %w", err)
	}
	return pub, nil
}

func (b *awsBackend) subscriber(stage string, workers int) (message.Subscriber, error) {
	inner, err := sqs.NewSubscriber(sqs.SubscriberConfig{
		AWSConfig:                   b.aws,
		OptFns:                      []func(*amazonsqs.Options){awsclient.SQSOptions(b.cfg.AWS)},
		DoNotCreateQueueIfNotExists: true,                         // Subscribe creates the queue first
		QueueUrlResolver:            sqs.TransparentUrlResolver{}, // and hands over its URL
		GenerateReceiveMessageInput: b.receiveInput,
		ConsumeWorkers:              workers,
		Unmarshaler:                 deliveryUnmarshaler{},
	}, b.logger)
	if err != nil {
		return nil, fmt.Errorf("cannot create SQS subscriber for stage %s: %w", stage, err)
	}
	return &awsSubscriber{backend: b, stage: stage, workers: workers, inner: inner, relays: newRelays(b.cfg.Stages.DrainTimeout)}, nil
}

// receiveInput asks for one message at a time (a Nack drops the rest of a
// batch), for its delivery count, and hides it for the visibility timeout
// whatever the queue's attribute says.
func (b *awsBackend) receiveInput(ctx context.Context, url sqs.QueueURL) (*amazonsqs.ReceiveMessageInput, error) {
	in, err := sqs.GenerateReceiveMessageInputDefault(ctx, url)
	if err != nil {
		return nil, err
	}
	in.MaxNumberOfMessages = 1
	in.VisibilityTimeout = b.visibility
	in.MessageSystemAttributeNames = []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount,
		sqstypes.MessageSystemAttributeNameSentTimestamp}
	return in, nil
}

// changeVisibility hides the message with receipt in the queue at url for
// the next secs seconds (0: shows it now).
func (b *awsBackend) changeVisibility(ctx context.Context, url, receipt string, secs int32) error {
	ctx, cancel := context.WithTimeout(ctx, awsCallTimeout)
	defer cancel()
	_, err := b.sqs.ChangeMessageVisibility(ctx, &amazonsqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: aws.String(receipt), VisibilityTimeout: secs,
	})
	if err != nil {
		return fmt.Errorf("cannot change the visibility of a message in queue %s: %w", url, err)
	}
	return nil
}

func (b *awsBackend) keepVisible(h message.HandlerFunc, limit time.Duration) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		url, receipt := msg.Metadata.Get(MetaQueueURL), msg.Metadata.Get(MetaReceiptHandle)
		if url == "" || receipt == "" {
			return h(msg)
		}
		stop, done := make(chan struct{}), make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			tick := time.NewTicker(b.heartbeat)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if limit > 0 && time.Since(start) > limit {
					b.logger.Error("Handling outlived its attempts' timeouts: the message is no longer kept hidden",
						nil, watermill.LogFields{"message_uuid": msg.UUID, "limit": limit.String()})
					return
				}
				// Not msg.Context(): it ends when the subscriber closes, but
				// the handler may still be running, and the message must stay
				// hidden until it returns.
				err := b.changeVisibility(context.Background(), url, receipt, b.visibility)
				var gone *sqstypes.ReceiptHandleIsInvalid
				var notInFlight *sqstypes.MessageNotInflight
				if errors.As(err, &gone) || errors.As(err, &notInFlight) {
					b.logger.Error("Cannot keep message hidden: no longer in flight", err, watermill.LogFields{"message_uuid": msg.UUID})
					return
				}
				if err != nil {
					b.logger.Error("Cannot keep message hidden", err, watermill.LogFields{"message_uuid": msg.UUID})
				}
			}
		}()
		defer func() {
			close(stop)
			<-done
		}()
		return h(msg)
	}
}

func (b *awsBackend) close() error { return nil }

// awsSubscriber reads one stage's queues with a watermill-aws SQS subscriber.
type awsSubscriber struct {
	backend *awsBackend
	stage   string
	workers int
	inner   *sqs.Subscriber
	relays  *relays
}

// SubscribeInitialize creates what Subscribe reads: the inbound queue for
// conf.StageParse, else topic, the stage's queue and its subscription.
func (s *awsSubscriber) SubscribeInitialize(topic string) error {
	_, err := s.initialize(context.Background(), topic)
	return err
}

func (s *awsSubscriber) initialize(ctx context.Context, topic string) (string, error) {
	if !s.backend.cfg.Stages.CreateResources {
		return s.backend.lookupQueue(ctx, s.stage, topic)
	}
	if s.stage == conf.StageParse {
		return s.backend.ensureInbound(ctx, topic)
	}
	return s.backend.ensureSubscription(ctx, topic, s.stage)
}

// Subscribe reads the inbound queue topic (conf.StageParse) or the stage's queue
// for topic, creating them if needed.
func (s *awsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	url, err := s.initialize(ctx, topic)
	if err != nil {
		return nil, err
	}
	in, err := s.inner.Subscribe(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("cannot subscribe stage %s to %s: %w", s.stage, topic, err)
	}
	b := s.backend
	return s.relays.start(ctx, in, s.workers, deliveryHooks{
		metadata: func(_ *message.Message, md message.Metadata) {
			md.Set(MetaQueueURL, url)
			b.clock.received(url, md.Get(metaSentTimestamp))
			delete(md, metaSentTimestamp)
		},
		nack: func(ctx context.Context, orig *message.Message) {
			// Also while stopping: a failure in the drain is a failure.
			delay := max(seconds(b.cfg.Stages.NackDelay(Deliveries(orig))), 1) // goaws v0.4.5 takes 0 for the whole visibility timeout
			if err := b.changeVisibility(context.WithoutCancel(ctx), url, orig.Metadata.Get(MetaReceiptHandle), delay); err != nil {
				b.logger.Error("Cannot delay redelivery of nacked message", err, watermill.LogFields{"message_uuid": orig.UUID})
			}
		},
		ack: func(orig *message.Message) {
			// watermill-aws no longer deletes once it is closed.
			if err := b.deleteMessage(url, orig.Metadata.Get(MetaReceiptHandle)); err != nil {
				b.logger.Error("Cannot delete a message acked while stopping", err, watermill.LogFields{"message_uuid": orig.UUID})
			}
		},
		release: func(orig *message.Message) { b.release(url, orig) },
	})
}

// deleteMessage deletes the message with receipt from the queue at url.
func (b *awsBackend) deleteMessage(url, receipt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), awsCallTimeout)
	defer cancel()
	if _, err := b.sqs.DeleteMessage(ctx, &amazonsqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(receipt)}); err != nil {
		return fmt.Errorf("cannot delete a message from queue %s: %w", url, err)
	}
	return nil
}

// release puts a message that a stopping process gives up back in its
// queue at once, without counting the delivery: SQS counts receives, and a
// receive cannot be taken back, so it sends a copy that carries the
// failures of the deliveries so far (MetaPriorFailures: this one is not
// one) and then deletes the message. Should the copy fail, the message is
// made visible again instead (its delivery then counts).
func (b *awsBackend) release(url string, orig *message.Message) {
	receipt := orig.Metadata.Get(MetaReceiptHandle)
	log := watermill.LogFields{"message_uuid": orig.UUID}
	md := message.Metadata{}
	for k, v := range orig.Metadata {
		if !deliveryKey(k) && k != MetaDecodeError && k != MetaPriorFailures {
			md[k] = v
		}
	}
	if prior := Deliveries(orig) - 1; prior > 0 {
		md.Set(MetaPriorFailures, strconv.Itoa(prior))
	}
	cp := message.NewMessage(orig.UUID, orig.Payload)
	cp.Metadata = md
	m, err := sqs.DefaultMarshalerUnmarshaler{}.Marshal(cp)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), awsCallTimeout)
		_, err = b.sqs.SendMessage(ctx, &amazonsqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: m.Body,
			MessageAttributes: m.MessageAttributes})
		cancel()
	}
	if err != nil {
		b.logger.Error("Cannot release a message as a fresh copy; making it visible again", err, log)
		if err := b.changeVisibility(context.Background(), url, receipt, 1); err != nil {
			b.logger.Error("Cannot make a released message visible again", err, log)
		}
		return
	}
	if err := b.deleteMessage(url, receipt); err != nil {
		b.logger.Error("Cannot delete a released message after sending its copy", err, log)
		return
	}
	b.logger.Info("Message released for another worker", log)
}

// Close stops receiving and returns once every subscription has ended: the
// handlers in flight run on for stages.drain_timeout, then their messages
// are released for another worker.
func (s *awsSubscriber) Close() error {
	err := s.inner.Close()
	s.relays.close()
	return err
}

// queueResolver resolves queue names with GetQueueUrl and takes queue URLs
// as they are.
type queueResolver struct {
	byName *sqs.GetQueueUrlByNameUrlResolver
}

func (r queueResolver) ResolveQueueUrl(ctx context.Context, p sqs.ResolveQueueUrlParams) (sqs.QueueUrlResolverResult, error) {
	if !strings.Contains(p.Topic, "/") {
		return r.byName.ResolveQueueUrl(ctx, p)
	}
	res, err := sqs.TransparentUrlResolver{}.ResolveQueueUrl(ctx, p)
	exists := true // a URL is used as given; Setup checked it
	res.Exists = &exists
	return res, err
}

// deliveryUnmarshaler reads SQS messages like watermill-aws's default
// unmarshaler (UUID from Watermill's attribute, else the SQS message ID;
// attributes as metadata) and adds the delivery metadata. It never fails and
// never panics, so that no message stays in the queue for being unreadable:
// an attribute it cannot read is left out and named in MetaDecodeError.
type deliveryUnmarshaler struct{}

func (deliveryUnmarshaler) Unmarshal(m *sqstypes.Message) (*message.Message, error) {
	md := message.Metadata{}
	var problems []string
	uuid := ""
	for name, a := range m.MessageAttributes {
		v, ok := attributeText(a)
		if !ok {
			problems = append(problems, fmt.Sprintf("attribute %q of type %q has no text value", name, aws.ToString(a.DataType)))
			continue
		}
		if name == sqs.UUIDAttribute {
			uuid = v
			continue
		}
		md[name] = v
	}
	if uuid == "" {
		uuid = aws.ToString(m.MessageId)
	}
	if uuid == "" {
		uuid = watermill.NewUUID()
		problems = append(problems, "no message ID")
	}
	delete(md, MetaReceiveCount)
	if n := m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]; n != "" {
		md.Set(MetaReceiveCount, n)
	}
	md.Set(MetaReceiptHandle, aws.ToString(m.ReceiptHandle))
	delete(md, metaSentTimestamp)
	if sent := m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)]; sent != "" {
		md.Set(metaSentTimestamp, sent)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		md.Set(MetaDecodeError, strings.Join(problems, "; "))
	}
	msg := message.NewMessage(uuid, []byte(aws.ToString(m.Body)))
	msg.Metadata = md
	return msg, nil
}

// attributeText returns the value of a, if it is text that can travel on.
func attributeText(a sqstypes.MessageAttributeValue) (string, bool) {
	t := aws.ToString(a.DataType) // custom types extend these, e.g. "Number.float"
	var v string
	switch {
	case (strings.HasPrefix(t, sqs.AWSStringDataType) || strings.HasPrefix(t, sqs.AWSNumberDataType)) && a.StringValue != nil:
		v = *a.StringValue
	case strings.HasPrefix(t, sqs.AWSBinaryDataType) && a.BinaryValue != nil:
		v = string(a.BinaryValue)
	default:
		return "", false
	}
	return v, v != "" && validText(v)
}

// topicArnMarshaler publishes with TopicArn, the field SNS documents for
// topics; watermill-aws sets TargetArn, which goaws does not accept.
type topicArnMarshaler struct {
	sns.DefaultMarshalerUnmarshaler
}

func (m topicArnMarshaler) Marshal(arn sns.TopicArn, msg *message.Message) *amazonsns.PublishInput {
	in := m.DefaultMarshalerUnmarshaler.Marshal(arn, msg)
	in.TopicArn, in.TargetArn = in.TargetArn, nil
	return in
}
