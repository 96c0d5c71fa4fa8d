// Package handlers holds the pipeline's Watermill handlers, one per stage:
// each decodes its input message, calls the stage's step and encodes the
// result for the next stage. Returning an error Nacks the message; the
// pipeline's middleware decides from the error's class (package errclass)
// whether it is retried or goes to the poison queue. Every handler is safe
// for concurrent use.
package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/messages"
)

// Steps is what the stages do (implemented by *steps.Service).
type Steps interface {
	Resolve(ctx context.Context, job *messages.Job, opts steps.ResolveOptions) (messages.ResolvedJob, error)
	EnsureRooms(ctx context.Context, rj messages.ResolvedJob) (messages.RoomsReady, error)
	Transfer(ctx context.Context, rr messages.RoomsReady, removeSource bool) (messages.Transferred, error)
	Share(ctx context.Context, req messages.ShareRequest) (messages.KeyStats, error)
}

// Deps are what the handlers of the stages are built with.
type Deps struct {
	Steps Steps
	// Now is the clock of the parse stage; nil: time.Now.
	Now func() time.Time
	// RemoveSource is s3.remove_after_transfer.
	RemoveSource bool
	// Keys receives the outcome of every share; nil: none.
	Keys   KeysHook
	Logger logrus.FieldLogger
}

// New returns the handler of a stage's input by the input's handler name
// (conf.StageInput.Handler). A handler of a stage that publishes no results
// returns none.
func New(name string, d Deps) (message.HandlerFunc, error) {
	switch name {
	case conf.StageParse:
		return Parse{Now: d.Now}.Handle, nil
	case conf.StageResolve:
		return Resolve{Steps: d.Steps}.Handle, nil
	case conf.StageRooms:
		return Rooms{Steps: d.Steps}.Handle, nil
	case conf.StageTransfer:
		return Transfer{Steps: d.Steps, RemoveSource: d.RemoveSource}.Handle, nil
	case conf.HandlerShareTransferred:
		return none(ShareTransferred{Steps: d.Steps, Keys: d.Keys}.Handle), nil
	case conf.HandlerShareRequested:
		return none(ShareRequested{Steps: d.Steps, Keys: d.Keys, Sweeps: NewSweeps(), Logger: d.Logger}.Handle), nil
	}
	return nil, fmt.Errorf("no handler called %q", name)
}

// none adapts a handler that publishes nothing.
func none(h message.NoPublishHandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) { return nil, h(msg) }
}

// one wraps a single output message.
func one(msg *message.Message, err error) ([]*message.Message, error) {
	if err != nil {
		return nil, err
	}
	return []*message.Message{msg}, nil
}
