package steps_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/messages"
)

// TestResolve_fakes: Resolve's decisions over fake S3 and DRACOON: the
// instance's rules for the meeting type (by id or any, with $instance and
// $meetingType) merged with the job's own targets; the allowed sources;
// every source looked up; a missing source marked gone only when every
// target room holds a copy by its stamp, permanent naming the rooms that
// lack one otherwise, and of the lookup's class when the rooms cannot be
// asked.
func TestResolve_fakes(t *testing.T) {
	any := conf.MeetingTypeID{Any: true}
	rules := conf.TargetRules{
		{MeetingTypeID: conf.MeetingTypeID{ID: 5}, CopyTo: []conf.TargetSpec{{Path: "$instance/$meetingType"}}},
		{MeetingTypeID: conf.MeetingTypeID{ID: 6}, CopyTo: []conf.TargetSpec{{Path: "other"}}},
		{MeetingTypeID: any, CopyTo: []conf.TargetSpec{{Path: "all"}}},
	}
	objects := fakeObjects{objects: map[string]s3source.Object{
		"rec/a.mp4": {Bucket: "b", Key: "rec/a.mp4", Size: 10, ETag: `"etag"`, VersionID: "v1"},
	}, failHead: map[string]error{"rec/slow.mp4": errclass.AsTransient(errors.New("S3 answered 503"))}}
	names := func(job *messages.Job, key string) string { return messages.FileNames(job)[key] }
	tests := []struct {
		name      string
		sources   []conf.SourceRule
		typeID    int64
		targets   []string // the job's own
		keys      []string
		rooms     map[string]int64
		files     func(job *messages.Job) map[int64][]dracoon.Node
		roomsErr  error
		want      []string // target paths
		wantGone  []bool
		wantClass string // of the error; "": none
		wantErr   string // in the error
	}{
		{name: "rules merged", typeID: 5, targets: []string{"own"}, keys: []string{"rec/a.mp4"},
			want: []string{"own", "fake.example/Consult", "all"}, wantGone: []bool{false}},
		{name: "any only", typeID: 7, keys: []string{"rec/a.mp4"}, want: []string{"all"}, wantGone: []bool{false}},
		{name: "source refused", sources: []conf.SourceRule{{Bucket: "b", Prefix: "other/"}}, typeID: 5, keys: []string{"rec/a.mp4"},
			wantClass: "permanent", wantErr: "s3://b/rec/a.mp4"},
		{name: "source allowed", sources: []conf.SourceRule{{Bucket: "b", Prefix: "rec/"}}, typeID: 7, keys: []string{"rec/a.mp4"},
			want: []string{"all"}, wantGone: []bool{false}},
		{name: "gone, copies everywhere", typeID: 7, targets: []string{"own"}, keys: []string{"rec/gone.mp4"},
			rooms: map[string]int64{"own": 1, "all": 2},
			files: func(job *messages.Job) map[int64][]dracoon.Node {
				n := names(job, "rec/gone.mp4")
				return map[int64][]dracoon.Node{1: {stamped(11, n, "b", "rec/gone.mp4")}, 2: {stamped(12, n, "b", "rec/gone.mp4")}}
			},
			want: []string{"own", "all"}, wantGone: []bool{true}},
		{name: "gone, a room lacks it", typeID: 7, targets: []string{"own"}, keys: []string{"rec/gone.mp4"},
			rooms: map[string]int64{"own": 1, "all": 2},
			files: func(job *messages.Job) map[int64][]dracoon.Node {
				n := names(job, "rec/gone.mp4")
				return map[int64][]dracoon.Node{1: {stamped(11, n, "b", "rec/gone.mp4")}, 2: {stamped(12, n, "b", "rec/other.mp4")}}
			},
			wantClass: "permanent", wantErr: `rooms "all" hold no copy`},
		{name: "gone, a room missing", typeID: 7, keys: []string{"rec/gone.mp4"}, rooms: map[string]int64{},
			wantClass: "permanent", wantErr: `rooms "all" hold no copy`},
		{name: "gone, rooms unreachable", typeID: 7, keys: []string{"rec/gone.mp4"},
			roomsErr: errclass.AsTransient(errors.New("DRACOON answered 502")), wantClass: "transient", wantErr: "cannot tell"},
		{name: "lookup fails", typeID: 7, keys: []string{"rec/slow.mp4"}, wantClass: "transient", wantErr: "503"},
		{name: "no target", typeID: 7, keys: []string{"rec/a.mp4"}, wantClass: "permanent", wantErr: "no target room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := conf.Instance{Storage: "dracoon", Sources: tt.sources, Dracoon: conf.DracoonAccount{ParentRoomID: 3, Targets: rules}}
			if tt.name == "no target" {
				inst.Dracoon.Targets = nil
			}
			job := fakeJob(t, tt.typeID, tt.targets, tt.keys...)
			acct := &fakeAccount{rooms: tt.rooms, err: tt.roomsErr}
			if tt.files != nil {
				acct.files = tt.files(job)
			}
			rj, err := newFakeService(inst, objects, acct).Resolve(context.Background(), job, steps.ResolveOptions{InstanceRules: true})
			if got := errorClass(err); got != tt.wantClass || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v (class %q), want class %q containing %q", err, got, tt.wantClass, tt.wantErr)
			}
			if err != nil {
				return
			}
			var paths []string
			for _, tg := range rj.Targets {
				paths = append(paths, tg.Path)
			}
			var gone []bool
			for _, s := range rj.Sources {
				gone = append(gone, s.Gone)
				if !s.Gone && (s.Size != 10 || s.ETag != `"etag"` || s.VersionID != "v1") {
					t.Errorf("source %+v lacks what S3 said", s)
				}
			}
			if !slices.Equal(paths, tt.want) || !slices.Equal(gone, tt.wantGone) || rj.ParentRoomID != 3 {
				t.Errorf("targets %v, gone %v, parent %d; want %v, %v, 3", paths, gone, rj.ParentRoomID, tt.want, tt.wantGone)
			}
		})
	}
}

// TestEnsureRooms_fakes: every target room is found or created in the
// targets' order, below the parent room; a failure comes back with its
// class.
func TestEnsureRooms_fakes(t *testing.T) {
	job := fakeJob(t, 7, []string{"x/y", "z"}, "rec/a.mp4")
	rj := messages.ResolvedJob{Version: messages.ResolvedJobVersion, Job: *job, ParentRoomID: 3, Targets: job.Targets}
	acct := &fakeAccount{rooms: map[string]int64{"z": 8}}
	svc := newFakeService(conf.Instance{Storage: "dracoon"}, fakeObjects{}, acct)
	rr, err := svc.EnsureRooms(context.Background(), rj)
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Rooms) != 2 || rr.Rooms[0].Path != "x/y" || rr.Rooms[1].RoomID != 8 || !slices.Equal(acct.ensured, []string{"x/y", "z"}) {
		t.Errorf("rooms %+v, ensured %v", rr.Rooms, acct.ensured)
	}
	acct.err = errclass.AsPermanent(dracoon.ErrRoomNotEncrypted)
	if _, err := svc.EnsureRooms(context.Background(), rj); !errors.Is(err, dracoon.ErrRoomNotEncrypted) || !errclass.IsPermanent(err) {
		t.Errorf("error %v, want the permanent ErrRoomNotEncrypted", err)
	}
}

// TestShare_fakes: the files of a request are shared in one distribution,
// each room in its own, a sweep account-wide; counts add up; an
// incomplete sweep succeeds (the next one tries again) but an incomplete
// file share fails.
func TestShare_fakes(t *testing.T) {
	tests := []struct {
		name       string
		req        messages.ShareRequest
		keysErr    error
		wantScopes [][]dracoon.KeyScope
		wantStats  messages.KeyStats
		wantErr    bool
	}{
		{name: "files and rooms", req: messages.ShareRequest{FileIDs: []int64{1, 2}, RoomIDs: []int64{5, 6}},
			wantScopes: [][]dracoon.KeyScope{{{FileID: 1}, {FileID: 2}}, {{RoomID: 5}}, {{RoomID: 6}}},
			wantStats:  messages.KeyStats{Set: 3, Skipped: 3}},
		{name: "sweep", req: messages.ShareRequest{Sweep: true},
			wantScopes: [][]dracoon.KeyScope{{{Account: true}}}, wantStats: messages.KeyStats{Set: 1, Skipped: 1}},
		{name: "sweep incomplete", req: messages.ShareRequest{Sweep: true}, keysErr: dracoon.ErrIncomplete,
			wantScopes: [][]dracoon.KeyScope{{{Account: true}}}, wantStats: messages.KeyStats{Set: 1, Skipped: 1}},
		{name: "files incomplete", req: messages.ShareRequest{FileIDs: []int64{1}}, keysErr: dracoon.ErrIncomplete,
			wantScopes: [][]dracoon.KeyScope{{{FileID: 1}}}, wantStats: messages.KeyStats{Set: 1, Skipped: 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := &fakeAccount{stats: messages.KeyStats{Set: 1, Skipped: 1}, keysErr: tt.keysErr}
			tt.req.Version, tt.req.Instance = messages.ShareRequestVersion, "fake.example"
			st, err := newFakeService(conf.Instance{Storage: "dracoon"}, fakeObjects{}, acct).Share(context.Background(), tt.req)
			if (err != nil) != tt.wantErr || st != tt.wantStats || !slices.EqualFunc(acct.scopes, tt.wantScopes, slices.Equal) {
				t.Errorf("Share = %+v, %v, scopes %v; want %+v, error %v, scopes %v", st, err, acct.scopes, tt.wantStats, tt.wantErr, tt.wantScopes)
			}
		})
	}
}

// TestTransfer_gone_sources_fakes: a job whose sources are all gone
// (resolve found their copies) is reported with the copies found in each
// room, uploading nothing; a room that lacks one fails permanently, naming
// it.
func TestTransfer_gone_sources_fakes(t *testing.T) {
	job := fakeJob(t, 7, nil, "rec/gone.mp4")
	name := messages.FileNames(job)["rec/gone.mp4"]
	rr := messages.RoomsReady{Version: messages.RoomsReadyVersion, Job: *job,
		Rooms:   []messages.TargetRoom{{Target: messages.Target{Path: "a"}, RoomID: 1}, {Target: messages.Target{Path: "b"}, RoomID: 2}},
		Sources: []messages.SourceObject{{Key: "rec/gone.mp4", Name: name, Size: 10, Gone: true}}}
	acct := &fakeAccount{files: map[int64][]dracoon.Node{1: {stamped(11, name, "b", "rec/gone.mp4")}, 2: {stamped(12, name, "b", "rec/gone.mp4")}}}
	svc := newFakeService(conf.Instance{Storage: "dracoon"}, fakeObjects{}, acct)
	out, err := svc.Transfer(context.Background(), rr, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Files) != 1 || !out.SourceDeleted || len(out.Files[0].Uploads) != 2 || out.Files[0].Uploads[1].NodeID != 12 || !out.Files[0].Uploads[0].Existed {
		t.Errorf("Transferred %+v", out)
	}
	acct.files[2] = nil
	_, err = svc.Transfer(context.Background(), rr, true)
	if !errclass.IsPermanent(err) || !strings.Contains(err.Error(), `room "b" holds no copy`) {
		t.Errorf("error %v, want a permanent one naming room b", err)
	}
}
