package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	amazonsqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// poisonHold is how long List hides the messages it reads from other
// readers before it releases them again.
const poisonHold = 60 * time.Second

// How long receiveAll keeps looking for messages that the queue counts but
// another reader (an operator's list a moment ago) still hides: a while for
// a listing, longer for messages asked for by id. A released message comes
// back after about a second on SQS and up to two on goaws, later on a
// loaded machine.
const (
	poisonListWait = 3 * time.Second
	poisonIDWait   = 15 * time.Second
)

// ErrNotInPoisonQueue reports a message id that the poison queue does not
// hold.
var ErrNotInPoisonQueue = errclass.New(errclass.Permanent, "no such message in the poison queue")

// PoisonMessage is one message of the poison queue.
type PoisonMessage struct {
	ID         string            `json:"id"`   // the SQS message id
	Time       time.Time         `json:"time"` // when it was poisoned
	Stage      string            `json:"stage"`
	Class      string            `json:"class"`
	Reason     string            `json:"reason"`
	Deliveries int               `json:"deliveries"`
	JobID      string            `json:"jobId,omitempty"`
	Payload    string            `json:"payload"`
	Metadata   map[string]string `json:"metadata"`
	// DeadLettered is set for a message that SQS moved to the dead-letter
	// queue after too many receives without an outcome.
	DeadLettered bool `json:"deadLettered,omitempty"`
	receipt      string
	queue        string // the URL of the queue that holds it
}

// PoisonQueue reads and empties the poison queue and the dead-letter queue
// (aws transport only).
type PoisonQueue struct {
	t      *Transport
	b      *awsBackend
	url    string // the poison queue's
	dlqURL string // the dead-letter queue's; empty when it does not exist yet
}

// PoisonQueue opens the poison queue, which the service creates at start
// (Setup). It changes nothing: a tool must not reset the queues' attributes
// to its own configuration's.
func (t *Transport) PoisonQueue(ctx context.Context) (*PoisonQueue, error) {
	b, ok := t.backend.(*awsBackend)
	if !ok {
		return nil, errclass.AsPermanent(errors.New("the poison queue needs stages.transport aws: with the memory transport it lives and dies with the process"))
	}
	name := conf.SubscriptionQueue(t.cfg.Stages.Poison, conf.PoisonInspectGroup)
	out, err := b.sqs.GetQueueUrl(ctx, &amazonsqs.GetQueueUrlInput{QueueName: aws.String(name)})
	var missing *sqstypes.QueueDoesNotExist
	if errors.As(err, &missing) {
		return nil, errclass.AsPermanent(fmt.Errorf("there is no poison queue %s yet: it is created when the service (recording-storage run) starts", name))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot find the poison queue %s: %w", name, err)
	}
	q := &PoisonQueue{t: t, b: b, url: aws.ToString(out.QueueUrl)}
	dlq, err := b.sqs.GetQueueUrl(ctx, &amazonsqs.GetQueueUrlInput{QueueName: aws.String(conf.DeadLetterQueue(t.cfg.Stages.Poison))})
	switch {
	case errors.As(err, &missing): // made by a release before the backstop
	case err != nil:
		return nil, fmt.Errorf("cannot find the dead-letter queue: %w", err)
	default:
		q.dlqURL = aws.ToString(dlq.QueueUrl)
	}
	return q, nil
}

// urls returns the queues the operators' view covers.
func (q *PoisonQueue) urls() []string {
	if q.dlqURL == "" {
		return []string{q.url}
	}
	return []string{q.url, q.dlqURL}
}

// List returns every message of the poison queue and of the dead-letter
// queue, oldest first, and leaves them there.
func (q *PoisonQueue) List(ctx context.Context) ([]PoisonMessage, error) {
	msgs, err := q.receiveAll(ctx)
	q.release(msgs)
	return msgs, err
}

// receiveAll receives every message of the queue (when want names ids:
// until it has those) and keeps them hidden for poisonHold; the caller
// releases or deletes them. While the queue holds more than it received
// (and, for want, a wanted id is not among those received) it tries again
// every second for a while (poisonListWait, poisonIDWait): a message
// another reader held a moment ago becomes visible again shortly. It stops
// as soon as it has what it needs, or has seen every message the queue
// holds: the hold is the queue's visibility timeout on some servers
// (goaws), so a receipt kept waiting may go stale.
func (q *PoisonQueue) receiveAll(ctx context.Context, want ...string) ([]PoisonMessage, error) {
	seen := map[string]bool{}
	var out []PoisonMessage
	held := 0 // messages in the queues, visible or not
	for _, url := range q.urls() {
		held += q.count(ctx, url)
	}
	wait := poisonListWait
	if len(want) > 0 {
		wait = poisonIDWait
	}
	deadline := time.Now().Add(wait)
	for {
		for _, url := range q.urls() {
			var err error
			if out, err = q.receiveRound(ctx, url, seen, out); err != nil {
				return out, err
			}
		}
		// Keep looking while the queue holds messages not received yet
		// (for want: only while a wanted one is among those not seen).
		missing := len(out) < held
		if len(want) > 0 && !slices.ContainsFunc(want, func(id string) bool { return !seen[id] }) {
			missing = false
		}
		if !missing || time.Now().After(deadline) {
			break
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// count returns how many messages the queue holds, visible or hidden by
// another reader, as SQS estimates it; 0 when it cannot tell.
func (q *PoisonQueue) count(ctx context.Context, url string) int {
	out, err := q.b.sqs.GetQueueAttributes(ctx, &amazonsqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0
	}
	n := 0
	for _, k := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		v, _ := strconv.Atoi(out.Attributes[string(k)])
		n += v
	}
	return n
}

// receiveRound receives messages of the queue url until a receive brings
// nothing new.
func (q *PoisonQueue) receiveRound(ctx context.Context, url string, seen map[string]bool, out []PoisonMessage) ([]PoisonMessage, error) {
	for {
		res, err := q.b.sqs.ReceiveMessage(ctx, &amazonsqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: int32(poisonHold / time.Second),
			WaitTimeSeconds: 0, MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp,
				sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			return out, fmt.Errorf("cannot read the poison queue: %w", err)
		}
		fresh := 0
		for _, m := range res.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			pm := poisonMessage(m)
			pm.queue = url
			if url == q.dlqURL {
				deadLettered(&pm, m)
			}
			out = append(out, pm)
		}
		if fresh == 0 {
			return out, nil
		}
	}
}

// poisonMessage reads one SQS message of the poison queue.
func poisonMessage(m sqstypes.Message) PoisonMessage {
	pm := PoisonMessage{ID: aws.ToString(m.MessageId), Payload: aws.ToString(m.Body), Metadata: map[string]string{},
		receipt: aws.ToString(m.ReceiptHandle)}
	for k, v := range m.MessageAttributes {
		if s, ok := attributeText(v); ok {
			pm.Metadata[k] = s
		}
	}
	if ms, err := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		pm.Time = time.UnixMilli(ms).UTC()
	}
	pm.Stage, pm.Class, pm.Reason = pm.Metadata[MetaPoisonStage], pm.Metadata[MetaPoisonClass], pm.Metadata[MetaPoisonReason]
	pm.Deliveries, _ = strconv.Atoi(pm.Metadata[MetaPoisonDeliveries])
	pm.JobID = pm.Metadata[messages.MetaJobID]
	return pm
}

// deadLettered fills in what a message of the dead-letter queue lacks: the
// stage that reads it (by its payload type), the class and the reason.
func deadLettered(pm *PoisonMessage, m sqstypes.Message) {
	pm.DeadLettered = true
	pm.Stage = payloadStage(pm.Metadata[messages.MetaPayload])
	pm.Class = errclass.Unknown.String()
	pm.Deliveries, _ = strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	pm.Reason = "dead-lettered: received too often without an outcome (the process died or hung on each delivery)"
	if pm.Deliveries > 0 {
		pm.Reason += "; " + strconv.Itoa(pm.Deliveries) + " receives from the dead-letter queue, this listing included"
	}
}

// release makes messages visible again after a second. Not at once (0):
// goaws v0.4.5 takes 0 to mean the queue's whole visibility timeout.
func (q *PoisonQueue) release(msgs []PoisonMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), awsCallTimeout)
	defer cancel()
	for _, m := range msgs {
		_, _ = q.b.sqs.ChangeMessageVisibility(ctx, &amazonsqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(m.queue), ReceiptHandle: aws.String(m.receipt), VisibilityTimeout: 1})
	}
}

// Show returns the message id.
func (q *PoisonQueue) Show(ctx context.Context, id string) (PoisonMessage, error) {
	msgs, err := q.receiveAll(ctx, id)
	q.release(msgs)
	if err != nil {
		return PoisonMessage{}, err
	}
	for _, m := range msgs {
		if m.ID == id {
			return m, nil
		}
	}
	return PoisonMessage{}, fmt.Errorf("message %s: %w", id, ErrNotInPoisonQueue)
}

// Requeue sends the messages with the given ids (all, when ids is empty)
// back to the stage they failed in and then removes them from the poison
// queue. It returns the messages requeued.
func (q *PoisonQueue) Requeue(ctx context.Context, ids ...string) ([]PoisonMessage, error) {
	msgs, err := q.receiveAll(ctx, ids...)
	if err != nil {
		q.release(msgs)
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var done, keep []PoisonMessage
	var errs []error
	for _, m := range msgs {
		if len(ids) > 0 && !want[m.ID] {
			keep = append(keep, m)
			continue
		}
		delete(want, m.ID)
		if err := q.resend(ctx, m); err != nil {
			errs = append(errs, fmt.Errorf("message %s: %w", m.ID, err))
			keep = append(keep, m)
			continue
		}
		if _, err := q.b.sqs.DeleteMessage(ctx, &amazonsqs.DeleteMessageInput{QueueUrl: aws.String(m.queue), ReceiptHandle: aws.String(m.receipt)}); err != nil {
			errs = append(errs, fmt.Errorf("message %s was requeued but stays in the poison queue: %w", m.ID, err))
		}
		done = append(done, m)
	}
	q.release(keep)
	for id := range want {
		errs = append(errs, fmt.Errorf("message %s: %w", id, ErrNotInPoisonQueue))
	}
	return done, errors.Join(errs...)
}

// resend publishes a poisoned message where the stage it failed in reads:
// a job message as producers sent it to the inbound queue, a stage message
// to the topic of its payload type.
func (q *PoisonQueue) resend(ctx context.Context, m PoisonMessage) error {
	msg := message.NewMessage(watermill.NewUUID(), []byte(m.Payload))
	for _, k := range keptMetadata() {
		if v := m.Metadata[k]; v != "" {
			msg.Metadata.Set(k, v)
		}
	}
	msg.SetContext(ctx)
	topic, inbound, err := requeueTarget(q.t.cfg.Stages, m.Metadata[messages.MetaPayload])
	if err != nil {
		return err
	}
	pub, err := q.t.Publisher()
	if inbound {
		pub, err = q.t.InboundPublisher()
	}
	if err != nil {
		return err
	}
	defer pub.Close()
	return pub.Publish(topic, msg)
}

// payloadStage returns the stage that reads a message with the payload
// label (empty for an inbound job message), as requeueTarget says.
func payloadStage(label string) string {
	if label == "" {
		return conf.StageParse
	}
	name, _, _ := strings.Cut(label, "/")
	if d, _, ok := conf.PayloadInput(name); ok {
		return d.Name
	}
	return "unknown"
}

// requeueTarget returns where a message with the payload label (e.g.
// "rooms-ready/1"; empty for an inbound job message) is read: the inbound
// queue, or the topic of the stage input that reads its payload type.
func requeueTarget(s conf.Stages, label string) (topic string, inbound bool, err error) {
	if label == "" {
		return s.Parse.Queue, true, nil
	}
	name, _, _ := strings.Cut(label, "/")
	if _, in, ok := conf.PayloadInput(name); ok {
		return in.From(s), false, nil
	}
	return "", false, errclass.AsPermanent(fmt.Errorf("cannot requeue a %q message: no stage reads it", label))
}

// Purge deletes every message of the poison queue and returns how many.
func (q *PoisonQueue) Purge(ctx context.Context) (int, error) {
	msgs, err := q.receiveAll(ctx)
	if err != nil {
		q.release(msgs)
		return 0, err
	}
	n := 0
	var errs []error
	for _, m := range msgs {
		if _, err := q.b.sqs.DeleteMessage(ctx, &amazonsqs.DeleteMessageInput{QueueUrl: aws.String(m.queue), ReceiptHandle: aws.String(m.receipt)}); err != nil {
			errs = append(errs, fmt.Errorf("message %s: %w", m.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
