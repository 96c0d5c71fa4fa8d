package messages

import "time"

// Metadata keys set on every message between stages. Together with the keys
// the poison queue and the correlation middleware add, they stay within the
// publishers' limit (pipeline.MaxMetadataKeys: SQS allows 10 attributes, one
// is Watermill's UUID).
const (
	MetaJobID     = "job_id"
	MetaMeetingID = "meeting_id"
	MetaPayload   = "payload" // payload type and version, e.g. "resolved-job/1"
)

// MaxPayloadSize is the largest encoded payload of a stage message, in bytes,
// leaving room below the 256 KiB SQS and SNS limits for attributes.
const MaxPayloadSize = 192 << 10

// Payload types and their current versions.
const (
	PayloadJob          = "job"
	PayloadResolvedJob  = "resolved-job"
	PayloadRoomsReady   = "rooms-ready"
	PayloadTransferred  = "transferred"
	PayloadShareRequest = "share-request"

	ResolvedJobVersion  = 1
	RoomsReadyVersion   = 1
	TransferredVersion  = 1
	ShareRequestVersion = 1
)

// PayloadType names the payload and its version for the payload metadata.
func (Job) PayloadType() (string, int) { return PayloadJob, JobVersion }

// ResolvedJob is a job with its instance configuration applied: the targets of
// the message and of the instance's meeting-type rules, merged, with their
// expiration dates. It carries no credentials; stages look those up by instance.
type ResolvedJob struct {
	Version      int            `json:"version"`
	Job          Job            `json:"job"`
	ParentRoomID int64          `json:"parentRoomId"` // DRACOON room that every target path is relative to
	Targets      []Target       `json:"targets"`
	Sources      []SourceObject `json:"sources"` // one per source key, in the order of Job.Source.Keys
}

// SourceObject is one source object as the resolve stage found it, so that
// the transfer reads exactly that version.
type SourceObject struct {
	Key  string `json:"key"`
	Name string `json:"name"` // its DRACOON file name (FileNames)
	Size int64  `json:"size"`
	ETag string `json:"etag,omitempty"`
	// VersionID is the object's version id in a bucket with versioning.
	VersionID string `json:"versionId,omitempty"`
	// Gone reports an object already removed after an earlier delivery
	// transferred it into every target: nothing is left to read.
	Gone bool `json:"gone,omitempty"`
}

// PayloadType names the payload and its version for the payload metadata.
func (ResolvedJob) PayloadType() (string, int) { return PayloadResolvedJob, ResolvedJobVersion }

// RoomsReady is a resolved job whose target rooms all exist.
type RoomsReady struct {
	Version int            `json:"version"`
	Job     Job            `json:"job"`
	Rooms   []TargetRoom   `json:"rooms"`
	Sources []SourceObject `json:"sources"`
}

// PayloadType names the payload and its version for the payload metadata.
func (RoomsReady) PayloadType() (string, int) { return PayloadRoomsReady, RoomsReadyVersion }

// TargetRoom is a target and the DRACOON room that holds it.
type TargetRoom struct {
	Target
	RoomID int64 `json:"roomId"`
}

// Transferred reports a job whose files are complete in every target room.
type Transferred struct {
	Version       int               `json:"version"`
	JobID         string            `json:"jobId"`
	Instance      string            `json:"instance"`
	MeetingID     int64             `json:"meetingId"`
	Files         []TransferredFile `json:"files"`
	SourceDeleted bool              `json:"sourceDeleted"` // every S3 object of the job is gone (see TransferredFile.SourceRemoved)
	CompletedAt   time.Time         `json:"completedAt"`
}

// PayloadType names the payload and its version for the payload metadata.
func (Transferred) PayloadType() (string, int) { return PayloadTransferred, TransferredVersion }

// TransferredFile is one S3 object and the DRACOON files it became.
type TransferredFile struct {
	Key     string         `json:"key"`
	Size    int64          `json:"size"`
	Uploads []UploadedFile `json:"uploads"`
	// SourceRemoved reports that the object is gone from S3: removed after
	// the transfer, or found removed already.
	SourceRemoved bool `json:"sourceRemoved,omitempty"`
	// SourceKept says why an object that was to be removed was kept.
	SourceKept string `json:"sourceKept,omitempty"`
}

// UploadedFile is one encrypted file in a target room.
type UploadedFile struct {
	RoomID  int64  `json:"roomId"`
	NodeID  int64  `json:"nodeId"`
	Name    string `json:"name"`
	Existed bool   `json:"existed,omitempty"` // complete from an earlier delivery, not uploaded now
	// NameTaken reports that the file's deterministic name was held by a
	// file of other provenance, so that it went in under its version's own.
	NameTaken bool `json:"nameTaken,omitempty"`
}

// ShareRequest asks the share stage to hand the file keys of the given files
// to every room member who lacks them.
type ShareRequest struct {
	Version  int     `json:"version"`
	JobID    string  `json:"jobId,omitempty"`
	Instance string  `json:"instance"`
	FileIDs  []int64 `json:"fileIds,omitempty"`
	RoomIDs  []int64 `json:"roomIds,omitempty"` // whole rooms
	// Sweep asks for every room below the instance's parent room (the
	// periodic sweep).
	Sweep bool `json:"sweep,omitempty"`
	// RequestedAt is when the sweep was asked for: a sweep of the instance
	// that started later covers it.
	RequestedAt time.Time `json:"requestedAt,omitzero"`
}

// PayloadType names the payload and its version for the payload metadata.
func (ShareRequest) PayloadType() (string, int) { return PayloadShareRequest, ShareRequestVersion }

// KeyStats counts the outcome of handing out missing file keys, in (user,
// file) pairs.
type KeyStats struct {
	Set     int // keys stored for a user
	Skipped int // pairs the account cannot serve (no file key of its own, no usable public key)
	Failed  int // pairs whose key could not be stored
}

// Add adds o to s.
func (s *KeyStats) Add(o KeyStats) {
	s.Set += o.Set
	s.Skipped += o.Skipped
	s.Failed += o.Failed
}
