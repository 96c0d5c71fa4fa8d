// Package awstest gives tests the AWS clients of the local stack (.ci/stack):
// the configuration loaded as the service loads it, S3 clients and
// throw-away buckets.
package awstest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient"
)

// StackHint is the message of tests that need the local stack when it is
// not running.
const StackHint = "the local stack is not running: run `make test`, or `make stack-up` and `. .stack/env` before `go test`"

// Config returns the configuration of the local stack, loaded the way the
// service loads it, so the RS_* variables written by .ci/stack apply. It
// fails the test when the stack is not running.
func Config(tb testing.TB) conf.Config {
	tb.Helper()
	if os.Getenv("RS_TEST_STACK") == "" {
		tb.Fatal(StackHint)
	}
	cfg, err := conf.Load("", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// AWSConfig returns the SDK configuration for c.
func AWSConfig(tb testing.TB, c conf.AWS) aws.Config {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	awsCfg, err := awsclient.Config(ctx, c)
	if err != nil {
		tb.Fatal(err)
	}
	return awsCfg
}

// S3 returns an S3 client for c, built as the service builds it.
func S3(tb testing.TB, c conf.AWS) *s3.Client {
	tb.Helper()
	return awsclient.S3(AWSConfig(tb, c), c)
}

var bucketSeq atomic.Int64

// Bucket creates an empty bucket named after prefix that is emptied and
// removed after the test.
func Bucket(tb testing.TB, client *s3.Client, prefix string) string {
	tb.Helper()
	bucket := fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		tb.Fatalf("CreateBucket: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				tb.Errorf("cleanup: ListObjectsV2: %v", err)
				return
			}
			for _, o := range page.Contents {
				if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
					tb.Errorf("cleanup: DeleteObject: %v", err)
				}
			}
		}
		if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
			tb.Errorf("cleanup: DeleteBucket: %v", err)
		}
	})
	return bucket
}
