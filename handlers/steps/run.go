package steps

import (
	"context"
	"fmt"

	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/messages"
)

// RunOptions tunes Run.
type RunOptions struct {
	ResolveOptions
	RemoveSource bool                  // delete the sources once every file is complete in every room
	Progress     transfer.ProgressFunc // receives the progress of each file; may be nil
}

// Summary reports a job run with Run.
type Summary struct {
	JobID    string        `json:"jobId"`
	Instance string        `json:"instance"`
	Bucket   string        `json:"bucket"`
	Files    []SummaryFile `json:"files"`
	Keys     KeyCounts     `json:"keys"`
}

// SummaryFile is one source object and where it went.
type SummaryFile struct {
	Key           string          `json:"key"`
	Size          int64           `json:"size"`
	SourceRemoved bool            `json:"sourceRemoved"`
	SourceKept    string          `json:"sourceKept,omitempty"` // why a source to be removed was kept
	Targets       []SummaryTarget `json:"targets"`
}

// SummaryTarget is one file in one target room.
type SummaryTarget struct {
	RoomPath string `json:"roomPath"`
	RoomID   int64  `json:"roomId"`
	NodeID   int64  `json:"nodeId"`
	FileName string `json:"fileName"`
	Existed  bool   `json:"existed"` // complete from an earlier run, not uploaded now
	// NameTaken: the deterministic name was held by a file of other
	// provenance, so FileName is this version's own alternate name.
	NameTaken bool `json:"nameTaken,omitempty"`
}

// KeyCounts are the file keys handed to room members, in (user, file) pairs.
type KeyCounts struct {
	Set     int `json:"set"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
}

// Run runs every step of job in this process, one after the other:
// resolve, rooms, transfer, share. The summary is filled as far as the job
// got, also when it fails.
func (s *Service) Run(ctx context.Context, job *messages.Job, opts RunOptions) (Summary, error) {
	sum := Summary{JobID: job.ID, Instance: job.Instance, Bucket: job.Source.Bucket}
	rj, err := s.Resolve(ctx, job, opts.ResolveOptions)
	if err != nil {
		return sum, fmt.Errorf("resolve: %w", err)
	}
	rr, err := s.EnsureRooms(ctx, rj)
	if err != nil {
		return sum, fmt.Errorf("rooms: %w", err)
	}
	tr, err := s.transfer(ctx, &rr, opts.RemoveSource, opts.Progress)
	if err != nil {
		return sum, fmt.Errorf("transfer: %w", err)
	}
	paths := map[int64]string{}
	for _, r := range rr.Rooms {
		paths[r.RoomID] = r.Path
	}
	for _, f := range tr.Files {
		sf := SummaryFile{Key: f.Key, Size: f.Size, SourceRemoved: f.SourceRemoved, SourceKept: f.SourceKept}
		for _, u := range f.Uploads {
			sf.Targets = append(sf.Targets, SummaryTarget{RoomPath: paths[u.RoomID], RoomID: u.RoomID, NodeID: u.NodeID,
				FileName: u.Name, Existed: u.Existed, NameTaken: u.NameTaken})
		}
		sum.Files = append(sum.Files, sf)
	}
	st, err := s.Share(ctx, ShareRequest(tr))
	sum.Keys = KeyCounts{Set: st.Set, Skipped: st.Skipped, Failed: st.Failed}
	if err != nil {
		return sum, fmt.Errorf("share (the files are complete; the periodic sweep retries the keys): %w", err)
	}
	return sum, nil
}
