package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/logging"
	"github.com/recording-storage/recording-storage/messages"
)

// Sweep asks, every Interval, for the missing file keys of every room of
// every instance to be served: one sweep request per instance, handled by
// the share stage, so that users added to a room later get their keys
// within one interval. Several sweeps at once are harmless: serving a key
// twice stores it once.
type Sweep struct {
	Instances func(ctx context.Context) ([]string, error) // the instance domains to sweep
	Interval  time.Duration
	Publish   func(msgs ...*message.Message) error // to the share requests topic
	Logger    logrus.FieldLogger
	// Done, if set, is called after each sweep whose requests were all
	// published, with the time it started.
	Done func(started time.Time)
}

// Run sweeps at once and then every Interval until ctx is done.
func (s Sweep) Run(ctx context.Context) error {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		started := time.Now()
		if err := s.once(ctx); err != nil {
			logging.WithCode(s.Logger, logging.CodeSharerError).WithError(err).Error("cannot request a sweep")
		} else if s.Done != nil {
			s.Done(started)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// once publishes one sweep request per instance.
func (s Sweep) once(ctx context.Context) error {
	domains, err := s.Instances(ctx)
	if err != nil {
		return err
	}
	for _, d := range domains {
		msg, err := messages.New(messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: d, Sweep: true,
			RequestedAt: time.Now().UTC()}, "", 0)
		if err != nil {
			return err
		}
		if err := s.Publish(msg); err != nil {
			return fmt.Errorf("cannot publish the sweep of instance %q: %w", d, err)
		}
	}
	logging.WithCode(s.Logger, logging.CodeSharerStatus).WithField("instances", len(domains)).Info("sweep requested")
	return nil
}
