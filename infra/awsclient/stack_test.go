package awsclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
)

// stackConfig loads the configuration the way the service does, so the RS_*
// variables written by .ci/stack reach the clients through conf's env rules.
func stackConfig(t *testing.T) (aws.Config, conf.AWS) {
	t.Helper()
	cfg := awstest.Config(t)
	return awstest.AWSConfig(t, cfg.AWS), cfg.AWS
}

func TestS3_against_stack(t *testing.T) {
	awsCfg, c := stackConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := awsclient.S3(awsCfg, c)
	bucket := fmt.Sprintf("rs-selftest-%d", time.Now().UnixNano())
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	body := make([]byte, 3<<20+7)
	_, _ = rand.Read(body)
	key := "meetings/selftest.mp4"
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(body)) {
		t.Fatalf("HeadObject: %v, length %d", err, aws.ToInt64(head.ContentLength))
	}
	rng := "bytes=1048576-2097151"
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: &rng})
	if err != nil {
		t.Fatalf("ranged GetObject: %v", err)
	}
	part, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(part, body[1<<20:2<<20]) {
		t.Fatalf("ranged GetObject returned %d bytes, err %v", len(part), err)
	}
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatalf("DeleteObject: %v", err)
	}
	_, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	var nsk *s3types.NoSuchKey
	if !errors.As(err, &nsk) {
		t.Fatalf("GetObject after delete: %v, want NoSuchKey", err)
	}
	if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("DeleteBucket: %v", err)
	}
}

func TestSNS_to_SQS_against_stack(t *testing.T) {
	awsCfg, c := stackConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sqsClient, snsClient := awsclient.SQS(awsCfg, c), awsclient.SNS(awsCfg, c)

	q, err := sqsClient.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("stack-selftest")})
	if err != nil {
		t.Fatalf("GetQueueUrl: %v", err)
	}
	direct := fmt.Sprintf("direct-%d", time.Now().UnixNano())
	if _, err := sqsClient.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: &direct}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	viaTopic := fmt.Sprintf("via-sns-%d", time.Now().UnixNano())
	arn := fmt.Sprintf("arn:aws:sns:%s:%s:stack-selftest", c.Region, c.AccountID)
	if _, err := snsClient.Publish(ctx, &sns.PublishInput{TopicArn: &arn, Message: &viaTopic}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	want := map[string]bool{direct: false, viaTopic: false}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		out, err := sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		for _, m := range out.Messages {
			if _, ok := want[aws.ToString(m.Body)]; ok {
				want[aws.ToString(m.Body)] = true
			}
			if _, err := sqsClient.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("DeleteMessage: %v", err)
			}
		}
		if want[direct] && want[viaTopic] {
			return
		}
	}
	t.Fatalf("messages not received: %v", want)
}
