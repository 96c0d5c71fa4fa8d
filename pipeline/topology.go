package pipeline

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/messages"
)

// Topology is everything a configuration implies on SNS and SQS with the aws
// transport: the topics, the queues with their attributes, the
// subscriptions, and for each stage what it reads, what it publishes to and
// what else it needs. The transport creates (or, with
// stages.create_resources false, looks up) exactly these; the topology and
// iam-policy commands and the Helm chart read them from here.
type Topology struct {
	Topics        []string       `json:"topics"`
	Queues        []Queue        `json:"queues"`
	Subscriptions []Subscription `json:"subscriptions"`
	Stages        []StageIO      `json:"stages"`
}

// Queue is one SQS queue of the topology.
type Queue struct {
	Name string `json:"name"`
	// URL is set when the configuration gives the queue by URL (the inbound
	// queue may be an existing queue of another account or region).
	URL string `json:"url,omitempty"`
	// Reader is the stage that reads the queue, or conf.PoisonInspectGroup: operators.
	Reader string `json:"reader"`
	// Attributes are set on the queue, whether it is new or not.
	Attributes map[string]string `json:"attributes"`
}

// Subscription delivers a topic's messages to a queue, raw (the body is the
// message, attributes become metadata); the queue's policy lets the topic
// send to it.
type Subscription struct {
	Topic              string `json:"topic"`
	Queue              string `json:"queue"`
	RawMessageDelivery bool   `json:"raw_message_delivery"`
}

// StageIO is what one stage reads, publishes and needs.
type StageIO struct {
	Stage string `json:"stage"`
	// Queues are the queues the stage reads (its input; the share stage has
	// two).
	Queues []string `json:"queues"`
	// Subscribes are the topics that reach those queues; empty for the
	// parse stage, which reads the inbound queue producers send to.
	Subscribes []string `json:"subscribes"`
	// Publishes are the topics the stage publishes to, the poison topic
	// included.
	Publishes []string `json:"publishes"`
	// Payloads are the payloads read from Queues, in their order, with
	// their current versions (e.g. "rooms-ready/1").
	Payloads []string `json:"payloads"`
	// Workers is how many messages of each queue a process handles at once
	// (stages.<stage>.workers); 0 for the sweep.
	Workers int `json:"workers"`
	// Health is the stage's check in /healthcheck.
	Health string `json:"health"`
	// Needs are the stage's other dependencies.
	Needs []conf.Dependency `json:"needs"`
}

// NewTopology returns the topology of cfg.
func NewTopology(cfg conf.Config) Topology {
	s := cfg.Stages
	var t Topology
	addTopic := func(topic string) {
		if !slices.Contains(t.Topics, topic) {
			t.Topics = append(t.Topics, topic)
		}
	}
	inbound, _ := conf.InboundQueueName(s.Parse.Queue)
	q := Queue{Name: inbound, Reader: conf.StageParse, Attributes: queueAttributes(cfg, conf.StageParse)}
	if inbound != s.Parse.Queue {
		q.URL = s.Parse.Queue
		// Possibly of another account or region: no dead-letter queue.
		delete(q.Attributes, string(sqstypes.QueueAttributeNameRedrivePolicy))
	}
	t.Queues = append(t.Queues, q)
	t.Queues = append(t.Queues, Queue{Name: conf.DeadLetterQueue(s.Poison), Reader: conf.PoisonInspectGroup, Attributes: deadLetterAttributes()})
	for _, sub := range subscriptions(s) {
		name := conf.SubscriptionQueue(sub.topic, sub.stage)
		addTopic(sub.topic)
		t.Queues = append(t.Queues, Queue{Name: name, Reader: sub.stage, Attributes: queueAttributes(cfg, sub.stage)})
		t.Subscriptions = append(t.Subscriptions, Subscription{Topic: sub.topic, Queue: name, RawMessageDelivery: true})
	}
	for _, d := range conf.StageTable() {
		io := StageIO{Stage: d.Name, Queues: []string{}, Subscribes: []string{}, Payloads: []string{},
			Workers: d.Workers(s), Health: d.Health(), Needs: append([]conf.Dependency{}, d.Needs...)}
		for _, in := range d.Inputs {
			io.Payloads = append(io.Payloads, messages.Label(in.Payload))
			if in.Inbound {
				io.Queues = append(io.Queues, inbound)
				continue
			}
			io.Queues = append(io.Queues, conf.SubscriptionQueue(in.From(s), d.Name))
			io.Subscribes = append(io.Subscribes, in.From(s))
		}
		if out := d.Output(s); out != "" {
			io.Publishes = append(io.Publishes, out)
			addTopic(out)
		}
		if d.Handles() { // the sweep publishes requests, it handles no message
			io.Publishes = append(io.Publishes, s.Poison)
		}
		t.Stages = append(t.Stages, io)
	}
	return t
}

// Stage returns the StageIO of stage, and whether there is such a stage.
func (t Topology) Stage(stage string) (StageIO, bool) {
	for _, io := range t.Stages {
		if io.Stage == stage {
			return io, true
		}
	}
	return StageIO{}, false
}

// Queue returns the queue named name, and whether there is one.
func (t Topology) Queue(name string) (Queue, bool) {
	for _, q := range t.Queues {
		if q.Name == name {
			return q, true
		}
	}
	return Queue{}, false
}

// queueAttributes are applied to the queue that reader (a stage, or
// conf.PoisonInspectGroup) reads, new or not: the visibility timeout, in whole seconds,
// at least 1; the retention (conf.QueueRetention); and, but for the poison
// topic's queue (only the operators' listings receive from it, and each
// counts), the redrive policy to the dead-letter queue after
// conf.Stages.DeadLetterReceives receives.
func queueAttributes(cfg conf.Config, reader string) map[string]string {
	attrs := map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(int(max(seconds(cfg.Stages.VisibilityTimeout), 1))),
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): retentionSeconds(),
	}
	if reader != conf.PoisonInspectGroup {
		policy, _ := json.Marshal(map[string]string{ // strings only: cannot fail
			"deadLetterTargetArn": sqsARN(cfg.AWS.Region, cfg.AWS.AccountID, conf.DeadLetterQueue(cfg.Stages.Poison)),
			"maxReceiveCount":     strconv.Itoa(cfg.Stages.DeadLetterReceives())})
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(policy)
	}
	return attrs
}

// deadLetterAttributes are applied to the dead-letter queue: the retention.
func deadLetterAttributes() map[string]string {
	return map[string]string{string(sqstypes.QueueAttributeNameMessageRetentionPeriod): retentionSeconds()}
}

func retentionSeconds() string { return strconv.Itoa(int(conf.QueueRetention / time.Second)) }

// SelectStages checks a list of stage names (as `run --stages` takes them)
// and returns them without duplicates; empty means every stage.
func SelectStages(list []string) ([]string, error) { return selectStages(list) }

// StopTimeout is the longest a stopping service waits for the handlers in
// flight before it closes (see Service.Run): the drain and its margin. A
// deployment's grace period must exceed it and the HTTP server's shutdown.
func StopTimeout(s conf.Stages) time.Duration { return s.DrainTimeout + closeMargin }
