// Package conf holds the service's settings: the typed configuration with its
// defaults and validation, and the per-instance configuration that selects a
// DRACOON account and target rooms for each instance domain.
package conf

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

// Defaults for zero values in Config.
const (
	DefaultLogLevel            = "info"
	DefaultLogFormat           = "auto"
	DefaultInstanceSource      = InstanceSourceFile
	DefaultInstanceFile        = "conf/instances.yaml"
	DefaultConfiguratorTTL     = 5 * time.Minute
	DefaultConfiguratorTimeout = 10 * time.Second
	DefaultWorkers             = 1
	DefaultTransferWorkers     = 2
	DefaultChunkSize           = 20 << 20 // 20 MiB, as the original service
	MinChunkSize               = 5 << 20  // S3 multipart minimum part size
	MaxChunkSize               = 512 << 20
	DefaultTransferParallel    = 4
	DefaultPartsInFlight       = 10 // S3 direct parts one target uploads at once, as Cyberduck
	MaxTransferParallel        = 64 // most s3.parallel and s3.parts_in_flight
	DefaultMemoryBudget        = 1 << 30
	DefaultDracoonTimeout      = 30 * time.Second
	DefaultDracoonRetries      = 5
	DefaultSharerInterval      = time.Hour
	MinSharerInterval          = time.Minute
	DefaultHTTPListen          = "127.0.0.1:8080"
	DefaultAWSRegion           = "us-east-1"
	DefaultSQSProtocol         = "json"
	DefaultVisibilityTimeout   = 15 * time.Minute
	DefaultRetryDelay          = 10 * time.Second
	DefaultRetryDelayMax       = 15 * time.Minute
	DefaultMaxDeliveries       = 12
	DefaultDrainTimeout        = 25 * time.Second
	DefaultParseTimeout        = time.Minute
	DefaultResolveTimeout      = 5 * time.Minute
	DefaultRoomsTimeout        = 5 * time.Minute
	DefaultTransferTimeout     = 6 * time.Hour
	DefaultShareTimeout        = time.Hour
	DefaultStallTimeout        = time.Minute
	DefaultTransport           = TransportAWS
)

// MaxMaxDeliveries bounds stages.max_deliveries, so that the dead-letter
// backstop's receive count (DeadLetterReceives) stays within SQS's 1000.
const MaxMaxDeliveries = 100

// Where instance configurations come from (instances.source).
const (
	InstanceSourceFile         = "file"         // the instance file, instances.file
	InstanceSourceConfigurator = "configurator" // the configurator service
)

// Transports that connect the stages (stages.transport).
const (
	TransportAWS    = "aws"    // SNS topics and SQS queues
	TransportMemory = "memory" // Go channels: every stage in one process
)

// Default topic and queue names. The configuration is the only source of
// these names at run time.
const (
	DefaultInboundQueue     = "recording-jobs"        // inbound job messages, as producers send them
	DefaultJobsTopic        = "recording-jobs"        // stages.parse.topic, kept for existing files
	DefaultParsedTopic      = "recording-parsed"      // Job
	DefaultResolvedTopic    = "recording-resolved"    // ResolvedJob
	DefaultRoomsReadyTopic  = "recording-rooms-ready" // RoomsReady
	DefaultTransferredTopic = "recording-transferred" // Transferred
	DefaultShareTopic       = "recording-share"       // ShareRequest
	DefaultPoisonTopic      = "recording-poison"      // anything that cannot be processed, with the reason
)

// Config is the whole service configuration. Default returns it filled with
// the DefaultX constants; the YAML file and then the environment (see EnvName)
// override single fields, and Validate checks the result.
type Config struct {
	Logger    Logger    `yaml:"logger"`
	Instances Instances `yaml:"instances"`
	Stages    Stages    `yaml:"stages"`
	S3        S3        `yaml:"s3"`
	Dracoon   Dracoon   `yaml:"dracoon"`
	Sharer    Sharer    `yaml:"sharer"`
	HTTP      HTTP      `yaml:"http"`
	AWS       AWS       `yaml:"aws"`
	TLS       TLS       `yaml:"tls"`
}

// Logger configures the structured log.
type Logger struct {
	Level  string `yaml:"level"`  // panic, fatal, error, warn, info, debug, trace
	Format string `yaml:"format"` // json, text, or auto (text on a terminal, json otherwise)
}

// Instances says where instance configurations come from.
type Instances struct {
	Source string `yaml:"source"` // "file" or "configurator"
	File   string `yaml:"file"`   // YAML or JSON map of instance domain to Instance, for source "file"
	// Configurator is the HTTP service that serves GET {url}/instances/{domain}.
	Configurator Configurator `yaml:"configurator"`
}

// Configurator is the HTTP configurator client's settings.
type Configurator struct {
	URL      string        `yaml:"url"`
	Token    Secret        `yaml:"token"`     // optional bearer token
	CacheTTL time.Duration `yaml:"cache_ttl"` // how long a fetched configuration is reused; errors are never cached
	Timeout  time.Duration `yaml:"timeout"`   // per request
}

// Stages configures each pipeline stage and the transport between them.
type Stages struct {
	// Transport is TransportAWS (SNS topics, each read by a stage through its
	// own SQS queue "<topic>-<stage>") or TransportMemory (one process).
	Transport string     `yaml:"transport"`
	Parse     ParseStage `yaml:"parse"`
	Resolve   Stage      `yaml:"resolve"`
	Rooms     Stage      `yaml:"rooms"`
	Transfer  Stage      `yaml:"transfer"`
	Share     Stage      `yaml:"share"`
	// Transferred is the topic that announces jobs complete in every target room.
	Transferred string `yaml:"transferred"`
	// Poison is the topic that failed messages go to, with the reason.
	Poison string `yaml:"poison"`
	// VisibilityTimeout is how long a received message stays hidden from other
	// consumers; the transport extends it while a handler runs.
	VisibilityTimeout time.Duration `yaml:"visibility_timeout"`
	// RetryDelay is how long a message that failed (was nacked) waits before
	// its second delivery; each further failed delivery doubles the wait, up
	// to RetryDelayMax (see NackDelay).
	RetryDelay time.Duration `yaml:"retry_delay"`
	// RetryDelayMax caps the wait before a redelivery.
	RetryDelayMax time.Duration `yaml:"retry_delay_max"`
	// MaxDeliveries is how often a message is tried before it goes to the
	// poison queue; deliveries a stopping process released do not count.
	MaxDeliveries int `yaml:"max_deliveries"`
	// CreateResources lets `run` create the topics, queues and subscriptions
	// of the whole configuration that are missing and set the queues'
	// attributes (aws transport). False: `run` creates and changes nothing,
	// it only looks up its own stages' queues and topics and fails, naming
	// each, when one is missing.
	CreateResources bool `yaml:"create_resources"`
	// DrainTimeout is how long a stopping process lets the handlers in flight
	// run on; what still runs then is cancelled and its message released.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// NackDelay is how long a message waits after its delivery number
// deliveries (1 the first time) failed: RetryDelay doubled for each
// delivery after the first, at most RetryDelayMax.
func (s Stages) NackDelay(deliveries int) time.Duration {
	d := s.RetryDelay
	for i := 1; i < deliveries && d < s.RetryDelayMax; i++ {
		d *= 2
	}
	return min(d, max(s.RetryDelayMax, s.RetryDelay))
}

// DeadLetterReceives is the receive count after which SQS moves a message
// of a queue the service created to the dead-letter queue: far above
// MaxDeliveries, so that only a message that never ends a delivery (one
// that kills the process every time) gets there.
func (s Stages) DeadLetterReceives() int { return 10 * s.MaxDeliveries }

// OutageBudget is the least time from a message's first delivery to its
// poisoning when every delivery fails at once (transiently): the waits
// between its MaxDeliveries deliveries. An outage shorter than this
// poisons nothing.
func (s Stages) OutageBudget() time.Duration {
	var total time.Duration
	for n := 1; n < s.MaxDeliveries; n++ {
		total += s.NackDelay(n)
	}
	return total
}

// Stage is one stage's topic and its concurrency.
type Stage struct {
	Workers int    `yaml:"workers"` // messages handled at once
	Topic   string `yaml:"topic"`   // the topic this stage consumes
	// Timeout bounds one attempt of the stage's handler: then its context
	// ends and the attempt fails (transiently).
	Timeout time.Duration `yaml:"timeout"`
}

// ParseStage is the first stage: it reads the inbound SQS queue that
// producers send job messages to.
type ParseStage struct {
	Workers int `yaml:"workers"` // messages handled at once
	// Queue is the inbound queue: a name (created if missing) or a full SQS
	// queue URL (which must exist).
	Queue string `yaml:"queue"`
	// Topic is not read: the parse stage reads Queue. It is kept so that
	// existing files still load.
	Topic string `yaml:"topic"`
	// Timeout bounds one attempt of the stage's handler.
	Timeout time.Duration `yaml:"timeout"`
}

// PoisonInspectGroup is the consumer group whose queue
// ("<stages.poison>-inspect") keeps the poisoned messages for operators:
// nothing reads it but the poison commands, and nothing leaves it until it
// is requeued or purged.
const PoisonInspectGroup = "inspect"

// DeadLetterSuffix names the dead-letter queue: "<stages.poison>-dlq".
const DeadLetterSuffix = "dlq"

// DeadLetterQueue returns the name of the queue SQS moves a message to that
// was received too often without an outcome (see Stages.DeadLetterReceives).
func DeadLetterQueue(poison string) string { return poison + "-" + DeadLetterSuffix }

// QueueRetention is how long the queues the service creates keep a message:
// SQS's maximum, 14 days, so that no job and no poisoned message expires
// before an operator has looked (SQS's default is 4 days).
const QueueRetention = 14 * 24 * time.Hour

// SubscriptionQueue returns the name of the SQS queue through which stage
// reads topic.
func SubscriptionQueue(topic, stage string) string { return topic + "-" + stage }

// InboundQueueName returns the name of an SQS queue given by name or by URL, and
// whether queue is a valid queue name (1 to 80 letters, digits, '-' or '_')
// or an http or https URL ending in one.
func InboundQueueName(queue string) (string, bool) {
	name := queue
	if strings.Contains(queue, "/") {
		u, err := url.Parse(queue)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", false
		}
		name = path.Base(u.Path)
	}
	return name, isQueueName(name)
}

// S3 configures how recordings are read from S3 and how many chunks of
// them are on their way to DRACOON at once.
type S3 struct {
	ChunkSize           ByteSize `yaml:"chunk_size"`            // bytes per ranged read and per upload part, a multiple of 16
	RemoveAfterTransfer bool     `yaml:"remove_after_transfer"` // delete the object once every target is complete
	// Parallel is the read-ahead of a transfer: chunks read from S3 and
	// encrypted ahead of the uploads, and the number of concurrent ranged
	// reads.
	Parallel int `yaml:"parallel"`
	// PartsInFlight is how many S3 direct parts each target of a transfer
	// uploads at once (proxy chunks go one after another).
	PartsInFlight int `yaml:"parts_in_flight"`
	// MemoryBudget bounds the chunk buffers of all transfers at once:
	// stages.transfer.workers x (Parallel + PartsInFlight) x ChunkSize. The
	// buffers of a transfer are shared by all its targets.
	MemoryBudget ByteSize `yaml:"memory_budget"`
	// StallTimeout fails a read whose body moves no byte for this long
	// (transient: it is retried).
	StallTimeout time.Duration `yaml:"stall_timeout"`
}

// TransferMemory is the most memory the chunk buffers of all transfers
// hold at once: every transfer worker holds at most Parallel +
// PartsInFlight chunks, whatever the number of its targets.
func (c Config) TransferMemory() ByteSize {
	return ByteSize(int64(c.Stages.Transfer.Workers) * int64(c.S3.Parallel+c.S3.PartsInFlight) * int64(c.S3.ChunkSize))
}

// Dracoon holds DRACOON client defaults. Accounts and rooms are per instance.
type Dracoon struct {
	Timeout time.Duration `yaml:"timeout"` // per request, without the body transfer
	Retries int           `yaml:"retries"` // attempts after the first for requests safe to repeat
	// StallTimeout fails a request whose body (sent or received) moves no
	// byte for this long (transient).
	StallTimeout time.Duration `yaml:"stall_timeout"`
}

// Sharer configures the periodic distribution of missing file keys.
type Sharer struct {
	// Instances are the instance domains the sweep covers (in the
	// environment: comma-separated); empty means every instance of
	// instances.file.
	Instances []string      `yaml:"instances"`
	Interval  time.Duration `yaml:"interval"` // at least one minute
}

// TLS configures whom the service trusts over the network.
type TLS struct {
	// CAFile is a PEM bundle of certificate authorities trusted beside the
	// system's by the DRACOON and configurator clients (an on-premises
	// DRACOON with a company CA); empty: the system's only.
	CAFile string `yaml:"ca_file"`
	// AllowPlainHTTP allows http:// endpoints (the configurator, AWS) on
	// hosts other than loopback. The configurator's answers carry every
	// DRACOON password, so plain http is refused unless this is set.
	AllowPlainHTTP bool `yaml:"allow_plain_http"`
}

// CertPool returns the system's certificate authorities with those of
// CAFile, or nil (the system's) when CAFile is empty.
func (t TLS) CertPool() (*x509.CertPool, error) {
	if t.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", t.CAFile)
	}
	return pool, nil
}

// HTTP configures the health and metrics endpoint.
type HTTP struct {
	Listen string `yaml:"listen"` // host:port
}

// AWS configures the AWS clients. Endpoints are for local emulators; empty
// means the AWS default.
type AWS struct {
	Region          string       `yaml:"region"`
	AccountID       string       `yaml:"account_id"` // for SNS topic ARNs
	AccessKeyID     string       `yaml:"access_key_id"`
	SecretAccessKey Secret       `yaml:"secret_access_key"`
	Endpoints       AWSEndpoints `yaml:"endpoints"`
	SQSProtocol     string       `yaml:"sqs_protocol"`  // "json" (AWS) or "query" (emulators such as goaws)
	S3PathStyle     bool         `yaml:"s3_path_style"` // path-style S3 addressing, for emulators
}

// AWSEndpoints overrides the service endpoints.
type AWSEndpoints struct {
	S3  string `yaml:"s3"`
	SQS string `yaml:"sqs"`
	SNS string `yaml:"sns"`
}

// Default returns the configuration with every default applied.
func Default() Config {
	stage := func(topic string, workers int, timeout time.Duration) Stage {
		return Stage{Workers: workers, Topic: topic, Timeout: timeout}
	}
	return Config{
		Logger: Logger{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Instances: Instances{
			Source:       DefaultInstanceSource,
			File:         DefaultInstanceFile,
			Configurator: Configurator{CacheTTL: DefaultConfiguratorTTL, Timeout: DefaultConfiguratorTimeout},
		},
		Stages: Stages{
			Transport: DefaultTransport,
			Parse: ParseStage{Workers: DefaultWorkers, Queue: DefaultInboundQueue, Topic: DefaultJobsTopic,
				Timeout: DefaultParseTimeout},
			Resolve:           stage(DefaultParsedTopic, DefaultWorkers, DefaultResolveTimeout),
			Rooms:             stage(DefaultResolvedTopic, DefaultWorkers, DefaultRoomsTimeout),
			Transfer:          stage(DefaultRoomsReadyTopic, DefaultTransferWorkers, DefaultTransferTimeout),
			Share:             stage(DefaultShareTopic, DefaultWorkers, DefaultShareTimeout),
			Transferred:       DefaultTransferredTopic,
			Poison:            DefaultPoisonTopic,
			VisibilityTimeout: DefaultVisibilityTimeout,
			RetryDelay:        DefaultRetryDelay,
			RetryDelayMax:     DefaultRetryDelayMax,
			MaxDeliveries:     DefaultMaxDeliveries,
			DrainTimeout:      DefaultDrainTimeout,
			CreateResources:   true,
		},
		S3: S3{ChunkSize: DefaultChunkSize, RemoveAfterTransfer: true, Parallel: DefaultTransferParallel,
			PartsInFlight: DefaultPartsInFlight, MemoryBudget: DefaultMemoryBudget, StallTimeout: DefaultStallTimeout},
		Dracoon: Dracoon{Timeout: DefaultDracoonTimeout, Retries: DefaultDracoonRetries, StallTimeout: DefaultStallTimeout},
		Sharer:  Sharer{Interval: DefaultSharerInterval, Instances: []string{}},
		HTTP:    HTTP{Listen: DefaultHTTPListen},
		AWS:     AWS{Region: DefaultAWSRegion, SQSProtocol: DefaultSQSProtocol},
	}
}
