package transfer_test

// The jobs suite of BenchmarkTransfer (RS_BENCH_SUITES=jobs runs it alone):
// what the work around one transfer costs when there are many.
//
//   - jobs: RS_BENCH_JOBS jobs (default 200) of one RS_BENCH_JOB_SIZE key
//     (default 256 KiB) to two existing rooms each, sent at once to the
//     pipeline (memory transport, every stage but the sweep, in this
//     process) with stages.transfer.workers 1 and then 8
//     (RS_BENCH_JOB_WORKERS), in each network profile. The emulator is
//     the transfer suite's (its own process, S3 direct, content discarded)
//     with DRACOON's way of assembling S3 uploads: a completed upload is
//     "finishing" for emulator.DefaultS3FinishDelay before it is "done".
//     jobs/s counts from the first message sent to the last job announced
//     on recording-transferred; the requests are those the emulator counted
//     (emulator.RequestsPath) from the first message until the share stage
//     has handled every job, by route class, per job.
//   - sweeps: the sweep of an instance whose parent room holds
//     RS_BENCH_SWEEP_ROOMS rooms (default 1,000) with nothing missing, and
//     of one whose room lacks RS_BENCH_SWEEP_PAIRS (user, file) keys
//     (default 10,000: 100 users x 100 files), counted the same way, with
//     the growth of this process's heap while the second runs.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
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
	"github.com/recording-storage/recording-storage/pipeline"
)

// jobsDomain is the instance of the jobs suite: the fast seed's account.
const jobsDomain = "jobs.recording-storage.test"

// jobsSettings are the knobs of the jobs suite.
type jobsSettings struct {
	jobs                    int
	size                    int64
	workers                 []int
	sweepRooms, sweepPairUs int // rooms; users (and files) of the pairs sweep: pairs = users^2
}

func loadJobsSettings(b *testing.B, sizeVar func(string, *int64), intVar func(string, *int)) jobsSettings {
	b.Helper()
	j := jobsSettings{jobs: 200, size: 256 << 10, workers: []int{1, 8}, sweepRooms: 1000, sweepPairUs: 100}
	intVar("RS_BENCH_JOBS", &j.jobs)
	sizeVar("RS_BENCH_JOB_SIZE", &j.size)
	intVar("RS_BENCH_SWEEP_ROOMS", &j.sweepRooms)
	pairs := j.sweepPairUs * j.sweepPairUs
	intVar("RS_BENCH_SWEEP_PAIRS", &pairs)
	j.sweepPairUs = max(1, int(math.Round(math.Sqrt(float64(pairs)))))
	if v := os.Getenv("RS_BENCH_JOB_WORKERS"); v != "" {
		j.workers = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				b.Fatalf("RS_BENCH_JOB_WORKERS=%q: want positive numbers, comma-separated", v)
			}
			j.workers = append(j.workers, n)
		}
	}
	return j
}

// jobsReport is the jobs suite's part of the JSON line.
type jobsReport struct {
	Jobs     int   `json:"jobs"`
	JobBytes int64 `json:"job_bytes"`
	Rooms    int   `json:"rooms_per_job"`
	// RequestsPerJob is by route class (emulator.RouteClass), and "total",
	// over every run of the suite (the first job's logins, key pair and
	// room resolutions included).
	RequestsPerJob map[string]float64 `json:"requests_per_job"`
	// JobsPerS is by profile, then by stages.transfer.workers.
	JobsPerS map[string]map[string]float64 `json:"jobs_per_s"`
	// Logins and key pair fetches (each one unlock) of the service in one
	// run: the most of any run.
	LoginsPerRun  int64 `json:"logins_per_run"`
	UnlocksPerRun int64 `json:"unlocks_per_run"`
	// Sweeps: requests of one sweep of each instance, and the growth of
	// this process's heap while the pairs sweep ran.
	SweepRequests1000Rooms  int64   `json:"sweep_requests_1000_rooms"`
	SweepRequests10000Pairs int64   `json:"sweep_requests_10000_pairs"`
	SweepRooms              int     `json:"sweep_rooms"`
	SweepPairs              int     `json:"sweep_pairs"`
	SweepPairsHeapMiB       float64 `json:"sweep_pairs_heap_growth_mib"`

	runs []jobsRun
}

// jobsRun is one run of the jobs: a profile and a number of workers.
type jobsRun struct {
	profile  string
	workers  int
	seconds  float64
	requests emulator.RequestCounts
}

// runJobs runs the jobs suite.
func (s *benchSuite) runJobs(b *testing.B) *jobsReport {
	b.Helper()
	set := s.set.job
	rep := &jobsReport{Jobs: set.jobs, JobBytes: set.size, Rooms: 2, RequestsPerJob: map[string]float64{},
		JobsPerS: map[string]map[string]float64{}}
	fmt.Printf("jobs benchmark: %d jobs of %s, two rooms each, stages.transfer.workers %v, profiles %s\n",
		set.jobs, sizeString(set.size), set.workers, strings.Join(s.set.profiles, ","))
	seed := emulatortest.RepoPath(emulatortest.FastSeedFile)
	delay := "-s3-finish-delay=" + emulator.DefaultS3FinishDelay.String()
	for _, p := range s.profiles {
		if !p.direct {
			continue // the jobs measure S3 direct uploads
		}
		rep.JobsPerS[p.name] = map[string]float64{}
		for _, w := range set.workers {
			s.startEmulator(b, p, fmt.Sprintf("jobs-%s-%d", p.name, w), seed, delay)
			run := s.jobsRun(b, p, w)
			rep.runs = append(rep.runs, run)
			rep.JobsPerS[p.name][strconv.Itoa(w)] = round2(float64(set.jobs) / run.seconds)
			cl := run.requests.Classes()
			rep.LoginsPerRun = max(rep.LoginsPerRun, cl[emulator.ClassLogin])
			rep.UnlocksPerRun = max(rep.UnlocksPerRun, cl[emulator.ClassKeyPair])
			fmt.Printf("  %-9s workers %d: %6.2f jobs/s, %.2f DRACOON requests per job\n", p.name, w,
				float64(set.jobs)/run.seconds, float64(run.requests.Total)/float64(set.jobs))
		}
	}
	var total emulator.RequestCounts
	for _, r := range rep.runs {
		total = add(total, r.requests)
	}
	if n := float64(len(rep.runs) * set.jobs); n > 0 {
		for c, v := range total.Classes() {
			rep.RequestsPerJob[c] = round2(float64(v) / n)
		}
		rep.RequestsPerJob["total"] = round2(float64(total.Total) / n)
	}

	p := s.profiles[0]
	rep.SweepRooms, rep.SweepPairs = set.sweepRooms, set.sweepPairUs*set.sweepPairUs
	rooms, _ := s.sweep(b, p, "rooms", sweepSeed(b, s.tmp, set.sweepRooms, 0), nil)
	rep.SweepRequests1000Rooms = rooms.Total
	pairs, heap := s.sweep(b, p, "pairs", sweepSeed(b, s.tmp, 0, set.sweepPairUs), func(c *dracoon.Client) {
		s.putFiles(b, c, pairsRoomID, set.sweepPairUs)
	})
	rep.SweepRequests10000Pairs, rep.SweepPairsHeapMiB = pairs.Total, round1(heap)
	fmt.Printf("  sweep of %d rooms, nothing missing: %d requests\n%s\n", set.sweepRooms, rooms.Total, indent(rooms.String()))
	fmt.Printf("  sweep of %d missing (user, file) pairs: %d requests, heap +%.1f MiB\n%s\n", rep.SweepPairs, pairs.Total,
		heap, indent(pairs.String()))
	if p.emu != nil {
		p.emu.stop()
		p.emu = nil
	}
	return rep
}

// add sums request counts.
func add(a, b emulator.RequestCounts) emulator.RequestCounts {
	out := emulator.RequestCounts{Total: a.Total + b.Total, Routes: map[string]int64{}}
	for r, n := range a.Routes {
		out.Routes[r] += n
	}
	for r, n := range b.Routes {
		out.Routes[r] += n
	}
	return out
}

// jobsConfig is the service's configuration for the jobs (the stack's S3,
// the memory transport, workers transfer workers) and the instance
// jobsDomain on the profile's emulator.
func (s *benchSuite) jobsConfig(b *testing.B, p *benchProfile, workers int) (conf.Config, instanceTable) {
	b.Helper()
	cfg := awstest.Config(b)
	cfg.Stages.Transport = conf.TransportMemory
	cfg.Stages.Transfer.Workers = workers
	cfg.S3.MemoryBudget = conf.ByteSize(int64(workers) * int64(cfg.S3.Parallel+cfg.S3.PartsInFlight) * int64(cfg.S3.ChunkSize))
	cfg.S3.RemoveAfterTransfer = true
	inst := map[string]conf.Instance{jobsDomain: {Storage: "dracoon", Dracoon: conf.DracoonAccount{BaseURL: p.url,
		Login: emulatortest.ServiceLogin, Password: emulatortest.ServicePassword,
		EncryptionPassword: emulatortest.ServiceEncryptionPassword, ClientID: emulatortest.ClientID,
		ClientSecret: emulatortest.ClientSecret, ParentRoomID: emulatortest.ParentRoomID}}}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	return cfg, instanceTable(inst)
}

// instanceTable is a fixed instance table.
type instanceTable map[string]conf.Instance

func (t instanceTable) Instance(_ context.Context, domain string) (conf.Instance, error) {
	inst, ok := t[domain]
	if !ok {
		return conf.Instance{}, fmt.Errorf("unknown instance %q", domain)
	}
	return inst, nil
}

// jobsRun sends the jobs to a pipeline with workers transfer workers and
// measures them.
func (s *benchSuite) jobsRun(b *testing.B, p *benchProfile, workers int) jobsRun {
	b.Helper()
	set := s.set.job
	cfg, insts := s.jobsConfig(b, p, workers)
	keys := make([]string, set.jobs)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				s.putSmall(b, keys[i], set.size)
			}
		})
	}
	for i := range keys {
		keys[i] = fmt.Sprintf("jobs/%s-%d/%d.mp4", p.name, workers, i)
		next <- i
	}
	close(next)
	wg.Wait()

	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	reg := prometheus.NewRegistry()
	st := steps.New(cfg, insts, s3source.New(s.s3, s3source.Options{}), setup.Accounts(cfg, log), nil, log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Steps: st, Registry: reg, Logger: log,
		Stages: []string{conf.StageParse, conf.StageResolve, conf.StageRooms, conf.StageTransfer, conf.StageShare}})
	if err != nil {
		b.Fatal(err)
	}
	watch, err := svc.Transport().Subscriber("jobs-bench", 1)
	if err != nil {
		b.Fatal(err)
	}
	done, err := watch.Subscribe(ctx, cfg.Stages.Transferred)
	if err != nil {
		b.Fatal(err)
	}
	poisoned, err := watch.Subscribe(ctx, cfg.Stages.Poison)
	if err != nil {
		b.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Run(ctx) }()
	select {
	case <-svc.Running():
	case err := <-stopped:
		b.Fatalf("pipeline: %v", err)
	}
	inbound, err := svc.Transport().InboundPublisher()
	if err != nil {
		b.Fatal(err)
	}
	queue := svc.Transport().InboundQueue()

	before := emulatorRequests(b, p)
	start := time.Now()
	for i, key := range keys {
		if err := inbound.Publish(queue, message.NewMessage(watermill.NewUUID(), jobBody(b, s.bucket, key, 100000+i))); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.After(30 * time.Minute)
	for n := 0; n < set.jobs; {
		select {
		case m := <-done:
			m.Ack()
			n++
		case m := <-poisoned:
			m.Ack()
			b.Fatalf("%s, %d workers: a job was poisoned: %s", p.name, workers, m.Metadata.Get(pipeline.MetaPoisonReason))
		case err := <-stopped:
			b.Fatalf("%s, %d workers: the pipeline stopped: %v", p.name, workers, err)
		case <-deadline:
			b.Fatalf("%s, %d workers: %d of %d jobs after 30 minutes", p.name, workers, n, set.jobs)
		}
	}
	took := time.Since(start)
	for shareHandled(b, reg) < set.jobs {
		select {
		case m := <-poisoned:
			m.Ack()
			b.Fatalf("%s, %d workers: a share was poisoned: %s", p.name, workers, m.Metadata.Get(pipeline.MetaPoisonReason))
		case <-time.After(50 * time.Millisecond):
		}
	}
	after := emulatorRequests(b, p)
	cancel()
	if err := <-stopped; err != nil {
		b.Fatalf("pipeline: %v", err)
	}
	return jobsRun{profile: p.name, workers: workers, seconds: took.Seconds(), requests: after.Sub(before)}
}

// jobBody is the original example message for key, to the rooms jobs/one
// and jobs/two.
func jobBody(b *testing.B, bucket, key string, meetingID int) []byte {
	b.Helper()
	raw, err := os.ReadFile(emulatortest.RepoPath("testdata/messages/original-example.json"))
	if err != nil {
		b.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatal(err)
	}
	extra := m["storage"].(map[string]any)["extra"].(map[string]any)
	extra["aws.s3"] = map[string]any{"bucket": bucket, "keys": []string{key}}
	extra["dracoon"] = map[string]any{"targets": []any{map[string]any{"path": "jobs/one"}, map[string]any{"path": "jobs/two"}}}
	m["instance"] = map[string]any{"domain": jobsDomain}
	m["meeting"].(map[string]any)["id"] = meetingID
	out, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// shareHandled is how many transferred jobs the share stage has handled
// successfully (Watermill's handler metric).
func shareHandled(b *testing.B, reg *prometheus.Registry) int {
	b.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "recording_storage_handler_execution_time_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["handler_name"] == "share-transferred" && labels["success"] == "true" {
				n += int(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return n
}

// emulatorRequests reads the profile's emulator's request counter.
func emulatorRequests(b *testing.B, p *benchProfile) emulator.RequestCounts {
	b.Helper()
	resp, err := http.Get("http://" + p.addr + emulator.RequestsPath)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var rc emulator.RequestCounts
	if err := json.NewDecoder(resp.Body).Decode(&rc); err != nil {
		b.Fatal(err)
	}
	return rc
}

// putSmall stores size generated bytes as key.
func (s *benchSuite) putSmall(b *testing.B, key string, size int64) {
	b.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if _, err := s.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &s.bucket, Key: &key,
		Body: strings.NewReader(string(data))}); err != nil {
		b.Error(err)
	}
}

// pairsRoomID is the room of the pairs sweep: its members are the seed's
// extra users only.
const pairsRoomID = 5000

// sweepSeed writes the fast seed with rooms empty rooms below the parent
// room and, when users > 0, that many users (with alice's key pair) as the
// only readers of the room pairsRoomID; it returns the file's path.
func sweepSeed(b *testing.B, dir string, rooms, users int) string {
	b.Helper()
	seed := emulatortest.FastSeed(b, true)
	parent := int64(emulatortest.ParentRoomID)
	for i := range rooms {
		seed.Rooms = append(seed.Rooms, emulator.SeedRoom{ID: int64(10_000 + i), Name: fmt.Sprintf("room %d", i),
			ParentID: &parent, Encrypted: true})
	}
	if users > 0 {
		var alice emulator.SeedUser
		for _, u := range seed.Users {
			if u.UserName == "alice" {
				alice = u
			}
		}
		inherit := false
		all := emulator.SeedPermissions{Manage: true, Read: true, Create: true, Change: true, Delete: true}
		room := emulator.SeedRoom{ID: pairsRoomID, Name: "pairs", ParentID: &parent, Encrypted: true, InheritPermissions: &inherit,
			Members: []emulator.SeedMember{{UserID: 1, Permissions: all}}}
		for i := range users {
			id := int64(1000 + i)
			seed.Users = append(seed.Users, emulator.SeedUser{ID: id, UserName: fmt.Sprintf("user%d", i), Password: "pw",
				KeyPairs: alice.KeyPairs})
			room.Members = append(room.Members, emulator.SeedMember{UserID: id, Permissions: emulator.SeedPermissions{Read: true}})
		}
		seed.Rooms = append(seed.Rooms, room)
	}
	raw, err := json.Marshal(seed)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("seed-%d-%d.json", rooms, users))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// putFiles has the transfer engine bring n small recordings into the room
// as c, the service account, eight jobs at once.
func (s *benchSuite) putFiles(b *testing.B, c *dracoon.Client, room int64, n int) {
	b.Helper()
	ctx := context.Background()
	src := s3source.New(s.s3, s3source.Options{})
	eng := transfer.New(src, transfer.Client(c), transfer.Options{})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := fmt.Sprintf("sweep-files/f%d.bin", i)
			s.putSmall(b, key, 64)
			obj, err := src.Head(ctx, s.bucket, key)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := eng.Transfer(ctx, transfer.Job{ID: key, Files: []transfer.File{{Object: obj, Name: fmt.Sprintf("f%d.bin", i)}},
				Targets: []transfer.Target{{RoomID: room}}}); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// sweep starts the profile's emulator with seed, lets prepare (when not
// nil) work with a client of its own, then runs one sweep of the instance
// with a fresh service and returns its requests and the growth of this
// process's heap in MiB while it ran.
func (s *benchSuite) sweep(b *testing.B, p *benchProfile, tag, seed string, prepare func(*dracoon.Client)) (emulator.RequestCounts, float64) {
	b.Helper()
	s.startEmulator(b, p, "sweep-"+tag, seed)
	cfg, insts := s.jobsConfig(b, p, 1)
	if prepare != nil {
		acct := insts[jobsDomain].Dracoon
		c, err := dracoon.New(dracoon.NewConfig(cfg.Dracoon, acct, int64(cfg.S3.ChunkSize), nil))
		if err != nil {
			b.Fatal(err)
		}
		prepare(c)
	}
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	st := steps.New(cfg, insts, s3source.New(s.s3, s3source.Options{}), setup.Accounts(cfg, log), nil, log)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	before := emulatorRequests(b, p)
	stats, err := st.Share(context.Background(), messages.ShareRequest{Version: messages.ShareRequestVersion,
		Instance: jobsDomain, Sweep: true})
	after := emulatorRequests(b, p)
	close(stop)
	<-sampled
	if err != nil {
		b.Fatalf("sweep %s: %v", tag, err)
	}
	if prepare != nil && stats.Set == 0 {
		b.Fatalf("sweep %s: no key set", tag)
	}
	growth := 0.0
	if peak > base {
		growth = float64(peak-base) / mib
	}
	return after.Sub(before), growth
}

// print prints the suite's table.
func (r *jobsReport) print() {
	fmt.Printf("\njobs benchmark: %d jobs of %s to %d existing rooms each; requests per job by kind (all runs):\n",
		r.Jobs, sizeString(r.JobBytes), r.Rooms)
	classes := make([]string, 0, len(r.RequestsPerJob))
	for c := range r.RequestsPerJob {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	for _, c := range classes {
		fmt.Printf("  %-16s %6.2f\n", c, r.RequestsPerJob[c])
	}
	fmt.Printf("%-10s %8s %8s\n", "profile", "workers", "jobs/s")
	for _, run := range r.runs {
		fmt.Printf("%-10s %8d %8.2f\n", run.profile, run.workers, r.JobsPerS[run.profile][strconv.Itoa(run.workers)])
	}
	fmt.Printf("logins per run %d, key pair unlocks per run %d\n", r.LoginsPerRun, r.UnlocksPerRun)
}

// goals adds the suite's goals (issue 17).
func (r *jobsReport) goals(goal func(name string, v float64, op string, want float64)) {
	goal("jobs requests/job", r.RequestsPerJob["total"], "<=", 18)
	for profile, byWorkers := range r.JobsPerS {
		if one, eight := byWorkers["1"], byWorkers["8"]; one > 0 && eight > 0 {
			goal("jobs "+profile+" jobs/s 8/1 workers", eight/one, ">=", 5)
		}
	}
	goal("sweep requests, rooms", float64(r.SweepRequests1000Rooms), "<=", 5)
	goal("logins per run", float64(r.LoginsPerRun), "<=", 1)
	goal("unlocks per run", float64(r.UnlocksPerRun), "<=", 1)
}
