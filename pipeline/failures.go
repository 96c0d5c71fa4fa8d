package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/logging"
	"github.com/recording-storage/recording-storage/messages"
)

// Metadata of a message in the poison queue. Together with the job's keys
// (messages.MetaJobID, MetaMeetingID, MetaPayload), the correlation id and
// Watermill's UUID they stay within SQS's 10 message attributes.
const (
	MetaPoisonStage      = "poison_stage"      // the stage that gave up, e.g. "transfer"
	MetaPoisonClass      = "poison_class"      // errclass of the error: permanent, transient or unknown
	MetaPoisonReason     = "poison_reason"     // the error, at most MaxPoisonReason bytes
	MetaPoisonDeliveries = "poison_deliveries" // deliveries of the message before it was poisoned
	// MetaPoisonCut is set when the failed message's body was cut so that
	// its poison copy fits SQS's limits: its whole size and SHA-256.
	MetaPoisonCut = "poison_cut"
)

// MaxPoisonReason bounds the reason kept with a poisoned message, so that
// its attributes stay far below SQS's 256 KiB message limit.
const MaxPoisonReason = 4 << 10

// keptMetadata are the keys of the failed message that its poison copy
// keeps; transport keys (receipt handles, counts) are dropped.
func keptMetadata() []string {
	return []string{messages.MetaJobID, messages.MetaMeetingID, messages.MetaPayload, middleware.CorrelationIDMetadataKey}
}

// Failures is how one stage's handler meets errors, decided by the
// project's one classification (package errclass): a permanent error goes
// to the poison topic at once; a transient or unknown one is retried in the
// process with backoff, then the message is Nacked and comes back through
// the queue, until MaxDeliveries deliveries have failed and it is poisoned
// too.
type Failures struct {
	Stage         string            // the stage, recorded in the poison copy
	Poison        message.Publisher // publishes poison copies
	PoisonTopic   string
	MaxDeliveries int                                  // deliveries before a failing message is poisoned
	Deliveries    func(msg *message.Message) int       // how often msg was delivered (1 on the first delivery)
	Retry         middleware.Retry                     // in-process retries; ShouldRetry is set from the error class
	Timeout       time.Duration                        // per attempt; zero: none
	OnPoison      func(stage string, c errclass.Class) // metrics hook; may be nil
	OnRetry       func(stage string)                   // metrics hook; may be nil
	Logger        logrus.FieldLogger
}

// Middlewares returns the stage's failure handling, outermost first:
//
//  1. poison: takes the final error; a permanent one is published to the
//     poison topic with the reason and the message acked. It must see the
//     error after every retry, so it is outside them.
//  2. delivery limit: a failure of the last allowed delivery becomes
//     permanent, so the poison step takes it instead of a Nack.
//  3. retry: repeats transient and unknown failures in the process, with
//     backoff; permanent ones are not repeated.
//  4. timeout: bounds each attempt, so that a stuck call fails and is
//     retried instead of holding the message.
//  5. recoverer: innermost, so that a panic becomes an error every step
//     above can see.
func (f Failures) Middlewares() ([]message.HandlerMiddleware, error) {
	if f.PoisonTopic == "" || f.Poison == nil {
		return nil, errors.New("failures: a poison topic and publisher are required")
	}
	retry := f.Retry
	// The timeout step below gives each attempt a context that ends with
	// it: every retry must start from the message's own context, or it
	// fails at once with context.Canceled, which reads as a stopping
	// service, so the delivery would be released uncounted and come back
	// for ever instead of reaching stages.max_deliveries.
	retry.ResetContextOnRetry = true
	retry.ShouldRetry = func(p middleware.RetryParams) bool {
		if errclass.IsPermanent(p.Err) || stopping(p.Err) {
			return false
		}
		if f.OnRetry != nil {
			f.OnRetry(f.Stage)
		}
		return true
	}
	if retry.Logger == nil {
		retry.Logger = watermill.NopLogger{}
	}
	mws := []message.HandlerMiddleware{f.poison, f.deliveryLimit, retry.Middleware}
	if f.Timeout > 0 {
		mws = append(mws, middleware.Timeout(f.Timeout))
	}
	return append(mws, middleware.Recoverer), nil
}

// Budget is the longest one delivery's handling may take: every attempt
// (the first and the retries) up to its timeout, and the waits between
// them; zero when an attempt has no timeout.
func (f Failures) Budget() time.Duration {
	if f.Timeout <= 0 {
		return 0
	}
	attempts := time.Duration(f.Retry.MaxRetries + 1)
	waits := time.Duration(f.Retry.MaxRetries) * max(f.Retry.MaxInterval, f.Retry.InitialInterval)
	return attempts*f.Timeout + waits
}

// deliveryLimit marks the failure of the last allowed delivery permanent.
func (f Failures) deliveryLimit(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil || errclass.IsPermanent(err) || stopping(err) || f.Deliveries == nil || f.MaxDeliveries <= 0 {
			return out, err
		}
		if n := f.Deliveries(msg); n >= f.MaxDeliveries {
			return nil, &exhausted{deliveries: n, err: err}
		}
		return out, err
	}
}

// stopping reports an error of a handler whose message context was
// cancelled: the service is stopping. Such a delivery does not count, and
// the message comes back to a running worker.
func stopping(err error) bool { return errors.Is(err, context.Canceled) }

// exhausted is a failure that used up the message's deliveries: permanent,
// but keeping the class of the last error for the record.
type exhausted struct {
	deliveries int
	err        error
}

func (e *exhausted) Error() string {
	return fmt.Sprintf("gave up after %d deliveries: %v", e.deliveries, e.err)
}
func (e *exhausted) Unwrap() error              { return e.err }
func (e *exhausted) ErrorClass() errclass.Class { return errclass.Permanent }

// poison publishes a permanently failed message to the poison topic. This is
// Watermill's PoisonQueue written again because the copy must be bounded:
// Watermill's keeps every metadata key of the failed message (the
// transport's too) and the whole reason, which can exceed SQS's limits of
// 10 attributes and 256 KiB; this one keeps the job's keys and a bounded
// reason, stage, class and delivery count.
func (f Failures) poison(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil || !errclass.IsPermanent(err) {
			return out, err
		}
		class := errclass.Of(err)
		var ex *exhausted
		if errors.As(err, &ex) {
			class = errclass.Of(ex.err)
		}
		pm := message.NewMessage(watermill.NewUUID(), msg.Payload)
		for _, k := range keptMetadata() {
			if v := msg.Metadata.Get(k); v != "" {
				pm.Metadata.Set(k, v)
			}
		}
		deliveries := 1
		if f.Deliveries != nil {
			deliveries = max(f.Deliveries(msg), 1)
		}
		pm.Metadata.Set(MetaPoisonStage, f.Stage)
		pm.Metadata.Set(MetaPoisonClass, class.String())
		pm.Metadata.Set(MetaPoisonReason, truncate(err.Error(), MaxPoisonReason))
		pm.Metadata.Set(MetaPoisonDeliveries, strconv.Itoa(deliveries))
		// A copy that cannot be published would bring the message back
		// forever: it always fits, cut if need be.
		fit(pm, MetaPoisonCut, MetaPoisonStage, MetaPoisonClass, MetaPoisonReason, MetaPoisonDeliveries, messages.MetaJobID, messages.MetaPayload)
		if perr := f.Poison.Publish(f.PoisonTopic, pm); perr != nil {
			return nil, errors.Join(err, fmt.Errorf("cannot publish to the poison topic: %w", perr))
		}
		if f.OnPoison != nil {
			f.OnPoison(f.Stage, class)
		}
		logging.WithCode(f.Logger, logging.CodeWorker).WithFields(logrus.Fields{
			logging.FieldStage: f.Stage, logging.FieldJobID: msg.Metadata.Get(messages.MetaJobID),
			logging.FieldMeetingID: msg.Metadata.Get(messages.MetaMeetingID),
			"class":                class.String(), "deliveries": deliveries}).WithError(err).Error("message moved to the poison queue")
		return nil, nil
	}
}

// truncate shortens s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = " …[truncated]"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
