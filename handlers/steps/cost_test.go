package steps_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/infra/setup"
	"github.com/recording-storage/recording-storage/messages"
)

// costDomain is the instance of the cost tests: the fast seed's service
// account, whose parent room has two other members (alice and bob).
const costDomain = "cost.recording-storage.test"

// costEnv is a steps.Service on the stack's S3 and an emulator of its own,
// whose requests the tests count.
type costEnv struct {
	t      *testing.T
	emu    *emulatortest.Server
	acct   conf.DracoonAccount
	steps  *steps.Service
	s3     *s3.Client
	bucket string
}

// newCostEnv starts an emulator (S3 direct uploads when direct; no S3
// finish delay, so that each completion is polled once) with the fast seed
// and extraRooms empty rooms below the parent room.
func newCostEnv(t *testing.T, direct bool, extraRooms int) *costEnv {
	t.Helper()
	cfg := awstest.Config(t)
	cfg.S3.ChunkSize = 5 << 20
	seed := emulatortest.FastSeed(t, direct)
	parent := int64(emulatortest.ParentRoomID)
	for i := range extraRooms {
		seed.Rooms = append(seed.Rooms, emulator.SeedRoom{ID: int64(1000 + i), Name: fmt.Sprintf("other %d", i),
			ParentID: &parent, Encrypted: true})
	}
	emu := emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: seed, S3FinishDelay: -1})
	acct := conf.DracoonAccount{BaseURL: emu.URL, Login: emulatortest.ServiceLogin, Password: emulatortest.ServicePassword,
		EncryptionPassword: emulatortest.ServiceEncryptionPassword, ClientID: emulatortest.ClientID,
		ClientSecret: emulatortest.ClientSecret, ParentRoomID: emulatortest.ParentRoomID}
	client := awstest.S3(t, cfg.AWS)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	svc := steps.New(cfg, instances{costDomain: {Storage: "dracoon", Dracoon: acct}}, s3source.New(client, s3source.Options{}), setup.Accounts(cfg, log), nil, log)
	return &costEnv{t: t, emu: emu, acct: acct, steps: svc, s3: client, bucket: awstest.Bucket(t, client, "cost")}
}

// job stores a 256 KiB recording as key and runs its job to the rooms one
// and two below the parent room, sharing its keys, as the pipeline's stages
// do one after the other.
func (e *costEnv) job(meetingID int64, key string) {
	e.t.Helper()
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	ctx := context.Background()
	if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &e.bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		e.t.Fatal(err)
	}
	job, err := messages.NewJob(costDomain, e.bucket, []string{key},
		[]messages.TargetSpec{{Path: "cost/one"}, {Path: "cost/two"}}, meetingID, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	sum, err := e.steps.Run(ctx, job, steps.RunOptions{RemoveSource: true})
	if err != nil {
		e.t.Fatalf("job %d: %v", meetingID, err)
	}
	if sum.Keys.Set != 4 {
		e.t.Fatalf("job %d: %d keys set, want 4 (alice and bob, two rooms)", meetingID, sum.Keys.Set)
	}
}

// TestCost_job: a one-key job to two existing rooms costs a fixed number
// of DRACOON requests of each kind, counted by the emulator; logins and key
// pair unlocks happen once per process, whatever the number of jobs.
func TestCost_job(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		direct bool
		want   map[string]int64 // per job, by route class, status polls aside
		polls  int64            // most status polls per job: two per room
	}{
		{name: "s3_direct", direct: true, polls: 4, want: map[string]int64{
			emulator.ClassNodeList:      2, // the name family's files, per room
			emulator.ClassUploadChannel: 2,
			emulator.ClassPartURLs:      2,
			emulator.ClassPartPut:       2,
			emulator.ClassCompletion:    2,
			emulator.ClassMissingKeys:   2, // once per file
			emulator.ClassKeyUpload:     1, // the keys of both files at once
		}},
		{name: "proxy", want: map[string]int64{
			emulator.ClassNodeList:      2,
			emulator.ClassUploadChannel: 2,
			emulator.ClassPartPut:       2,
			emulator.ClassCompletion:    2,
			emulator.ClassMissingKeys:   2,
			emulator.ClassKeyUpload:     1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newCostEnv(t, tt.direct, 0)
			e.job(1, "first.mp4") // creates the rooms, logs in, unlocks the key pair
			const jobs = 3
			for i := range jobs {
				before := e.emu.Emu.Requests()
				e.job(int64(10+i), fmt.Sprintf("rec-%d.mp4", i))
				got := e.emu.Emu.Requests().Sub(before)
				classes := got.Classes()
				var want int64
				for _, n := range tt.want {
					want += n
				}
				// The emulator assembles an upload as soon as it is
				// completed, so the first poll of each room (after
				// 100 ms) finds it done; a loaded machine may take one
				// more (after 400 ms).
				polls := classes[emulator.ClassStatusPoll]
				if polls < tt.polls/2 || polls > tt.polls || got.Total != want+polls || got.Total > 18 {
					t.Errorf("job %d: %d requests, want %d and %d to %d status polls (at most 18):\n%s",
						i, got.Total, want, tt.polls/2, tt.polls, got)
				}
				for c, n := range tt.want {
					if classes[c] != n {
						t.Errorf("job %d: %d %s requests, want %d", i, classes[c], c, n)
					}
				}
			}
			all := e.emu.Emu.Requests().Classes()
			if all[emulator.ClassLogin] != 1 || all[emulator.ClassKeyPair] != 1 {
				t.Errorf("%d jobs: %d logins and %d key pair fetches (each one unlock), want 1 of each",
					jobs+1, all[emulator.ClassLogin], all[emulator.ClassKeyPair])
			}
		})
	}
}

// TestCost_room_gone_is_resolved_again: a job into a room whose cached id
// is gone resolves the room's path again (creating the room anew) instead
// of failing.
func TestCost_room_gone_is_resolved_again(t *testing.T) {
	t.Parallel()
	e := newCostEnv(t, true, 0)
	e.job(1, "first.mp4")
	c := e.client()
	ctx := context.Background()
	room, found, err := c.LookupRoomPath(ctx, emulatortest.ParentRoomID, "cost/one")
	if err != nil || !found {
		t.Fatalf("room cost/one: found %t, %v", found, err)
	}
	e.emu.Emu.DeleteNode(room.ID)
	e.job(2, "second.mp4")
	again, found, err := c.LookupRoomPath(ctx, emulatortest.ParentRoomID, "cost/one")
	if err != nil || !found || again.ID == room.ID {
		t.Fatalf("room cost/one after the job: %+v, found %t, %v; want a new room", again, found, err)
	}
	if _, found, err := c.FindFile(ctx, again.ID, messages.FileNames(mustJob(t, e.bucket, "second.mp4", 2))["second.mp4"]); err != nil || !found {
		t.Fatalf("the second job's file is not in the new room: found %t, %v", found, err)
	}
}

func mustJob(t *testing.T, bucket, key string, meetingID int64) *messages.Job {
	t.Helper()
	job, err := messages.NewJob(costDomain, bucket, []string{key}, []messages.TargetSpec{{Path: "cost/one"}}, meetingID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// upload stores a small recording in the bucket for each of names and has
// the transfer engine bring them into room, as the service account, under
// those names; it returns the files' ids in the order of names.
func (e *costEnv) upload(room int64, names ...string) []int64 {
	e.t.Helper()
	ctx := context.Background()
	src := s3source.New(e.s3, s3source.Options{})
	files := make([]transfer.File, len(names))
	for i, name := range names {
		key := "uploads/" + name
		if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &e.bucket, Key: &key,
			Body: strings.NewReader("recording " + name)}); err != nil {
			e.t.Fatal(err)
		}
		obj, err := src.Head(ctx, e.bucket, key)
		if err != nil {
			e.t.Fatal(err)
		}
		files[i] = transfer.File{Object: obj, Name: name}
	}
	res, err := transfer.New(src, transfer.Client(e.client()), transfer.Options{}).Transfer(ctx, transfer.Job{ID: "upload", Files: files,
		Targets: []transfer.Target{{RoomID: room, Path: strconv.FormatInt(room, 10)}}})
	if err != nil {
		e.t.Fatal(err)
	}
	ids := make([]int64, len(res.Files))
	for i, f := range res.Files {
		ids[i] = f.Uploads[0].NodeID
	}
	return ids
}

// client returns a client of its own for the service account.
func (e *costEnv) client() *dracoon.Client {
	e.t.Helper()
	c, err := dracoon.New(dracoon.NewConfig(conf.Dracoon{}, e.acct, 5<<20, nil))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestCost_sweep: a sweep asks for the account's missing keys account-wide:
// with 1,000 rooms and nothing missing it costs a login and one listing;
// with missing keys its requests grow with the pages of pairs, not with the
// rooms.
func TestCost_sweep(t *testing.T) {
	t.Parallel()
	e := newCostEnv(t, false, 1000)
	ctx := context.Background()
	sweep := messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: costDomain, Sweep: true}
	before := e.emu.Emu.Requests()
	st, err := e.steps.Share(ctx, sweep)
	if err != nil || st != (messages.KeyStats{}) {
		t.Fatalf("sweep: %+v, %v", st, err)
	}
	got := e.emu.Emu.Requests().Sub(before)
	if classes := got.Classes(); got.Total > 5 || classes[emulator.ClassMissingKeys] != 1 || classes[emulator.ClassLogin] != 1 {
		t.Errorf("sweep of 1,000 rooms with nothing missing: want a login and one listing (at most 5 requests), got\n%s", got)
	}

	// 60 files in one of the rooms, each lacking alice's and bob's keys:
	// 120 pairs, two pages of at most 100.
	names := make([]string, 60)
	for i := range names {
		names[i] = fmt.Sprintf("f%d.bin", i)
	}
	e.upload(1000, names...)
	before = e.emu.Emu.Requests()
	st, err = e.steps.Share(ctx, sweep)
	if err != nil || st != (messages.KeyStats{Set: 120}) {
		t.Fatalf("sweep: %+v, %v; want 120 set", st, err)
	}
	got = e.emu.Emu.Requests().Sub(before)
	classes := got.Classes()
	// The first keys to hand out unlock the key pair (one fetch).
	if classes[emulator.ClassMissingKeys] != 2 || classes[emulator.ClassKeyUpload] != 2 || classes[emulator.ClassKeyPair] != 1 || got.Total != 5 {
		t.Errorf("sweep of 120 pairs: want 2 listings, 2 key uploads and a key pair fetch, got\n%s", got)
	}
}

// TestShare_sweep_counts_keys_it_cannot_store: keys a sweep cannot store
// are counted as failed and the sweep succeeds (the next one lists them
// again), where a job's share fails and is retried.
func TestShare_sweep_counts_keys_it_cannot_store(t *testing.T) {
	t.Parallel()
	e := newCostEnv(t, false, 0)
	ctx := context.Background()
	fileID := e.upload(emulatortest.ParentRoomID, "a.bin")[0]
	// Every key upload refused: the batch of alice's and bob's keys, then
	// each of them alone.
	refuse := func() {
		e.emu.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/keys",
			Status: http.StatusBadRequest, Times: 3})
	}
	sweep := messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: costDomain, Sweep: true}
	refuse()
	if st, err := e.steps.Share(ctx, sweep); err != nil || st != (messages.KeyStats{Failed: 2}) {
		t.Fatalf("sweep with every key refused: %+v, %v; want 2 failed and no error", st, err)
	}
	refuse()
	job := messages.ShareRequest{Version: messages.ShareRequestVersion, Instance: costDomain, FileIDs: []int64{fileID}}
	if st, err := e.steps.Share(ctx, job); !errors.Is(err, dracoon.ErrIncomplete) || st.Failed != 2 {
		t.Fatalf("a job's share with every key refused: %+v, %v; want 2 failed and ErrIncomplete", st, err)
	}
	if st, err := e.steps.Share(ctx, sweep); err != nil || st != (messages.KeyStats{Set: 2}) {
		t.Fatalf("the next sweep: %+v, %v; want 2 set", st, err)
	}
}
