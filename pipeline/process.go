package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// processGroup is the consumer group with which Process watches the end of
// the job.
const processGroup = "process"

// Process runs one job message (the body producers send) through every
// stage in this process, over the memory transport: parse, resolve, rooms
// and transfer through their handlers and queues, then the share handler
// with the Transferred report. It returns the report, or the poisoned
// message's reason as an error of its class.
func Process(ctx context.Context, opts Options, body []byte) (messages.Transferred, error) {
	opts.Config.Stages.Transport = conf.TransportMemory
	opts.Stages = []string{conf.StageParse, conf.StageResolve, conf.StageRooms, conf.StageTransfer}
	svc, err := New(ctx, opts)
	if err != nil {
		return messages.Transferred{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch, err := svc.transport.Subscriber(processGroup, 1)
	if err != nil {
		return messages.Transferred{}, err
	}
	st := opts.Config.Stages
	done, err := watch.Subscribe(ctx, st.Transferred)
	if err != nil {
		return messages.Transferred{}, err
	}
	poisoned, err := watch.Subscribe(ctx, st.Poison)
	if err != nil {
		return messages.Transferred{}, err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Run(ctx) }()
	select {
	case <-svc.Running():
	case err := <-stopped:
		return messages.Transferred{}, err
	}
	inbound, err := svc.transport.InboundPublisher()
	if err != nil {
		return messages.Transferred{}, err
	}
	queue := svc.transport.InboundQueue()
	msg := message.NewMessage(watermill.NewUUID(), body)
	msg.SetContext(ctx)
	if err := inbound.Publish(queue, msg); err != nil {
		return messages.Transferred{}, err
	}
	var (
		report messages.Transferred
		result error
	)
	select {
	case m := <-done:
		m.Ack()
		m.SetContext(ctx)
		report, result = messages.Decode[messages.Transferred](m)
		if result == nil {
			result = handlers.ShareTransferred{Steps: opts.Steps}.Handle(m)
			if result != nil {
				result = fmt.Errorf("share: %w", result)
			}
		}
	case m := <-poisoned:
		m.Ack()
		md := m.Metadata
		result = errclass.Mark(fmt.Errorf("stage %s gave up after %s deliveries: %s", md.Get(MetaPoisonStage),
			md.Get(MetaPoisonDeliveries), md.Get(MetaPoisonReason)), classOf(md.Get(MetaPoisonClass)))
	case err := <-stopped:
		return messages.Transferred{}, errors.Join(errors.New("the pipeline stopped before the job ended"), err)
	case <-ctx.Done():
		result = ctx.Err()
	}
	cancel()
	if err := <-stopped; err != nil && result == nil {
		result = err
	}
	return report, result
}

// classOf parses an errclass.Class name; anything else is transient.
func classOf(name string) errclass.Class {
	for _, c := range []errclass.Class{errclass.Permanent, errclass.Unknown} {
		if c.String() == name {
			return c
		}
	}
	return errclass.Transient
}
