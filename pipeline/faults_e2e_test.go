package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
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

	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/netsim"
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
	e := newE2EWith(t, direct, e2eOptions{emulator: func(c *emulator.Config) { c.Faults = faults }})
	e.cfg.Stages.MaxDeliveries = 12 // the default: faults must not use up a job's deliveries
	retries := &retryCounter{}
	e.log.AddHook(retries)
	e.start()

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

	base := 91000
	if direct {
		base = 92000
	}
	jobs := e.sendFaultJobs(base, faultJobs(t))
	e.checkFaultJobs(jobs, 4*time.Minute+time.Duration(len(jobs))*10*time.Second)

	injected := e.emu.Emu.Requests().Faults
	for _, kind := range []string{"status-500", "status-429", "reset", "after-reset", "cut"} {
		if injected[kind] == 0 {
			t.Errorf("no fault %s injected: %v", kind, injected)
		}
	}
	stageRetries := e.stageRetries()
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

// stageRetries sums recording_storage_retries_total of the last service
// started: the handlers' in-process retries.
func (e *e2e) stageRetries() float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "recording_storage_retries_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// faultKey is one source of a fault suite's job.
type faultKey struct {
	name  string
	sum   [32]byte
	stamp messages.Stamp
}

// faultJob is one job of a fault suite: its meeting and its sources.
type faultJob struct {
	meeting int
	keys    []faultKey
}

// faultRooms are the rooms every job goes to: the example message's target
// and the instance rule's.
var faultRooms = [...]string{"some room/sub-room", e2eDomain + "/live now"}

// sendFaultJobs stores the sources of n jobs (meetings base, base+1, …;
// one or two keys each, of 0 B to 6 MiB) and sends the jobs.
func (e *e2e) sendFaultJobs(base, n int) []faultJob {
	e.t.Helper()
	layout := [][]int{{0, 1000}, {256 << 10}, {5<<20 + 17, 100 << 10}, {6<<20 + 1}}
	var jobs []faultJob
	for i := range n {
		j := faultJob{meeting: base + i}
		var names []string
		for k, size := range layout[i%len(layout)] {
			name := fmt.Sprintf("faults/%d-%d.mp4", j.meeting, k)
			sum := e.put(name, size)
			head, err := e.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &e.bucket, Key: &name})
			if err != nil {
				e.t.Fatal(err)
			}
			j.keys = append(j.keys, faultKey{name: name, sum: sum, stamp: messages.StampOf(e.bucket, name, aws.ToString(head.ETag), "")})
			names = append(names, name)
		}
		jobs = append(jobs, j)
		e.send(e.job(j.meeting, names...))
	}
	return jobs
}

// roomCopies returns, per key of j, the files of room that carry its
// stamp, and the number of the room's files of j's meeting; ok is false
// when the room could not be listed (yet).
func (e *e2e) roomCopies(c *dracoon.Client, room string, j faultJob) (copies map[string][]dracoon.Node, files int, ok bool) {
	r, found, err := c.LookupRoomPath(context.Background(), emulatortest.ParentRoomID, room)
	if err != nil || !found {
		return nil, 0, false
	}
	list, err := c.FindFiles(context.Background(), r.ID, fmt.Sprintf("_%d_", j.meeting))
	if err != nil {
		return nil, 0, false
	}
	copies = map[string][]dracoon.Node{}
	for _, k := range j.keys {
		for _, f := range list {
			if k.stamp.Matches(f.Notes) {
				copies[k.name] = append(copies[k.name], f)
			}
		}
	}
	return copies, len(list), true
}

// checkFaultJobs waits up to timeout for every source of jobs to be
// removed, failing at once if one is gone while a room lacks its copy;
// then checks that every room holds exactly one copy of every source (by
// its stamp) and no other file of the meeting, that every member decrypts
// each copy, and that nothing is poisoned.
func (e *e2e) checkFaultJobs(jobs []faultJob, timeout time.Duration) {
	e.t.Helper()
	c := e.client(emulatortest.ServiceLogin, emulatortest.ServicePassword, emulatortest.ServiceEncryptionPassword)
	deadline := time.Now().Add(timeout)
	held := map[string]bool{} // sources gone and found in every room
	for {
		pending := 0
		for _, j := range jobs {
			for _, k := range j.keys {
				if held[k.name] {
					continue
				}
				if !e.gone(k.name) {
					pending++
					continue
				}
				// Gone: every room must hold it already (files are never
				// removed, so a copy missing now was missing at the delete).
				all := true
				for _, room := range faultRooms {
					copies, _, ok := e.roomCopies(c, room, j)
					if !ok {
						all = false // cannot tell yet; ask again
						break
					}
					if len(copies[k.name]) == 0 {
						e.t.Fatalf("s3://%s/%s is gone but room %s lacks its copy", e.bucket, k.name, room)
					}
				}
				if !all {
					pending++
					continue
				}
				held[k.name] = true
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d sources not transferred and removed within %s", pending, timeout)
		}
		time.Sleep(300 * time.Millisecond)
	}
	members := map[string]*dracoon.Client{"alice": e.client("alice", "alice-password", "alice-encryption-password"),
		"bob": e.client("bob", "bob-password", "bob-encryption-password")}
	for _, j := range jobs {
		for _, room := range faultRooms {
			var (
				copies map[string][]dracoon.Node
				files  int
			)
			waitFor(e.t, 30*time.Second, func() bool {
				var ok bool
				copies, files, ok = e.roomCopies(c, room, j)
				return ok
			})
			if files != len(j.keys) {
				e.t.Errorf("room %s holds %d files of meeting %d, want %d", room, files, j.meeting, len(j.keys))
			}
			for _, k := range j.keys {
				if len(copies[k.name]) != 1 {
					e.t.Errorf("room %s holds %d copies of %s, want 1", room, len(copies[k.name]), k.name)
					continue
				}
				for who, m := range members {
					e.decrypts(m, who, copies[k.name][0].ID, k.sum, time.Minute)
				}
			}
		}
	}
	if msgs := e.poisoned(1, 3*time.Second); len(msgs) != 0 {
		e.t.Errorf("poisoned: %+v", msgs)
	}
}

// s3FaultMix is the S3 fault suite's random faults on the service's S3
// connections (netsim): 10% reset and 5% stalled within their first 4 MiB
// of answers.
var s3FaultMix = netsim.Faults{ResetRate: 0.10, StallRate: 0.05, Within: 4 << 20}

// TestE2E_S3_faults runs whole jobs through every stage of the running
// service with the service's S3 traffic (HEAD, ranged GETs, deletes) sent
// through a netsim link to the stack's versitygw that resets connections
// mid-stream, stops answers from flowing (the s3.stall_timeout watchdog,
// 1 s here, must give up on them and read again) and refuses connections
// for two seconds; seeded by RS_FAULT_SEED, sized by RS_FAULT_JOBS. Every
// job completes, no source is removed before every room holds its copy,
// nothing is poisoned.
func TestE2E_S3_faults(t *testing.T) {
	start := time.Now()
	seed := faultSeed(t)
	u, err := url.Parse(awstest.Config(t).AWS.Endpoints.S3)
	if err != nil || u.Host == "" {
		t.Fatalf("the stack's S3 endpoint %q: %v", awstest.Config(t).AWS.Endpoints.S3, err)
	}
	link, err := netsim.Start("127.0.0.1:0", u.Host, netsim.Profile{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = link.Close() })
	mix := s3FaultMix
	mix.Seed = seed
	if err := link.SetFaults(mix); err != nil {
		t.Fatal(err)
	}
	// Whatever the draws: a connection is reset after 3 MiB of answers and
	// another stalls after 1 MiB, within ranged reads.
	link.ResetNext(3 << 20)
	link.StallNext(1 << 20)
	t.Logf("RS_FAULT_SEED=%d, faults %+v", seed, mix)

	const stall = time.Second
	e := newE2EWith(t, true, e2eOptions{sourceS3: link.URL(), stall: stall})
	e.cfg.Stages.MaxDeliveries = 12
	e.cfg.S3.StallTimeout = stall
	e.start()
	// S3 is down as the jobs arrive: the first HEADs are refused.
	link.Refuse(2 * time.Second)
	jobs := e.sendFaultJobs(93000, faultJobs(t))
	e.checkFaultJobs(jobs, 4*time.Minute+time.Duration(len(jobs))*10*time.Second)

	got := link.Injected()
	if got.Resets == 0 || got.Stalls == 0 || got.Refusal != 1 {
		t.Errorf("faults injected %v, want resets, stalls and one refusal", got)
	}
	t.Logf("seed %d, %d jobs: S3 faults injected %v, stage retries %.0f; %s", seed, len(jobs), got, e.stageRetries(),
		time.Since(start).Round(time.Second))
}
