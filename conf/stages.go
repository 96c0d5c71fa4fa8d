package conf

import (
	"time"

	"github.com/recording-storage/recording-storage/messages"
)

// Stage names. A stage name is also the consumer group that reads a topic
// (the aws transport reads topic T for stage S through the SQS queue
// SubscriptionQueue(T, S)), the section stages.<name> of the configuration
// and a value of `run --stages`.
const (
	StageParse    = "parse"
	StageResolve  = "resolve"
	StageRooms    = "rooms"
	StageTransfer = "transfer"
	StageShare    = "share"
	// StageSweep is the periodic sweep: it reads nothing and asks the share
	// stage to hand out the keys missing in every room of an instance.
	StageSweep = "sweep"
)

// Handler names of the share stage's two inputs; the other stages' one
// handler is called as the stage.
const (
	HandlerShareTransferred = "share-transferred"
	HandlerShareRequested   = "share-requested"
)

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

// StageDecl declares one stage of the pipeline: what it reads, what it
// publishes, its settings and what else it needs. StageTable holds every
// stage; validation, the transport, the router, the topology, requeueing
// and the health checks read it.
type StageDecl struct {
	// Name is the stage's name (StageParse, ...).
	Name string
	// Worker names the stage in its health check (see Health) as the
	// original service named its workers.
	Worker string
	// Inputs are the streams the stage reads; none for the sweep.
	Inputs []StageInput
	// Needs are the stage's other dependencies.
	Needs []Dependency

	settings func(Stages) (workers int, timeout time.Duration) // nil: no stages.<name> section
	output   func(Stages) string                               // nil: the stage publishes no results
}

// StageInput is one stream of messages a stage reads, with its handler.
type StageInput struct {
	// Handler names the stage's Watermill handler of this input.
	Handler string
	// Setting is the setting that names the topic or queue.
	Setting string
	// Payload is the payload read: its type and current version.
	Payload messages.Payload
	// Inbound: the input is the inbound queue producers send jobs to
	// (stages.parse.queue), not a topic.
	Inbound bool

	from func(Stages) string
}

// From returns the topic the input reads in s, or for the inbound input
// the inbound queue (a name or an SQS queue URL).
func (in StageInput) From(s Stages) string { return in.from(s) }

// Workers returns how many messages of each input the stage handles at
// once in one process; 0 for the sweep.
func (d StageDecl) Workers(s Stages) int {
	if d.settings == nil {
		return 0
	}
	w, _ := d.settings(s)
	return w
}

// Timeout returns the bound of one attempt of the stage's handlers; 0 for
// the sweep.
func (d StageDecl) Timeout(s Stages) time.Duration {
	if d.settings == nil {
		return 0
	}
	_, t := d.settings(s)
	return t
}

// Output returns the topic the stage publishes its results to; "" when it
// publishes none (but poison).
func (d StageDecl) Output(s Stages) string {
	if d.output == nil {
		return ""
	}
	return d.output(s)
}

// Health returns the name of the stage's check in /healthcheck:
// worker_error_<Worker>.
func (d StageDecl) Health() string { return "worker_error_" + d.Worker }

// Handles reports whether the stage handles messages (the sweep does not:
// it only publishes requests).
func (d StageDecl) Handles() bool { return len(d.Inputs) > 0 }

// StageTable returns the stages in the order a job travels, then the
// sweep. It is the one declaration of the pipeline's topology.
func StageTable() []StageDecl {
	return []StageDecl{
		{
			Name: StageParse, Worker: "parser",
			Inputs: []StageInput{{Handler: StageParse, Setting: "stages.parse.queue", Payload: messages.Job{}, Inbound: true,
				from: func(s Stages) string { return s.Parse.Queue }}},
			settings: func(s Stages) (int, time.Duration) { return s.Parse.Workers, s.Parse.Timeout },
			output:   func(s Stages) string { return s.Resolve.Topic },
		},
		{
			Name: StageResolve, Worker: "resolver",
			Inputs: []StageInput{{Handler: StageResolve, Setting: "stages.resolve.topic", Payload: messages.Job{},
				from: func(s Stages) string { return s.Resolve.Topic }}},
			Needs:    []Dependency{NeedInstances, NeedDracoon, NeedS3Read},
			settings: func(s Stages) (int, time.Duration) { return s.Resolve.Workers, s.Resolve.Timeout },
			output:   func(s Stages) string { return s.Rooms.Topic },
		},
		{
			Name: StageRooms, Worker: "room_creator",
			Inputs: []StageInput{{Handler: StageRooms, Setting: "stages.rooms.topic", Payload: messages.ResolvedJob{},
				from: func(s Stages) string { return s.Rooms.Topic }}},
			Needs:    []Dependency{NeedInstances, NeedDracoon},
			settings: func(s Stages) (int, time.Duration) { return s.Rooms.Workers, s.Rooms.Timeout },
			output:   func(s Stages) string { return s.Transfer.Topic },
		},
		{
			Name: StageTransfer, Worker: "file_transferer",
			Inputs: []StageInput{{Handler: StageTransfer, Setting: "stages.transfer.topic", Payload: messages.RoomsReady{},
				from: func(s Stages) string { return s.Transfer.Topic }}},
			Needs:    []Dependency{NeedInstances, NeedDracoon, NeedS3Read, NeedS3Delete},
			settings: func(s Stages) (int, time.Duration) { return s.Transfer.Workers, s.Transfer.Timeout },
			output:   func(s Stages) string { return s.Transferred },
		},
		{
			// The share stage answers share requests (the sweep's), read
			// from its own topic, and hands out the keys of transferred
			// files, read from the announcement topic.
			Name: StageShare, Worker: "sharer",
			Inputs: []StageInput{
				{Handler: HandlerShareRequested, Setting: "stages.share.topic", Payload: messages.ShareRequest{},
					from: func(s Stages) string { return s.Share.Topic }},
				{Handler: HandlerShareTransferred, Setting: "stages.transferred", Payload: messages.Transferred{},
					from: func(s Stages) string { return s.Transferred }},
			},
			Needs:    []Dependency{NeedInstances, NeedDracoon},
			settings: func(s Stages) (int, time.Duration) { return s.Share.Workers, s.Share.Timeout },
		},
		{
			Name: StageSweep, Worker: "global_sharer",
			Needs:  []Dependency{NeedInstances},
			output: func(s Stages) string { return s.Share.Topic },
		},
	}
}

// StageNames returns the names of the stages of StageTable, in its order.
func StageNames() []string {
	var names []string
	for _, d := range StageTable() {
		names = append(names, d.Name)
	}
	return names
}

// LookupStage returns the declaration of the stage called name, and
// whether there is one.
func LookupStage(name string) (StageDecl, bool) {
	for _, d := range StageTable() {
		if d.Name == name {
			return d, true
		}
	}
	return StageDecl{}, false
}

// PayloadInput returns the stage and input that read messages with the
// payload type name (a job is read by two: the inbound queue's jobs carry
// no payload label, so a label names the resolve stage's input), and
// whether one does.
func PayloadInput(name string) (StageDecl, StageInput, bool) {
	for _, d := range StageTable() {
		for _, in := range d.Inputs {
			if got, _ := in.Payload.PayloadType(); got == name && !in.Inbound {
				return d, in, true
			}
		}
	}
	return StageDecl{}, StageInput{}, false
}
