package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/messages"
)

// stageSeen finds the messages a run's log (at trace level) shows received,
// by handler.
var stageSeen = regexp.MustCompile(`"handler_name":"(parse|resolve|rooms|transfer|share-transferred|share-requested)"[^\n]*"msg":"Received message"`)

// TestRun_SIGKILL_suite runs `recording-storage run` as a process with a
// batch of jobs (several keys from empty to a few MiB, two rooms each) and
// kills its process group with SIGKILL at seeded moments, restarting it
// each time; the DRACOON emulator restarts once on its persisted state.
// After every kill no source is gone unless every room holds a copy of its
// version (by provenance); at the end every file is in every room exactly
// once and decrypts, every source is gone and nothing is poisoned.
// RS_KILL_SEED, RS_KILL_COUNT and RS_KILL_SIZE_MIB change the seed, the
// number of kills (10) and the largest recording (16 MiB); make
// reliability runs a longer suite.
func TestRun_SIGKILL_suite(t *testing.T) {
	seed, kills, largest := envInt(t, "RS_KILL_SEED", 1), envInt(t, "RS_KILL_COUNT", 10), envInt(t, "RS_KILL_SIZE_MIB", 16)
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	f := newRunFixture(t, 500*time.Millisecond, map[string]string{"RS_STAGES_VISIBILITY_TIMEOUT": "10s",
		"RS_LOGGER_LEVEL": "trace", "RS_STAGES_TRANSFER_WORKERS": "2"})
	// Rooms and lookups take a while too, so that kills land in every stage.
	f.inject(emulator.FaultRule{Method: "POST", PathPrefix: "/api/v4/nodes/rooms", Latency: 250 * time.Millisecond, Times: 1 << 30})
	f.inject(emulator.FaultRule{Method: "GET", PathPrefix: "/api/v4/nodes", Latency: 50 * time.Millisecond, Times: 1 << 30})
	type job struct {
		key     string
		meeting int // its file names hold "_<meeting>_"
		sum     [32]byte
		stamp   messages.Stamp
		rooms   []string
	}
	var jobs []job
	sizes := []int{0, 200 << 10, 5<<20 + 7, largest<<20 + 3}
	for i := range kills {
		size := sizes[i%len(sizes)]
		j := job{key: fmt.Sprintf("kill/%d.mp4", i), meeting: 7000 + i, rooms: []string{fmt.Sprintf("kill-%s/%d/a", f.id, i), fmt.Sprintf("kill-%s/%d/b", f.id, i)}}
		var etag string
		j.sum, etag = f.put(j.key, size)
		j.stamp = messages.StampOf(f.bucket, j.key, etag, "")
		jobs = append(jobs, j)
	}
	svc := f.service()
	// holds reports whether every room of j holds a copy of its version.
	holds := func(j job) bool {
		for _, room := range j.rooms {
			files, err := f.roomFiles(svc, room, fmt.Sprintf("_%d_", j.meeting))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, fl := range files {
				if j.stamp.Matches(fl.Notes) {
					n++
				}
			}
			if n == 0 {
				return false
			}
		}
		return true
	}

	delays := []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, 1200 * time.Millisecond, 2500 * time.Millisecond, 4 * time.Second}
	stages := map[string]int{}
	for k := 1; k <= kills; k++ {
		if k == kills/2+1 {
			f.restartEmulator()
			svc = f.service()
		}
		// One more job before each start, so that every run has work of
		// every stage in flight.
		f.send(jobs[k-1].meeting, jobs[k-1].key, jobs[k-1].rooms...)
		cmd, stderr := f.start()
		time.Sleep(delays[rng.IntN(len(delays))] + time.Duration(rng.IntN(500))*time.Millisecond)
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// The last stage the log shows receiving a message (the sweep's
		// request, made at every start, only when nothing else was).
		last := "(none yet)"
		for _, m := range stageSeen.FindAllStringSubmatch(stderr.String(), -1) {
			if m[1] != "share-requested" || last == "(none yet)" {
				last = m[1]
			}
		}
		stages[last]++
		for _, j := range jobs {
			if f.gone(j.key) && !holds(j) {
				t.Fatalf("kill %d: s3://%s/%s is gone but a room lacks its copy", k, f.bucket, j.key)
			}
		}
	}
	t.Logf("%d kills (seed %d), last stage at work when killed: %v; upload channels left open: %d", kills, seed, stages, f.emu.Emu.OpenUploads())

	_, stderr := f.start()
	deadline := time.Now().Add(3 * time.Minute)
	for _, j := range jobs {
		for !f.gone(j.key) || !holds(j) {
			if time.Now().After(deadline) {
				t.Fatalf("s3://%s/%s not done within 3 minutes of the last start:\n%.4000s", f.bucket, j.key, stderr)
			}
			time.Sleep(500 * time.Millisecond)
		}
		for _, room := range j.rooms {
			files, err := f.roomFiles(svc, room, fmt.Sprintf("_%d_", j.meeting))
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 1 || !f.decrypts(svc, files[0].ID, j.sum) {
				t.Fatalf("room %s holds %d files (want one that decrypts to its recording): %+v", room, len(files), files)
			}
		}
	}
	if msgs := f.poisoned(); len(msgs) != 0 {
		t.Fatalf("poisoned: %+v", msgs)
	}
}

// envInt reads an integer setting of a test, or def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q is not a count", name, v)
	}
	return n
}
