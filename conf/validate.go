package conf

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
)

// isQueueName reports whether SQS and SNS accept name for a queue or topic:
// 1 to 80 ASCII letters, digits, '-' or '_'.
func isQueueName(name string) bool {
	if len(name) < 1 || len(name) > 80 {
		return false
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SQS limits on the visibility timeout.
const maxVisibilityTimeout = 12 * time.Hour

// minVisibilityTimeout bounds the visibility timeout from below: the
// heartbeat extends a message every third of it.
const minVisibilityTimeout = 10 * time.Second

// maxStageTimeout bounds a stage's attempt timeout.
const maxStageTimeout = 24 * time.Hour

// Validate checks every value and returns one error per bad value, each
// naming the field as it is written in the YAML file.
func (c Config) Validate() error {
	v := validator{plainHTTP: c.TLS.AllowPlainHTTP}
	if _, err := logrus.ParseLevel(c.Logger.Level); err != nil {
		v.addf("logger.level must be one of panic, fatal, error, warn, info, debug, trace, got %q", c.Logger.Level)
	}
	v.oneOf("logger.format", c.Logger.Format, "json", "text", "auto")

	v.oneOf("instances.source", c.Instances.Source, InstanceSourceFile, InstanceSourceConfigurator)
	switch c.Instances.Source {
	case InstanceSourceFile:
		if c.Instances.File == "" {
			v.addf("instances.file must be set when instances.source is file")
		}
	case InstanceSourceConfigurator:
		v.url("instances.configurator.url", c.Instances.Configurator.URL, true)
		if len(c.Sharer.Instances) == 0 {
			// The sweep hands out the file keys a share step failed to hand
			// out before the source was removed; it finds no instance to
			// sweep in a configurator.
			v.addf("sharer.instances must name the instances to sweep when instances.source is configurator (a configurator cannot list its instances)")
		}
	}
	v.min("instances.configurator.cache_ttl", c.Instances.Configurator.CacheTTL, 0)
	v.min("instances.configurator.timeout", c.Instances.Configurator.Timeout, time.Second)

	v.oneOf("stages.transport", c.Stages.Transport, TransportAWS, TransportMemory)
	topics := map[string]string{}
	queues := map[string]string{}
	// The parse stage's topic is not read (see ParseStage.Topic), but it
	// must not be taken for another.
	v.topic("stages.parse.topic", c.Stages.Parse.Topic, topics)
	for _, d := range StageTable() {
		if !d.Handles() {
			continue
		}
		path := "stages." + d.Name
		if w := d.Workers(c.Stages); w < 1 || w > 1000 {
			v.addf("%s.workers must be >= 1 and <= 1000, got %d", path, w)
		}
		v.between(path+".timeout", d.Timeout(c.Stages), time.Second, maxStageTimeout)
		for _, in := range d.Inputs {
			if in.Inbound {
				if name, ok := InboundQueueName(in.From(c.Stages)); ok {
					queues[name] = in.Setting
				} else {
					v.addf("%s must be a queue name (1 to 80 letters, digits, '-' or '_') or an http or https queue URL ending in one, got %q", in.Setting, in.From(c.Stages))
				}
				continue
			}
			if v.topic(in.Setting, in.From(c.Stages), topics) {
				v.queue(in.Setting, SubscriptionQueue(in.From(c.Stages), d.Name), queues)
			}
		}
	}
	if v.topic("stages.poison", c.Stages.Poison, topics) {
		// The operators' queue keeps the poisoned messages.
		v.queue("stages.poison", SubscriptionQueue(c.Stages.Poison, PoisonInspectGroup), queues)
		v.queue("stages.poison", DeadLetterQueue(c.Stages.Poison), queues)
	}
	if c.Stages.VisibilityTimeout < minVisibilityTimeout || c.Stages.VisibilityTimeout > maxVisibilityTimeout {
		v.addf("stages.visibility_timeout must be between 10s and 12h, got %s", c.Stages.VisibilityTimeout)
	}
	if c.Stages.RetryDelay < 0 || c.Stages.RetryDelay > maxVisibilityTimeout {
		v.addf("stages.retry_delay must be between 0s and 12h, got %s", c.Stages.RetryDelay)
	}
	if c.Stages.RetryDelayMax < c.Stages.RetryDelay || c.Stages.RetryDelayMax > maxVisibilityTimeout {
		v.addf("stages.retry_delay_max must be between stages.retry_delay (%s) and 12h, got %s", c.Stages.RetryDelay, c.Stages.RetryDelayMax)
	}
	if c.Stages.MaxDeliveries < 1 || c.Stages.MaxDeliveries > MaxMaxDeliveries {
		v.addf("stages.max_deliveries must be >= 1 and <= %d, got %d", MaxMaxDeliveries, c.Stages.MaxDeliveries)
	}
	if c.Stages.DrainTimeout < 0 || c.Stages.DrainTimeout > maxVisibilityTimeout {
		v.addf("stages.drain_timeout must be between 0s and 12h, got %s", c.Stages.DrainTimeout)
	}

	// The memory budget rule is checked only when its factors are valid
	// (a bad factor is reported on its own).
	w := c.Stages.Transfer.Workers
	factorsValid := w >= 1 && w <= 1000
	before := v.len()
	switch cs := c.S3.ChunkSize; {
	case cs < MinChunkSize || cs > MaxChunkSize:
		v.addf("s3.chunk_size must be between %s and %s, got %s", ByteSize(MinChunkSize), ByteSize(MaxChunkSize), cs)
	case int64(cs)%crypto.SegmentAlign != 0:
		v.addf("s3.chunk_size must be a multiple of %d bytes (the AES block), got %d", crypto.SegmentAlign, int64(cs))
	}
	if c.S3.Parallel < 1 || c.S3.Parallel > MaxTransferParallel {
		v.addf("s3.parallel must be >= 1 and <= %d, got %d", MaxTransferParallel, c.S3.Parallel)
	}
	if c.S3.PartsInFlight < 1 || c.S3.PartsInFlight > MaxTransferParallel {
		v.addf("s3.parts_in_flight must be >= 1 and <= %d, got %d", MaxTransferParallel, c.S3.PartsInFlight)
	}
	if c.S3.MemoryBudget < 1 {
		v.addf("s3.memory_budget must be positive, got %s", c.S3.MemoryBudget)
	}
	if factorsValid && v.len() == before {
		if need := c.TransferMemory(); need > c.S3.MemoryBudget {
			v.addf("stages.transfer.workers (%d) x (s3.parallel (%d) + s3.parts_in_flight (%d)) x s3.chunk_size (%s) = %s exceeds s3.memory_budget (%s)",
				c.Stages.Transfer.Workers, c.S3.Parallel, c.S3.PartsInFlight, c.S3.ChunkSize, need, c.S3.MemoryBudget)
		}
	}

	v.min("dracoon.timeout", c.Dracoon.Timeout, time.Second)
	v.between("dracoon.stall_timeout", c.Dracoon.StallTimeout, time.Second, time.Hour)
	v.between("s3.stall_timeout", c.S3.StallTimeout, time.Second, time.Hour)
	if c.Dracoon.Retries < 0 || c.Dracoon.Retries > 20 {
		v.addf("dracoon.retries must be >= 0 and <= 20, got %d", c.Dracoon.Retries)
	}
	v.min("sharer.interval", c.Sharer.Interval, MinSharerInterval)

	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil || port == "" {
		v.addf("http.listen must be host:port, got %q", c.HTTP.Listen)
	}

	if c.AWS.Region == "" {
		v.addf("aws.region must be set")
	}
	v.oneOf("aws.sqs_protocol", c.AWS.SQSProtocol, "json", "query")
	if (c.AWS.AccessKeyID == "") != !c.AWS.SecretAccessKey.IsSet() {
		v.addf("aws.access_key_id and aws.secret_access_key must be set together")
	}
	v.url("aws.endpoints.s3", c.AWS.Endpoints.S3, false)
	v.url("aws.endpoints.sqs", c.AWS.Endpoints.SQS, false)
	v.url("aws.endpoints.sns", c.AWS.Endpoints.SNS, false)
	return v.err()
}

// validator collects one error per bad value.
type validator struct {
	errs      []error
	plainHTTP bool // tls.allow_plain_http
}

func (v *validator) addf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

func (v *validator) err() error { return errors.Join(v.errs...) }

// len is the number of errors so far.
func (v *validator) len() int { return len(v.errs) }

func (v *validator) oneOf(path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.addf("%s must be one of %q, got %q", path, allowed, got)
}

func (v *validator) between(path string, got, least, most time.Duration) {
	if got < least || got > most {
		v.addf("%s must be between %s and %s, got %s", path, least, most, got)
	}
}

func (v *validator) min(path string, got, least time.Duration) {
	if got < least {
		v.addf("%s must be >= %s, got %s", path, least, got)
	}
}

func (v *validator) url(path, raw string, required bool) {
	if raw == "" {
		if required {
			v.addf("%s must be set", path)
		}
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.addf("%s must be an http or https URL, got %q", path, raw)
		return
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) && !v.plainHTTP {
		v.addf("%s uses plain http to %s, which is not a loopback host: use https, or set tls.allow_plain_http", path, u.Hostname())
	}
}

// topic checks a topic name and that no other setting in seen names the
// same topic; it reports whether name is valid.
func (v *validator) topic(path, name string, seen map[string]string) bool {
	if !isQueueName(name) {
		v.addf("%s must be 1 to 80 letters, digits, '-' or '_', got %q", path, name)
		return false
	}
	if other, dup := seen[name]; dup {
		v.addf("%s must differ from %s, both are %q", path, other, name)
	}
	seen[name] = path
	return true
}

// queue checks the SQS queue name that the setting at path gives (a topic
// name joined with its stage) and that no other setting gives the same queue.
func (v *validator) queue(path, name string, seen map[string]string) {
	if !isQueueName(name) {
		v.addf("%s gives the SQS queue name %q, which is %d characters: SQS allows at most 80", path, name, len(name))
		return
	}
	if other, dup := seen[name]; dup {
		v.addf("%s gives the SQS queue name %q, which %s gives too", path, name, other)
	}
	seen[name] = path
}
