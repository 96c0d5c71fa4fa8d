// Package pipeline is the topology of the service: how messages travel
// between the stages over SNS topics and SQS queues.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-aws/sns"
	"github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	amazonsns "github.com/aws/aws-sdk-go-v2/service/sns"
	amazonsqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient"
)

// Transport connects the stages over AWS: every stage publishes to SNS
// topics, and each consumer group reads a topic through its own SQS queue
// ("<topic>-<group>") subscribed to the topic with raw delivery, so that
// stages scale and fail independently.
type Transport struct {
	aws    aws.Config
	conf   conf.AWS
	stages conf.Stages
	topics sns.TopicResolver
	logger watermill.LoggerAdapter
}

// NewTransport prepares the SNS and SQS clients described by cfg.
func NewTransport(ctx context.Context, cfg conf.Config, logger watermill.LoggerAdapter) (*Transport, error) {
	if cfg.AWS.AccountID == "" {
		return nil, errors.New("aws.account_id must be set: SNS topic ARNs need it")
	}
	awsCfg, err := awsclient.Config(ctx, cfg.AWS)
	if err != nil {
		return nil, err
	}
	topics, err := sns.NewGenerateArnTopicResolver(cfg.AWS.AccountID, cfg.AWS.Region)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve SNS topics: %w", err)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Transport{aws: awsCfg, conf: cfg.AWS, stages: cfg.Stages, topics: topics, logger: logger}, nil
}

// Publisher returns a publisher to the SNS topics.
func (t *Transport) Publisher() (*sns.Publisher, error) {
	pub, err := sns.NewPublisher(sns.PublisherConfig{
		AWSConfig:     t.aws,
		OptFns:        []func(*amazonsns.Options){awsclient.SNSOptions(t.conf)},
		TopicResolver: t.topics,
		Marshaler:     topicArnMarshaler{},
	}, t.logger)
	if err != nil {
		return nil, fmt.Errorf("cannot create SNS publisher: %w", err)
	}
	return pub, nil
}

// Subscriber returns a subscriber for one consumer group that handles up to
// workers messages at once. Its queues hide a received message for the
// configured visibility timeout, which must outlast the handler.
func (t *Transport) Subscriber(group string, workers int) (*sns.Subscriber, error) {
	if group == "" {
		return nil, errors.New("cannot create subscriber: empty consumer group")
	}
	sub, err := sns.NewSubscriber(
		sns.SubscriberConfig{
			AWSConfig:     t.aws,
			OptFns:        []func(*amazonsns.Options){awsclient.SNSOptions(t.conf)},
			TopicResolver: t.topics,
			GenerateSqsQueueName: func(ctx context.Context, topic sns.TopicArn) (string, error) {
				name, err := sns.ExtractTopicNameFromTopicArn(topic)
				if err != nil {
					return "", err
				}
				return string(name) + "-" + group, nil
			},
		},
		sqs.SubscriberConfig{
			AWSConfig:      t.aws,
			OptFns:         []func(*amazonsqs.Options){awsclient.SQSOptions(t.conf)},
			ConsumeWorkers: workers,
			QueueConfigAttributes: sqs.QueueConfigAttributes{
				VisibilityTimeout: strconv.Itoa(int(t.stages.VisibilityTimeout.Seconds())),
			},
		},
		t.logger,
	)
	if err != nil {
		return nil, fmt.Errorf("cannot create SNS subscriber for group %s: %w", group, err)
	}
	return sub, nil
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
