package pipeline

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys that the transport sets on every received message. They
// describe one delivery, so publishers do not forward them.
const (
	// MetaReceiveCount is how often the message has been delivered, this
	// delivery included ("1" the first time), as SQS counts it; see ReceiveCount.
	MetaReceiveCount = "ApproximateReceiveCount"
	// MetaReceiptHandle is the SQS receipt handle of this delivery (aws only).
	MetaReceiptHandle = "sqs_receipt_handle"
	// MetaQueueURL is the SQS queue the message was received from (aws only).
	MetaQueueURL = "sqs_queue_url"
)

// MetaPriorFailures is set on the copy of a message that a stopping
// process released (see Stopping in the README): how many deliveries of
// the earlier copies failed. SQS counts receives, not failures, and a copy
// starts again from one, so the failures travel with the message.
const MetaPriorFailures = "prior_failures"

// Deliveries returns the deliveries of a received message that count
// toward stages.max_deliveries, this one included: its receive count plus
// the failures of the copies before it.
func Deliveries(msg *message.Message) int {
	prior, err := strconv.Atoi(msg.Metadata.Get(MetaPriorFailures))
	if err != nil || prior < 0 {
		prior = 0
	}
	return ReceiveCount(msg) + prior
}

// deliveryKey reports the metadata keys that describe one delivery of a
// message (its receipt, queue and receive count), which a message sent on
// does not carry.
func deliveryKey(k string) bool {
	return k == MetaReceiptHandle || k == MetaQueueURL || k == MetaReceiveCount
}

// MetaDecodeError is set on a received message whose SQS attributes could
// not all be read as Watermill writes them (such as a UUID attribute that is
// not a string), with the reason. The message is delivered anyway, with
// the attributes that could be read, so that the handler and the poison
// queue see it instead of SQS redelivering it forever.
const MetaDecodeError = "transport_decode_error"

// ReceiveCount returns the delivery count of a received message (1 the first
// time), or 0 when the message carries none.
func ReceiveCount(msg *message.Message) int {
	n, err := strconv.Atoi(msg.Metadata.Get(MetaReceiveCount))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// deliveryHooks adapt relays to a transport.
type deliveryHooks struct {
	// metadata adds the delivery metadata to md, the metadata of a received
	// message, before it is handed out.
	metadata func(orig *message.Message, md message.Metadata)
	// nack runs after the handler nacked the message and before the source
	// learns of it; the worker is free meanwhile. ctx ends when the
	// subscription ends.
	nack func(ctx context.Context, orig *message.Message)
	// ack runs when a message is acked after its subscription ended, when
	// the source may no longer act on the Ack; nil: the source does.
	ack func(orig *message.Message)
	// release makes a message visible again at once without counting the
	// delivery: one the stopping process did not get to, or whose handler
	// was still running when the drain timeout ran out; nil: the source
	// gets a Nack.
	release func(orig *message.Message)
	// settled runs when the message has been acked (acked is true), nacked,
	// or released.
	settled func(orig *message.Message, acked bool)
}

// relays hands the messages of a source to the handlers as copies, so that
// the transport can act on Ack and Nack before the source sees them, and
// keeps at most workers of them in flight per subscription. When a
// subscription ends (the service stops), it stops handing out messages and
// lets the handlers in flight run on for the drain timeout, their contexts
// alive; then it cancels them and releases their messages.
type relays struct {
	drain time.Duration

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

func newRelays(drain time.Duration) *relays {
	return &relays{drain: drain, closing: make(chan struct{})}
}

// errClosed reports a Subscribe on a closed subscriber.
var errClosed = errors.New("cannot subscribe: subscriber closed")

// verdictGrace is how long a handler whose context was cancelled at the end
// of the drain has to give its verdict before its message is released
// regardless.
const verdictGrace = time.Second

// start relays in until it is closed, ctx ends or the relays are closed.
func (r *relays) start(ctx context.Context, in <-chan *message.Message, workers int, h deliveryHooks) (<-chan *message.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	// The handlers' contexts outlive the subscription by the drain timeout.
	drainCtx, endDrain := context.WithCancel(context.WithoutCancel(ctx))
	out := make(chan *message.Message)
	tokens := make(chan struct{}, workers)
	go func() {
		select {
		case <-r.closing:
		case <-ctx.Done():
		}
		cancel()
		t := time.NewTimer(r.drain)
		defer t.Stop()
		select {
		case <-t.C:
		case <-drainCtx.Done():
		}
		endDrain()
	}()
	release := func(orig *message.Message) {
		if h.release != nil {
			h.release(orig)
		} else {
			orig.Nack()
		}
		if h.settled != nil {
			h.settled(orig, false)
		}
	}
	r.wg.Add(1)
	go func() {
		var inFlight sync.WaitGroup
		defer r.wg.Done()
		defer endDrain()
		defer close(out)
		defer inFlight.Wait()
		defer cancel()
		for {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			var orig *message.Message
			select {
			case m, ok := <-in:
				if !ok {
					return
				}
				orig = m
			case <-ctx.Done():
				return
			}
			msg := message.NewMessage(orig.UUID, orig.Payload)
			msg.Metadata = maps.Clone(orig.Metadata)
			if msg.Metadata == nil {
				msg.Metadata = message.Metadata{}
			}
			if h.metadata != nil {
				h.metadata(orig, msg.Metadata)
			}
			msgCtx, cancelMsg := context.WithCancel(drainCtx)
			msg.SetContext(msgCtx)
			select {
			case out <- msg:
			case <-ctx.Done():
				cancelMsg()
				release(orig) // received, never handled
				return
			}
			inFlight.Add(1)
			go func() {
				defer inFlight.Done()
				v := verdict(drainCtx, msg)
				<-tokens // the worker is free while the source learns the verdict
				drained := drainCtx.Err() != nil
				cancelMsg()
				stopped := ctx.Err() != nil
				switch {
				case v == acked && stopped && h.ack != nil:
					h.ack(orig)
					orig.Ack()
				case v == acked:
					orig.Ack()
				case v == abandoned || (stopped && drained):
					// Cut off by the end of the drain: not a failure.
					release(orig)
					return
				case h.nack != nil:
					h.nack(ctx, orig)
					orig.Nack()
				default:
					orig.Nack()
				}
				if h.settled != nil {
					h.settled(orig, v == acked)
				}
			}()
		}
	}()
	return out, nil
}

// The verdicts on a message.
const (
	acked     = iota
	nacked    // by the handler
	abandoned // the drain ended and the handler gave none within verdictGrace
)

// verdict waits for the handler's verdict on msg; once drain is done it
// waits verdictGrace more.
func verdict(drain context.Context, msg *message.Message) int {
	select {
	case <-msg.Acked():
		return acked
	case <-msg.Nacked():
		return nacked
	case <-drain.Done():
	}
	t := time.NewTimer(verdictGrace)
	defer t.Stop()
	select {
	case <-msg.Acked():
		return acked
	case <-msg.Nacked():
		return nacked
	case <-t.C:
		return abandoned
	}
}

// close ends every subscription and waits until their channels are closed
// and their messages settled: up to the drain timeout (and verdictGrace)
// for the handlers in flight.
func (r *relays) close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.closing)
	}
	r.mu.Unlock()
	r.wg.Wait()
}
