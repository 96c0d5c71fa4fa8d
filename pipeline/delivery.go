package pipeline

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"

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
	// settled runs when the message has been acked (acked is true), nacked or
	// abandoned.
	settled func(orig *message.Message, acked bool)
}

// relays hands the messages of a source to the handlers as copies, so that
// the transport can act on Ack and Nack before the source sees them, and
// keeps at most workers of them in flight per subscription.
type relays struct {
	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

func newRelays() *relays { return &relays{closing: make(chan struct{})} }

// errClosed reports a Subscribe on a closed subscriber.
var errClosed = errors.New("cannot subscribe: subscriber closed")

// start relays in until it is closed, ctx ends or the relays are closed. A
// message in flight when the subscription ends is nacked back to the source.
func (r *relays) start(ctx context.Context, in <-chan *message.Message, workers int, h deliveryHooks) (<-chan *message.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	tokens := make(chan struct{}, workers)
	go func() {
		select {
		case <-r.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	r.wg.Add(1)
	go func() {
		var inFlight sync.WaitGroup
		defer r.wg.Done()
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
			msgCtx, cancelMsg := context.WithCancel(ctx)
			msg.SetContext(msgCtx)
			select {
			case out <- msg:
			case <-ctx.Done():
				cancelMsg()
				orig.Nack()
				if h.settled != nil {
					h.settled(orig, false)
				}
				return
			}
			inFlight.Add(1)
			go func() {
				defer inFlight.Done()
				v := verdict(ctx, msg)
				<-tokens // the worker is free while the source learns the verdict
				cancelMsg()
				switch v {
				case acked:
					orig.Ack()
				case nacked:
					if h.nack != nil {
						h.nack(ctx, orig)
					}
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
	abandoned // the subscription ended first
)

// verdict waits for the handler's verdict on msg.
func verdict(ctx context.Context, msg *message.Message) int {
	select {
	case <-msg.Acked():
		return acked
	case <-msg.Nacked():
		return nacked
	case <-ctx.Done():
		select { // a verdict given just before the end still counts
		case <-msg.Acked():
			return acked
		case <-msg.Nacked():
			return nacked
		default:
			return abandoned
		}
	}
}

// close ends every subscription and waits until their channels are closed
// and their messages settled.
func (r *relays) close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.closing)
	}
	r.mu.Unlock()
	r.wg.Wait()
}
