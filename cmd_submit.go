package main

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/pipeline"
)

// runSubmit implements "recording-storage submit FILE|-": validate a job
// message and send it to the inbound queue, as a producer would.
func runSubmit(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "submit", "submit [--config FILE] FILE|-",
		"Validates one job message and sends it, unchanged, to the inbound queue (stages.parse.queue).")
	configFile := configFlag(fs)
	data, job, code := parseJobArgs(fs, args, s)
	if code >= 0 {
		return code
	}
	cfg, err := conf.Load(*configFile, nil)
	if err != nil {
		return commandError(s, "submit", err)
	}
	if err := submit(ctx, cfg, data); err != nil {
		return commandError(s, "submit", err)
	}
	fmt.Fprintf(s.out, "submitted job %s (meeting %d) to %s\n", job.ID, job.Meeting.ID, cfg.Stages.Parse.Queue)
	return 0
}

// submit sends a job message's body to the inbound queue, which the
// service creates at start. It sets nothing up: a tool must not reset the
// queues' attributes to its own configuration's.
func submit(ctx context.Context, cfg conf.Config, body []byte) error {
	t, err := pipeline.NewTransport(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer t.Close()
	pub, err := t.InboundPublisher()
	if err != nil {
		return err
	}
	defer pub.Close()
	queue := t.InboundQueue()
	msg := message.NewMessage(watermill.NewUUID(), body)
	msg.SetContext(ctx)
	if err := pub.Publish(queue, msg); err != nil {
		return fmt.Errorf("cannot send to the inbound queue %s (the service creates it when it starts): %w", queue, err)
	}
	return nil
}
