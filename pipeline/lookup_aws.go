package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	amazonsns "github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	amazonsqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// errMissing marks a queue or topic that does not exist.
var errMissing = errors.New("does not exist")

// Lookup checks, without creating or changing anything, that the queues and
// topics the stages read and publish to exist and that each stage's queues
// are subscribed to their topics. Its error names every one missing. With
// the memory transport there is nothing to look up.
func (t *Transport) Lookup(ctx context.Context, stages []string) error {
	b, ok := t.backend.(*awsBackend)
	if !ok {
		return nil
	}
	return b.lookup(ctx, stages)
}

func (b *awsBackend) lookup(ctx context.Context, stages []string) error {
	topo := NewTopology(b.cfg)
	var missing []string
	var errs []error
	note := func(what string, err error) {
		switch {
		case errors.Is(err, errMissing):
			missing = appendNew(missing, what)
		case err != nil:
			errs = append(errs, err)
		}
	}
	topics := map[string]bool{} // topic: exists
	topicExists := func(topic string) bool {
		if ok, seen := topics[topic]; seen {
			return ok
		}
		_, err := b.topicSubscribers(ctx, topic)
		note("topic "+topic, err)
		topics[topic] = err == nil
		return err == nil
	}
	for _, stage := range stages {
		io, ok := topo.Stage(stage)
		if !ok {
			continue
		}
		for i, input := range b.inputs(io) {
			queue := io.Queues[i]
			url, err := b.lookupQueue(ctx, stage, input)
			note("queue "+queue, err)
			if stage == conf.StageParse {
				continue // producers send to it: no subscription
			}
			topic := input
			if !topicExists(topic) || err != nil {
				continue
			}
			subscribed, err := b.lookupSubscription(ctx, topic, url)
			note("", err)
			if err == nil && !subscribed {
				missing = appendNew(missing, fmt.Sprintf("subscription of queue %s to topic %s", queue, topic))
			}
		}
		for _, topic := range io.Publishes {
			topicExists(topic)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, errclass.AsPermanent(fmt.Errorf("stages.create_resources is false and %d resources of stages %s are missing: %s (see `recording-storage topology`)",
			len(missing), strings.Join(stages, ","), strings.Join(missing, ", "))))
	}
	return errors.Join(errs...)
}

// inputs returns, for each queue of io.Queues, what lookupQueue takes to
// find it: the stage's inputs as the declaration gives them (the
// configured inbound queue, a name or URL, for the parse stage; the
// subscribed topics for the others).
func (b *awsBackend) inputs(io StageIO) []string { return stageInputs(b.cfg.Stages, io.Stage) }

// lookupQueue returns the URL of the queue stage reads for topic (for
// conf.StageParse: the inbound queue, by name or URL) without creating or
// changing anything; errMissing when it does not exist.
func (b *awsBackend) lookupQueue(ctx context.Context, stage, topic string) (string, error) {
	name := conf.SubscriptionQueue(topic, stage)
	if stage == conf.StageParse {
		var ok bool
		if name, ok = conf.InboundQueueName(topic); !ok {
			return "", errclass.AsPermanent(fmt.Errorf("cannot use inbound queue %q: not a queue name or URL", topic))
		}
		if name != topic { // a URL
			_, err := b.sqs.GetQueueAttributes(ctx, &amazonsqs.GetQueueAttributesInput{QueueUrl: aws.String(topic),
				AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
			if isQueueMissing(err) {
				return "", fmt.Errorf("queue %s: %w", topic, errMissing)
			}
			if err != nil {
				return "", fmt.Errorf("cannot find queue %s: %w", topic, err)
			}
			return topic, nil
		}
	}
	out, err := b.sqs.GetQueueUrl(ctx, &amazonsqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if isQueueMissing(err) {
		return "", fmt.Errorf("queue %s: %w", name, errMissing)
	}
	if err != nil {
		return "", fmt.Errorf("cannot find queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

func isQueueMissing(err error) bool {
	var missing *sqstypes.QueueDoesNotExist
	var api smithy.APIError
	return errors.As(err, &missing) ||
		(errors.As(err, &api) && (api.ErrorCode() == "AWS.SimpleQueueService.NonExistentQueue" || api.ErrorCode() == "QueueDoesNotExist"))
}

// topicSubscribers returns the endpoints subscribed to topic; errMissing
// when the topic does not exist.
func (b *awsBackend) topicSubscribers(ctx context.Context, topic string) ([]snstypes.Subscription, error) {
	arn, err := b.topics.ResolveTopic(ctx, topic)
	if err != nil {
		return nil, errclass.AsPermanent(fmt.Errorf("cannot resolve topic %s: %w", topic, err))
	}
	var subs []snstypes.Subscription
	p := amazonsns.NewListSubscriptionsByTopicPaginator(b.sns, &amazonsns.ListSubscriptionsByTopicInput{TopicArn: aws.String(string(arn))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var notFound *snstypes.NotFoundException
		var api smithy.APIError
		if errors.As(err, &notFound) || (errors.As(err, &api) && isTopicMissingCode(api.ErrorCode())) {
			return nil, fmt.Errorf("topic %s: %w", topic, errMissing)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot list the subscriptions of topic %s: %w", topic, err)
		}
		subs = append(subs, page.Subscriptions...)
	}
	return subs, nil
}

// isTopicMissingCode reports whether an SNS error code means that the topic
// does not exist: AWS answers NotFound, goaws its own codes.
func isTopicMissingCode(code string) bool {
	switch code {
	case "NotFound", "TopicNotFound", "AWS.SimpleNotificationService.NonExistentTopic":
		return true
	}
	return false
}

// lookupSubscription reports whether the queue at url is subscribed to
// topic.
func (b *awsBackend) lookupSubscription(ctx context.Context, topic, url string) (bool, error) {
	queueArn, err := b.queueArn(ctx, url)
	if err != nil {
		return false, err
	}
	topicArn, err := b.topics.ResolveTopic(ctx, topic)
	if err != nil {
		return false, errclass.AsPermanent(fmt.Errorf("cannot resolve topic %s: %w", topic, err))
	}
	return b.subscribed(ctx, topicArn, queueArn)
}

// QueuesReachable looks up the queues the stages read, creating nothing:
// the health check of a process whose stages read queues. With the memory
// transport it returns nil.
func (t *Transport) QueuesReachable(ctx context.Context, stages []string) error {
	b, ok := t.backend.(*awsBackend)
	if !ok {
		return nil
	}
	topo := NewTopology(t.cfg)
	var errs []error
	for _, stage := range stages {
		io, _ := topo.Stage(stage)
		for _, input := range b.inputs(io) {
			if _, err := b.lookupQueue(ctx, stage, input); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// TopicsReachable looks up the topics the stages publish to, creating
// nothing: the health check of a process whose stages read no queue (the
// sweep). With the memory transport it returns nil.
func (t *Transport) TopicsReachable(ctx context.Context, stages []string) error {
	b, ok := t.backend.(*awsBackend)
	if !ok {
		return nil
	}
	topo := NewTopology(t.cfg)
	var errs []error
	for _, stage := range stages {
		io, _ := topo.Stage(stage)
		for _, topic := range io.Publishes {
			if _, err := b.topicSubscribers(ctx, topic); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
