package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/messages"
)

// dracoonFaultMix is the DRACOON fault suite's random mix (the emulator's
// --faults format without the seed): 5% 500, 2% 429 with Retry-After 1 s,
// 1% connection resets, 1% answers lost after the server acted, 2% answers
// cut off midway, and 2 ms latency on every request.
const dracoonFaultMix = "500=0.05,429=0.02,retry-after=1,reset=0.01,after-reset=0.01,cut=0.02,latency=2ms"

// retryCounter is a logrus hook that counts the DRACOON client's retries
// of single requests (its "retrying" warnings).
type retryCounter struct {
	mu sync.Mutex
	n  int
}

// Levels makes retryCounter a hook for every level.
func (r *retryCounter) Levels() []logrus.Level { return logrus.AllLevels }

// Fire counts one retry of a DRACOON request.
func (r *retryCounter) Fire(e *logrus.Entry) error {
	if e.Message == "dracoon request failed, retrying" {
		r.mu.Lock()
		r.n++
		r.mu.Unlock()
	}
	return nil
}

func (r *retryCounter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// faultSeed is RS_FAULT_SEED, or 1.
func faultSeed(t *testing.T) int64 {
	t.Helper()
	v := os.Getenv("RS_FAULT_SEED")
	if v == "" {
		return 1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("RS_FAULT_SEED=%q is not a number", v)
	}
	return n
}

// faultJobs is RS_FAULT_JOBS, or 4: the jobs of each mode of the DRACOON
// fault suite.
func faultJobs(t *testing.T) int {
	t.Helper()
	v := os.Getenv("RS_FAULT_JOBS")
	if v == "" {
		return 4
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		t.Fatalf("RS_FAULT_JOBS=%q is not a count of 1..500", v)
	}
	return n
}

// TestE2E_DRACOON_faults runs whole jobs (several keys from 0 B to 6 MiB,
// two rooms each) through every stage of the running service, in both
// upload modes, against a DRACOON that fails requests at random with the
// mix of dracoonFaultMix, seeded by RS_FAULT_SEED (default 1; the draws
// follow the requests' arrival order, so concurrent stages may meet them
// in another order), and, once per writing route, resets the connection
// before the server acts, loses the answer after it acted and cuts an
// answer off. RS_FAULT_JOBS sets the jobs per mode (4). Every job completes: every key
// is in every room exactly once (by its provenance stamp), every member
// decrypts it, every source is removed, nothing is poisoned. The test logs
// the faults injected by kind and the retries they caused.
func TestE2E_DRACOON_faults(t *testing.T) {
	seed := faultSeed(t)
	t.Logf("RS_FAULT_SEED=%d, faults %s", seed, dracoonFaultMix)
	for _, mode := range []struct {
		name   string
		direct bool
	}{{"proxy", false}, {"s3", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			testDRACOONFaults(t, seed, mode.direct)
		})
	}
}

func testDRACOONFaults(t *testing.T, seed int64, direct bool) {
	start := time.Now()
	faults, err := emulator.ParseFaults(fmt.Sprintf("seed=%d,%s", seed, dracoonFaultMix))
	if err != nil {
		t.Fatal(err)
	}
	e := newE2EMode(t, direct, func(c *emulator.Config) { c.Faults = faults })
	e.cfg.Stages.MaxDeliveries = 12 // the default: faults must not use up a job's deliveries
	retries := &retryCounter{}
	e.log.AddHook(retries)

	// Every writing route loses one answer after acting, and has one
	// answer cut off, whatever the random draws.
	writes := []emulator.FaultRule{
		{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/rooms"},
		{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/uploads"}, // the channel, then (S3) its part URLs
		{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/keys"},
		{Method: http.MethodPost, PathPrefix: "/oauth/token"},
	}
	if direct {
		writes = append(writes, emulator.FaultRule{Method: http.MethodPut, PathPrefix: emulator.S3PathPrefix},
			emulator.FaultRule{Method: http.MethodPut, PathPrefix: "/api/v4/nodes/files/uploads/"})
	} else {
		writes = append(writes, emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/"},
			emulator.FaultRule{Method: http.MethodPut, PathPrefix: "/api/v4/uploads/"})
	}
	for _, r := range writes {
		for _, after := range []emulator.AfterFault{emulator.AfterReset, emulator.AfterCut, emulator.AfterNone} {
			r.After, r.Reset = after, after == emulator.AfterNone // AfterNone: a reset before acting
			e.emu.Emu.InjectFault(r)
		}
	}
	// And a listing meets each status once.
	for _, status := range []int{http.StatusInternalServerError, http.StatusTooManyRequests} {
		e.emu.Emu.InjectFault(emulator.FaultRule{Method: http.MethodGet, PathPrefix: "/api/v4/nodes", Status: status, RetryAfter: time.Second})
	}

	type key struct {
		name  string
		sum   [32]byte
		stamp messages.Stamp
	}
	type job struct {
		meeting int
		keys    []key
	}
	base := 91000
	if direct {
		base = 92000
	}
	e.start()
	layout := [][]int{{0, 1000}, {256 << 10}, {5<<20 + 17, 100 << 10}, {6<<20 + 1}}
	var jobs []job
	for i := range faultJobs(t) {
		sizes := layout[i%len(layout)]
		j := job{meeting: base + i}
		var names []string
		for k, size := range sizes {
			name := fmt.Sprintf("faults/%d-%d.mp4", j.meeting, k)
			sum := e.put(name, size)
			head, err := e.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &e.bucket, Key: &name})
			if err != nil {
				t.Fatal(err)
			}
			j.keys = append(j.keys, key{name: name, sum: sum, stamp: messages.StampOf(e.bucket, name, aws.ToString(head.ETag), "")})
			names = append(names, name)
		}
		jobs = append(jobs, j)
		e.send(e.job(j.meeting, names...))
	}

	rooms := []string{"some room/sub-room", e2eDomain + "/live now"}
	c := e.client(emulatortest.ServiceLogin, emulatortest.ServicePassword, emulatortest.ServiceEncryptionPassword)
	members := map[string]*dracoon.Client{"alice": e.client("alice", "alice-password", "alice-encryption-password"),
		"bob": e.client("bob", "bob-password", "bob-encryption-password")}
	deadline := time.Now().Add(4*time.Minute + time.Duration(len(jobs))*10*time.Second)
	for _, j := range jobs {
		for _, k := range j.keys {
			waitFor(t, time.Until(deadline), func() bool { return e.gone(k.name) })
		}
		for _, p := range rooms {
			var files []dracoon.Node
			waitFor(t, 30*time.Second, func() bool {
				room, found, err := c.LookupRoomPath(context.Background(), emulatortest.ParentRoomID, p)
				if err != nil || !found {
					return false
				}
				files, err = c.FindFiles(context.Background(), room.ID, fmt.Sprintf("_%d_", j.meeting))
				return err == nil
			})
			if len(files) != len(j.keys) {
				t.Errorf("room %s holds %d files of meeting %d, want %d: %+v", p, len(files), j.meeting, len(j.keys), files)
			}
			for _, k := range j.keys {
				var copies []dracoon.Node
				for _, f := range files {
					if k.stamp.Matches(f.Notes) {
						copies = append(copies, f)
					}
				}
				if len(copies) != 1 {
					t.Errorf("room %s holds %d copies of %s, want 1", p, len(copies), k.name)
					continue
				}
				for who, m := range members {
					e.decrypts(m, who, copies[0].ID, k.sum, time.Minute)
				}
			}
		}
	}
	if msgs := e.poisoned(1, 3*time.Second); len(msgs) != 0 {
		t.Errorf("poisoned: %+v", msgs)
	}

	injected := e.emu.Emu.Requests().Faults
	for _, kind := range []string{"status-500", "status-429", "reset", "after-reset", "cut"} {
		if injected[kind] == 0 {
			t.Errorf("no fault %s injected: %v", kind, injected)
		}
	}
	stageRetries := 0.0
	if mfs, err := e.reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "recording_storage_retries_total" {
				for _, m := range mf.GetMetric() {
					stageRetries += m.GetCounter().GetValue()
				}
			}
		}
	}
	if retries.count() == 0 {
		t.Error("the DRACOON client retried no request")
	}
	kinds := make([]string, 0, len(injected))
	total := int64(0)
	for k, n := range injected {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		total += n
	}
	sort.Strings(kinds)
	t.Logf("seed %d, %d jobs, %d requests: %d faults injected (%s); DRACOON request retries %d, stage retries %.0f; %s",
		seed, len(jobs), e.emu.Emu.Requests().Total, total, strings.Join(kinds, " "), retries.count(), stageRetries,
		time.Since(start).Round(time.Second))
}
