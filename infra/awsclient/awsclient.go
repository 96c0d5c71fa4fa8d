// Package awsclient builds the AWS SDK clients (S3, SQS, SNS) from the
// service configuration, including the settings local emulators need.
package awsclient

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqsschemas "github.com/aws/aws-sdk-go-v2/service/sqs/schemas"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/recording-storage/recording-storage/conf"
)

// Timeouts of the AWS HTTP clients. Queue calls are small, so they get a
// whole-request deadline above SQS's 20 s long poll; S3 bodies can be large,
// so S3 only bounds connecting and waiting for response headers.
const (
	queueRequestTimeout = 60 * time.Second
	dialTimeout         = 10 * time.Second
	headerTimeout       = 60 * time.Second
)

// Config returns the AWS configuration for c: region, static credentials when
// c has them (otherwise the SDK's default chain), and checksums only where
// required, which real S3 and the emulators both accept.
func Config(ctx context.Context, c conf.AWS) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(c.Region),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey.Reveal(), "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("cannot load AWS configuration: %w", err)
	}
	return cfg, nil
}

func transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = dialTimeout
	t.ResponseHeaderTimeout = headerTimeout
	t.MaxIdleConnsPerHost = 32
	return t
}

// S3Options applies the endpoint and addressing settings of c.
func S3Options(c conf.AWS) func(*s3.Options) {
	client := &http.Client{Transport: transport()}
	return func(o *s3.Options) {
		if c.Endpoints.S3 != "" {
			o.BaseEndpoint = aws.String(c.Endpoints.S3)
		}
		o.UsePathStyle = c.S3PathStyle
		o.HTTPClient = client
	}
}

// SQSOptions applies the endpoint and protocol settings of c. The query
// protocol is for emulators, such as goaws, that do not speak AWS JSON.
func SQSOptions(c conf.AWS) func(*sqs.Options) {
	client := &http.Client{Transport: transport(), Timeout: queueRequestTimeout}
	return func(o *sqs.Options) {
		if c.Endpoints.SQS != "" {
			o.BaseEndpoint = aws.String(c.Endpoints.SQS)
		}
		if c.SQSProtocol == "query" {
			o.Protocol = awsquery.New(sqsschemas.AmazonSQS)
		}
		o.HTTPClient = client
	}
}

// SNSOptions applies the endpoint settings of c.
func SNSOptions(c conf.AWS) func(*sns.Options) {
	client := &http.Client{Transport: transport(), Timeout: queueRequestTimeout}
	return func(o *sns.Options) {
		if c.Endpoints.SNS != "" {
			o.BaseEndpoint = aws.String(c.Endpoints.SNS)
		}
		o.HTTPClient = client
	}
}

// S3 returns an S3 client for c.
func S3(cfg aws.Config, c conf.AWS) *s3.Client { return s3.NewFromConfig(cfg, S3Options(c)) }

// SQS returns an SQS client for c.
func SQS(cfg aws.Config, c conf.AWS) *sqs.Client { return sqs.NewFromConfig(cfg, SQSOptions(c)) }

// SNS returns an SNS client for c.
func SNS(cfg aws.Config, c conf.AWS) *sns.Client { return sns.NewFromConfig(cfg, SNSOptions(c)) }
