package pipeline

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/recording-storage/recording-storage/conf"
)

// IAMPolicy is an AWS IAM policy document.
type IAMPolicy struct {
	Version   string         `json:"Version"`
	Statement []IAMStatement `json:"Statement"`
}

// IAMStatement is one statement of an IAMPolicy.
type IAMStatement struct {
	Sid      string   `json:"Sid"`
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// NewIAMPolicy returns the least-privilege IAM policy of a process running
// stages with cfg: SQS on exactly the queues the stages read, SNS on exactly
// the topics they read and publish to, S3 reads (and deletes, for the
// transfer stage with s3.remove_after_transfer) on the objects of buckets
// ("*": any bucket), nothing else. With stages.create_resources true the
// process also creates every topic, queue and subscription of the
// configuration: a statement allows that on exactly those.
func NewIAMPolicy(cfg conf.Config, stages []string, buckets []string) (IAMPolicy, error) {
	if cfg.AWS.AccountID == "" {
		return IAMPolicy{}, errors.New("cannot write the IAM policy: aws.account_id must be set, the ARNs need it")
	}
	if cfg.AWS.Region == "" {
		return IAMPolicy{}, errors.New("cannot write the IAM policy: aws.region must be set, the ARNs need it")
	}
	stages, err := selectStages(stages)
	if err != nil {
		return IAMPolicy{}, err
	}
	topo := NewTopology(cfg)
	a := arns{partition: partition(cfg.AWS.Region), region: cfg.AWS.Region, account: cfg.AWS.AccountID}
	var queues, lookUp, publish []string
	needs := map[conf.Dependency]bool{}
	for _, st := range stages {
		io, _ := topo.Stage(st)
		for _, q := range io.Queues {
			queues = appendNew(queues, a.queue(topo, q))
		}
		for _, t := range io.Subscribes {
			lookUp = appendNew(lookUp, a.topic(t))
		}
		for _, t := range io.Publishes {
			lookUp = appendNew(lookUp, a.topic(t))
			publish = appendNew(publish, a.topic(t))
		}
		for _, d := range io.Needs {
			needs[d] = true
		}
	}
	// Actions the service calls, by what it does with them: read,
	// acknowledge, delay and keep hidden the messages of a queue, release
	// them to it as fresh copies when the process stops, look it up
	// (stages.create_resources false, the health check) and read its depth
	// (the queue gauges); look a topic and its subscriptions up; publish;
	// create what is missing and set the queues' attributes
	// (stages.create_resources true).
	sqsReadActions := []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
		"sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage"}
	snsLookUpActions := []string{"sns:ListSubscriptionsByTopic"}
	snsPublishActions := []string{"sns:Publish"}
	sqsCreateActions := []string{"sqs:CreateQueue", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SetQueueAttributes"}
	snsCreateActions := []string{"sns:CreateTopic", "sns:ListSubscriptionsByTopic", "sns:Subscribe"}
	p := IAMPolicy{Version: "2012-10-17"}
	add := func(sid string, actions, resources []string) {
		if len(resources) > 0 {
			slices.Sort(resources)
			p.Statement = append(p.Statement, IAMStatement{Sid: sid, Effect: "Allow", Action: actions, Resource: resources})
		}
	}
	add("ReadQueues", sqsReadActions, queues)
	add("LookUpTopics", snsLookUpActions, lookUp)
	add("PublishTopics", snsPublishActions, publish)
	if len(buckets) == 0 {
		buckets = []string{"*"}
	}
	var objects, bucketARNs []string
	for _, b := range buckets {
		objects = append(objects, fmt.Sprintf("arn:%s:s3:::%s/*", a.partition, b))
		bucketARNs = append(bucketARNs, fmt.Sprintf("arn:%s:s3:::%s", a.partition, b))
	}
	if needs[conf.NeedS3Read] {
		add("ReadRecordings", []string{"s3:GetObject"}, objects)
		// Without it S3 answers a missing object with 403, not 404, and a
		// missing source would look like a permission problem.
		add("ListRecordingBuckets", []string{"s3:ListBucket"}, bucketARNs)
	}
	if needs[conf.NeedS3Delete] && cfg.S3.RemoveAfterTransfer {
		add("RemoveRecordings", []string{"s3:DeleteObject"}, slices.Clone(objects))
	}
	if cfg.Stages.CreateResources {
		var allQueues, allTopics []string
		for _, q := range topo.Queues {
			allQueues = appendNew(allQueues, a.queue(topo, q.Name))
		}
		for _, t := range topo.Topics {
			allTopics = appendNew(allTopics, a.topic(t))
		}
		add("CreateQueues", sqsCreateActions, allQueues)
		add("CreateTopics", snsCreateActions, allTopics)
	}
	return p, nil
}

// arns builds the ARNs of one account and region.
type arns struct{ partition, region, account string }

func (a arns) topic(name string) string {
	return fmt.Sprintf("arn:%s:sns:%s:%s:%s", a.partition, a.region, a.account, name)
}

// queue returns the ARN of the queue name; a queue configured by URL
// (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) has the URL's region and
// account.
func (a arns) queue(topo Topology, name string) string {
	region, account := a.region, a.account
	if q, ok := topo.Queue(name); ok && q.URL != "" {
		if u, err := url.Parse(q.URL); err == nil {
			parts := strings.Split(strings.Trim(u.Path, "/"), "/")
			host := strings.Split(u.Hostname(), ".")
			if len(parts) == 2 && len(host) >= 4 && host[0] == "sqs" {
				region, account = host[1], parts[0]
			}
		}
	}
	return sqsARN(region, account, name)
}

// sqsARN is the ARN of the queue name of an account in a region.
func sqsARN(region, account, name string) string {
	return fmt.Sprintf("arn:%s:sqs:%s:%s:%s", partition(region), region, account, name)
}

// partition returns the AWS partition of a region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
