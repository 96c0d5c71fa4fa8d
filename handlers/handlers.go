// Package handlers holds the pipeline's Watermill handlers, one per stage:
// each decodes its input message, calls the stage's step and encodes the
// result for the next stage. Returning an error Nacks the message; the
// pipeline's middleware decides from the error's class (package errclass)
// whether it is retried or goes to the poison queue. Every handler is safe
// for concurrent use.
package handlers

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/messages"
)

// Steps is what the stages do (implemented by *steps.Service).
type Steps interface {
	Resolve(ctx context.Context, job *messages.Job, opts steps.ResolveOptions) (messages.ResolvedJob, error)
	EnsureRooms(ctx context.Context, rj messages.ResolvedJob) (messages.RoomsReady, error)
	Transfer(ctx context.Context, rr messages.RoomsReady, removeSource bool) (messages.Transferred, error)
	Share(ctx context.Context, req messages.ShareRequest) (dracoon.KeyStats, error)
}

// Stage names, used for handler names, queues and the poison metadata.
const (
	StageParse    = "parse"
	StageResolve  = "resolve"
	StageRooms    = "rooms"
	StageTransfer = "transfer"
	StageShare    = "share"
	StageSweep    = "sweep"
)

// AllStages lists the stages in the order a job travels, then the sweep.
func AllStages() []string {
	return []string{StageParse, StageResolve, StageRooms, StageTransfer, StageShare, StageSweep}
}

// one wraps a single output message.
func one(msg *message.Message, err error) ([]*message.Message, error) {
	if err != nil {
		return nil, err
	}
	return []*message.Message{msg}, nil
}
