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

// Dependency is an outside system a stage needs besides its queues and
// topics.
type Dependency string

// Dependencies of the stages.
const (
	// NeedInstances: the instance configurations (the instance file or the
	// configurator), which hold the DRACOON credentials.
	NeedInstances Dependency = "instances"
	// NeedDracoon: the DRACOON accounts of the instances.
	NeedDracoon Dependency = "dracoon"
	// NeedS3Read: reading (and looking up) the source objects.
	NeedS3Read Dependency = "s3-read"
	// NeedS3Delete: removing the source objects after their transfer, when
	// s3.remove_after_transfer says so.
	NeedS3Delete Dependency = "s3-delete"
)

// Needs returns the dependencies of stage: parse needs none (it only
// validates messages), the sweep only the list of instances, the others
// the instances' DRACOON accounts, and resolve and transfer the S3 source.
func Needs(stage string) []Dependency {
	switch stage {
	case StageResolve:
		return []Dependency{NeedInstances, NeedDracoon, NeedS3Read}
	case StageRooms, StageShare:
		return []Dependency{NeedInstances, NeedDracoon}
	case StageTransfer:
		return []Dependency{NeedInstances, NeedDracoon, NeedS3Read, NeedS3Delete}
	case StageSweep:
		return []Dependency{NeedInstances}
	}
	return []Dependency{}
}
