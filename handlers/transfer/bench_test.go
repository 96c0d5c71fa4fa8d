package transfer_test

// BenchmarkTransfer is the transfer benchmark of `make bench`:
//
//	make bench                                  # everything, the stack started and stopped
//	. .stack/env && go test -run '^$' -bench '^BenchmarkTransfer$' -benchtime 1x -timeout 60m ./handlers/transfer/
//	RS_BENCH_SIZE=256MiB RS_BENCH_ROUNDS=1 RS_BENCH_BIG_SIZE=0 ...   # a quick check
//
// It puts a generated object (RS_BENCH_SIZE, default 1 GiB, streamed) in
// the stack's S3 and measures, interleaved, RS_BENCH_ROUNDS (default 5)
// times each, in every network profile (RS_BENCH_PROFILES, default
// "loopback,wan"; "loopback_proxy" adds proxy chunk uploads on loopback):
//
//	raw_s3       the object read with the engine's read concurrency into nothing
//	sequential   one chunk at a time: read -> encrypt -> upload, one target
//	engine       the engine, one target
//	engine3      the engine, three targets
//	raw_dracoon  the DRACOON side alone: parts of ready bytes PUT into the
//	             emulator with the engine's parts in flight (its ceiling)
//
// and then the engine once per profile with a RS_BENCH_BIG_SIZE object
// (default 4 GiB; 0 skips) for memory. Every variant runs in a process of
// its own (internal/benchdriver), so CPU time (wait4's rusage) and peak RSS
// (the driver's VmHWM: wait4's maxrss would include this process's) are
// those of the transferring process alone. The DRACOON emulator
// (benchdriver -serve-emulator) runs in a process of its own too, in its
// benchmark storage mode (Config.DiscardContent: sizes, proxy chunk MD5s
// and cheap S3 part ETags only), with S3 direct uploads, started afresh
// each round. In the wan profile the
// service reaches it through netsim.WAN (25 ms each way, 40 MB/s per
// connection), which runs in this process, and so do the presigned part
// URLs (the emulator's public URL is the proxy; the bytes through the proxy
// are checked). S3 stays direct. Chunk size: RS_BENCH_CHUNK (default
// conf.DefaultChunkSize); engine options: RS_BENCH_READ_AHEAD (default
// transfer.DefaultReadAhead, conf's s3.parallel) and RS_BENCH_PARTS (default
// transfer.DefaultPartsInFlight, conf's s3.parts_in_flight: 10, as Cyberduck).
// RS_BENCH_CPUPROFILE=FILE keeps the CPU profile of the last loopback
// engine run.
//
// It then runs the jobs suite (jobs_bench_test.go: many small jobs through
// the pipeline, requests per job and per sweep), whose results are the
// "jobs" key of the same JSON line. RS_BENCH_SUITES ("transfer,jobs" by
// default) picks the suites.
//
// It prints a table and, as its last line, one JSON object (benchReport).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/netsim"
)

const (
	mib = 1 << 20
	gib = 1 << 30
	// benchModule is the module path, for go build.
	benchModule = "github.com/recording-storage/recording-storage"
	// rssBaseMiB is the memory goal's allowance beyond the chunks in flight.
	rssBaseMiB = 64
)

// benchVariants are measured in this order, rotated each round.
var benchVariants = []string{"raw_s3", "sequential", "engine", "engine3", "raw_dracoon"}

// benchSettings are the knobs of the benchmark (RS_BENCH_* variables).
type benchSettings struct {
	size, bigSize, chunk int64
	rounds               int
	opts                 transfer.Options
	profiles             []string
	cpuProfile           string
	transfer, jobs       bool // the suites to run (RS_BENCH_SUITES)
	job                  jobsSettings
}

func loadBenchSettings(b *testing.B) benchSettings {
	b.Helper()
	s := benchSettings{size: gib, bigSize: 4 * gib, chunk: conf.DefaultChunkSize, rounds: 5,
		opts:     transfer.Options{ReadAhead: transfer.DefaultReadAhead, PartsInFlight: transfer.DefaultPartsInFlight},
		profiles: []string{"loopback", "wan"}, cpuProfile: os.Getenv("RS_BENCH_CPUPROFILE")}
	sizeVar := func(name string, dst *int64) {
		if v := os.Getenv(name); v != "" {
			n, err := parseSize(v)
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			*dst = n
		}
	}
	intVar := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				b.Fatalf("%s=%q: want a positive number", name, v)
			}
			*dst = n
		}
	}
	sizeVar("RS_BENCH_SIZE", &s.size)
	sizeVar("RS_BENCH_BIG_SIZE", &s.bigSize)
	sizeVar("RS_BENCH_CHUNK", &s.chunk)
	intVar("RS_BENCH_ROUNDS", &s.rounds)
	intVar("RS_BENCH_READ_AHEAD", &s.opts.ReadAhead)
	intVar("RS_BENCH_PARTS", &s.opts.PartsInFlight)
	if v := os.Getenv("RS_BENCH_PROFILES"); v != "" {
		s.profiles = strings.Split(v, ",")
	}
	for _, p := range s.profiles {
		if p != "loopback" && p != "wan" && p != "loopback_proxy" {
			b.Fatalf("RS_BENCH_PROFILES: unknown profile %q (loopback, wan, loopback_proxy)", p)
		}
	}
	s.transfer, s.jobs = true, true
	if v := os.Getenv("RS_BENCH_SUITES"); v != "" {
		s.transfer, s.jobs = false, false
		for _, suite := range strings.Split(v, ",") {
			switch suite {
			case "transfer":
				s.transfer = true
			case "jobs":
				s.jobs = true
			default:
				b.Fatalf("RS_BENCH_SUITES: unknown suite %q (transfer, jobs)", suite)
			}
		}
	}
	s.job = loadJobsSettings(b, sizeVar, intVar)
	if s.size < 1 || s.chunk < dracoon.MinS3PartSize || s.chunk%crypto.SegmentAlign != 0 {
		b.Fatalf("RS_BENCH_SIZE must be positive, RS_BENCH_CHUNK at least %d bytes and a multiple of %d",
			dracoon.MinS3PartSize, crypto.SegmentAlign)
	}
	return s
}

// parseSize reads "1GiB", "256MiB", "64KiB" or a number of bytes.
func parseSize(v string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", gib}, {"MiB", mib}, {"KiB", 1 << 10}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = n, u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 1GiB, 256MiB or 1048576", v)
	}
	return n * mult, nil
}

// proc is a child process of the benchmark: an emulator.
type proc struct {
	cmd  *exec.Cmd
	log  string
	stop func() // ends it (SIGTERM, then SIGKILL after 10 s) and waits
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// benchProfile is one network profile: an emulator and the URL the service
// reaches it at.
type benchProfile struct {
	name   string
	direct bool         // S3 direct uploads
	link   *netsim.Link // nil: loopback
	addr   string       // the emulator's
	url    string       // the service's way to the emulator
	emu    *proc
}

// sample is one run of the driver.
type sample struct {
	profile, variant string
	size             int64
	targets          int
	res              driverResult
	cpuS             float64 // user+system CPU of the whole driver process
	sysS             float64 // its system CPU
	rssMiB           float64 // its peak RSS (VmHWM: see benchdriver)
	emuCPUS, s3CPUS  float64 // CPU of the emulator and of versitygw during the run
	proxyCPUS        float64 // CPU of this process (the wan proxy) during the run
	busy             float64 // share of the machine's CPUs busy during the run
}

func (s sample) mbps() float64 { return float64(s.res.Bytes) / 1e6 / s.res.Seconds }

// driverResult is benchdriver's Result.
type driverResult struct {
	Variant     string  `json:"variant"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	S3BytesRead int64   `json:"s3_bytes_read"`
	CPUSeconds  float64 `json:"cpu_s"`
	Direct      bool    `json:"direct"`
	Parts       int     `json:"parts"`
	PartSize    int64   `json:"part_size"`
	PeakRSSKiB  int64   `json:"peak_rss_kib"`
}

type benchSuite struct {
	set      benchSettings
	goBin    string
	driver   string
	tmp      string
	s3       *s3.Client
	bucket   string
	s3Pid    int
	profiles []*benchProfile
	seq      int
	samples  []sample
	big      []sample
	jobs     *jobsReport
}

// benchReport is the JSON line. The first keys are those of the issue;
// the rest add context.
type benchReport struct {
	ObjectBytes       int64                   `json:"object_bytes"`
	Loopback          *profileReport          `json:"loopback,omitempty"`
	WAN               *profileReport          `json:"wan,omitempty"`
	S3BytesReadEngine int64                   `json:"s3_bytes_read_engine3"`
	CPUSPerGiB        float64                 `json:"cpu_s_per_gib"`
	PeakRSSMiB1G      float64                 `json:"peak_rss_mib_1g"`
	PeakRSSMiB4G      float64                 `json:"peak_rss_mib_4g"`
	ChunkMiB          float64                 `json:"chunk_mib"`
	InFlightChunks    int                     `json:"in_flight_chunks"`
	LoopbackProxy     *profileReport          `json:"loopback_proxy,omitempty"`
	RawDracoonMbps    map[string]float64      `json:"raw_dracoon_mbps"`
	ReadAhead         int                     `json:"read_ahead"`
	PartsInFlight     int                     `json:"parts_in_flight"`
	Rounds            int                     `json:"rounds"`
	BigObjectBytes    int64                   `json:"big_object_bytes"`
	RSSBoundMiB       float64                 `json:"rss_bound_mib"`
	Goals             map[string]goalResult   `json:"goals"`
	CPUByVariant      map[string]profileExtra `json:"cpu_s_per_gib_by_variant"`
	// The engine's CPU beside what its parts cost alone in the same run:
	// its user part, sealing alone (crypto.Sealer in this process, chunk by
	// chunk), and the floor raw_s3 + raw_dracoon + sealing (loopback).
	CPUUserSPerGiB  float64 `json:"cpu_user_s_per_gib"`
	SealCPUSPerGiB  float64 `json:"seal_cpu_s_per_gib"`
	CPUFloorSPerGiB float64 `json:"cpu_floor_s_per_gib"`
	// Jobs is the jobs suite (jobs_bench_test.go).
	Jobs *jobsReport `json:"jobs,omitempty"`
}

type profileReport struct {
	RawS3      float64 `json:"raw_s3_mbps"`
	Sequential float64 `json:"sequential_mbps"`
	Engine     float64 `json:"engine_mbps"`
	Engine3    float64 `json:"engine3_mbps"`
}

// profileExtra is a number per variant.
type profileExtra map[string]float64

type goalResult struct {
	Value float64 `json:"value"`
	Goal  string  `json:"goal"`
	Met   bool    `json:"met"`
}

var benchOnce sync.Once

func BenchmarkTransfer(b *testing.B) {
	cfg := awstest.Config(b) // fails without the stack
	ran := false
	benchOnce.Do(func() { // the suite takes minutes: once per process, whatever b.N
		ran = true
		s := &benchSuite{set: loadBenchSettings(b), tmp: b.TempDir(), s3: awstest.S3(b, cfg.AWS)}
		s.run(b)
	})
	if !ran {
		b.Skip("the transfer suite runs once per process")
	}
}

func (s *benchSuite) run(b *testing.B) {
	set := s.set
	suiteStart := time.Now()
	fmt.Printf("transfer benchmark: %s object, chunk %d MiB, engine ReadAhead %d PartsInFlight %d, %d rounds, profiles %s\n",
		sizeString(set.size), set.chunk/mib, set.opts.ReadAhead, set.opts.PartsInFlight, set.rounds, strings.Join(set.profiles, ","))
	s.build(b)
	s.s3Pid = stackPid("versitygw")
	for _, name := range set.profiles {
		s.profiles = append(s.profiles, s.startProfile(b, name))
	}
	s.bucket = awstest.Bucket(b, s.s3, "bench")
	if set.transfer {
		s.runTransfer(b)
	}
	if set.jobs {
		s.jobs = s.runJobs(b)
	}
	s.report(b, time.Since(suiteStart))
}

// runTransfer measures the variants, interleaved, and the big object.
func (s *benchSuite) runTransfer(b *testing.B) {
	set := s.set
	key := "bench/object.bin"
	s.putObject(b, key, set.size)

	for r := range set.rounds {
		for _, p := range s.profiles {
			s.startEmulator(b, p, fmt.Sprintf("%s-%d", p.name, r), emulatortest.RepoPath(emulatortest.FastSeedFile))
		}
		for _, p := range rotate(s.profiles, r) {
			for _, v := range rotate(benchVariants, r) {
				prof := ""
				if r == set.rounds-1 && v == "engine" && p.name == "loopback" {
					prof = filepath.Join(s.tmp, "engine-loopback.pprof")
				}
				sm := s.drive(b, p, v, key, prof)
				s.samples = append(s.samples, sm)
				fmt.Printf("  round %d/%d %-14s %-11s %7.1f MB/s  cpu %5.2f s  rss %4.0f MiB  emu cpu %5.2f s  s3 cpu %5.2f s  busy %3.0f%%\n",
					r+1, set.rounds, p.name, v, sm.mbps(), sm.cpuS, sm.rssMiB, sm.emuCPUS, sm.s3CPUS, 100*sm.busy)
			}
		}
	}
	if set.bigSize > 0 {
		s.deleteObject(b, key)
		bigKey := "bench/big.bin"
		s.putObject(b, bigKey, set.bigSize)
		for _, p := range s.profiles {
			s.startEmulator(b, p, fmt.Sprintf("%s-%d", p.name, set.rounds), emulatortest.RepoPath(emulatortest.FastSeedFile))
			sm := s.drive(b, p, "engine", bigKey, "")
			s.big = append(s.big, sm)
			fmt.Printf("  big %-14s engine %7.1f MB/s  cpu %5.2f s  rss %4.0f MiB\n", p.name, sm.mbps(), sm.cpuS, sm.rssMiB)
		}
		s.deleteObject(b, bigKey)
	}
}

// build compiles the driver, which is also the emulator (-serve-emulator).
func (s *benchSuite) build(b *testing.B) {
	b.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	s.goBin = goBin
	s.driver = filepath.Join(s.tmp, "benchdriver")
	pkg := benchModule + "/handlers/transfer/internal/benchdriver"
	if out, err := exec.Command(goBin, "build", "-o", s.driver, pkg).CombinedOutput(); err != nil {
		fmt.Printf("go build %s: %v\n%s", pkg, err, out)
		b.Fatalf("go build %s: %v", pkg, err)
	}
}

// startProfile sets up a profile: its address and, for wan, its link.
// The emulator starts with startEmulator.
func (s *benchSuite) startProfile(b *testing.B, name string) *benchProfile {
	b.Helper()
	p := &benchProfile{name: name, direct: name != "loopback_proxy"}
	var err error
	if p.addr, err = netsim.FreePort(); err != nil {
		b.Fatal(err)
	}
	p.url = "http://" + p.addr
	if name == "wan" {
		if p.link, err = netsim.Start("127.0.0.1:0", p.addr, netsim.WAN); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.link.Close() })
		p.url = p.link.URL()
	}
	return p
}

// startEmulator (re)starts the profile's emulator with an empty state
// (under the name tag) and the seed file, so that its state file,
// rewritten on every part, does not grow from round to round. extra are
// more benchdriver flags.
func (s *benchSuite) startEmulator(b *testing.B, p *benchProfile, tag, seed string, extra ...string) {
	b.Helper()
	if p.emu != nil {
		p.emu.stop()
	}
	args := []string{"-serve-emulator", "-listen", p.addr, "-data", filepath.Join(s.tmp, "dracoon-"+tag),
		"-seed", seed, fmt.Sprintf("-s3-direct-upload=%t", p.direct)}
	args = append(args, extra...)
	if p.link != nil {
		args = append(args, "-public-url", p.link.URL())
	}
	p.emu = startProc(b, s.driver, filepath.Join(s.tmp, "emulator-"+tag+".log"), args...)
	waitHealthy(b, "http://"+p.addr+"/api/v4/public/system/info", p.emu)
	waitHealthy(b, p.url+"/api/v4/public/system/info", p.emu)
}

func startProc(b *testing.B, bin, logFile string, args ...string) *proc {
	b.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		b.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logFile}
	p.stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
	b.Cleanup(p.stop)
	return p
}

func waitHealthy(b *testing.B, url string, p *proc) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(p.log)
			b.Fatalf("%s: no healthy answer in 30 s (%v)\n%s", url, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// putObject stores size generated bytes as key with a multipart upload of
// 32 MiB parts, two at a time, generated part by part (never the whole
// object in memory).
func (s *benchSuite) putObject(b *testing.B, key string, size int64) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	const partSize = 32 * mib
	up, err := s.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		b.Fatal(err)
	}
	parts := int((size + partSize - 1) / partSize)
	done := make([]types.CompletedPart, parts)
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, partSize)
			for i := range next {
				n := min(partSize, size-int64(i)*partSize)
				var seed [32]byte
				binaryPutUint64(seed[:], uint64(i))
				rand.NewChaCha8(seed).Read(buf[:n])
				out, err := s.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.bucket, Key: &key, UploadId: up.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(n)})
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					done[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range parts {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		_, _ = s.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: up.UploadId})
		b.Fatal(firstErr)
	}
	if _, err := s.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("  put s3://%s/%s: %s in %.1f s\n", s.bucket, key, sizeString(size), time.Since(start).Seconds())
}

func binaryPutUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func (s *benchSuite) deleteObject(b *testing.B, key string) {
	b.Helper()
	if _, err := s.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		b.Fatal(err)
	}
}

// drive runs one variant in a driver process and measures it.
func (s *benchSuite) drive(b *testing.B, p *benchProfile, variant, key, cpuProfile string) sample {
	b.Helper()
	s.seq++
	targets := 1
	dv := variant
	if variant == "engine3" {
		dv, targets = "engine", 3
	}
	args := []string{"-variant", dv, "-bucket", s.bucket, "-key", key, "-dracoon", p.url,
		"-name", fmt.Sprintf("bench-%d-%s-%s.bin", s.seq, p.name, variant), "-targets", strconv.Itoa(targets),
		"-chunk", strconv.FormatInt(s.set.chunk, 10), "-read-ahead", strconv.Itoa(s.set.opts.ReadAhead),
		"-parts", strconv.Itoa(s.set.opts.PartsInFlight)}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.driver, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	busy0, emu0, s30, self0 := machineBusy(), procCPU(p.emu.pid()), procCPU(s.s3Pid), selfCPU()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %s: %v\n%s", p.name, variant, err, stderr.Bytes())
	}
	busy1, emu1, s31, self1 := machineBusy(), procCPU(p.emu.pid()), procCPU(s.s3Pid), selfCPU()
	sm := sample{profile: p.name, variant: variant, targets: targets, emuCPUS: emu1 - emu0, s3CPUS: s31 - s30,
		proxyCPUS: self1 - self0, busy: busy1.since(busy0)}
	if err := json.Unmarshal(stdout.Bytes(), &sm.res); err != nil {
		b.Fatalf("%s %s: %v: %q", p.name, variant, err, stdout.Bytes())
	}
	sm.size = sm.res.Bytes
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		sm.cpuS = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		sm.sysS = time.Duration(ru.Stime.Nano()).Seconds()
	}
	sm.rssMiB = float64(sm.res.PeakRSSKiB) / 1024
	if variant != "raw_s3" && sm.res.Direct != p.direct {
		b.Fatalf("%s %s: direct upload %t, want %t", p.name, variant, sm.res.Direct, p.direct)
	}
	return sm
}

// report prints the table and the JSON line.
func (s *benchSuite) report(b *testing.B, took time.Duration) {
	set := s.set
	inFlight := set.opts.BufferCount()
	bound := rssBaseMiB + float64(inFlight)*float64(set.chunk)/mib
	rep := benchReport{ObjectBytes: set.size, ChunkMiB: float64(set.chunk) / mib, InFlightChunks: inFlight,
		RawDracoonMbps: map[string]float64{}, ReadAhead: set.opts.ReadAhead, PartsInFlight: set.opts.PartsInFlight,
		Rounds: set.rounds, BigObjectBytes: set.bigSize, RSSBoundMiB: bound, Goals: map[string]goalResult{},
		CPUByVariant: map[string]profileExtra{}}
	pick := func(profile, variant string) []sample {
		var out []sample
		for _, sm := range s.samples {
			if sm.profile == profile && sm.variant == variant {
				out = append(out, sm)
			}
		}
		return out
	}
	med := func(sms []sample, f func(sample) float64) float64 {
		v := make([]float64, len(sms))
		for i, sm := range sms {
			v[i] = f(sm)
		}
		return median(v)
	}
	mbps := func(sm sample) float64 { return sm.mbps() }
	perGiB := func(sm sample) float64 { return sm.cpuS / (float64(sm.size) / gib) }
	goal := func(name string, v float64, op string, want float64) {
		met := v >= want
		if op == "<=" {
			met = v <= want
		}
		rep.Goals[name] = goalResult{Value: float64(int64(v*1000+0.5)) / 1000, Goal: fmt.Sprintf("%s %g", op, want), Met: met}
	}
	if len(s.samples) > 0 {
		s.reportTransfer(b, took, &rep, pick, med, mbps, perGiB, goal)
	} else {
		rep.ObjectBytes = 0
	}
	if s.jobs != nil {
		rep.Jobs = s.jobs
		s.jobs.print()
		s.jobs.goals(goal)
	}
	fmt.Println("\ngoals:")
	names := make([]string, 0, len(rep.Goals))
	for n := range rep.Goals {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		g := rep.Goals[n]
		status := "MISSED"
		if g.Met {
			status = "met"
		}
		fmt.Printf("  %-32s %8.3f  (goal %s)  %s\n", n, g.Value, g.Goal, status)
	}

	if prof := filepath.Join(s.tmp, "engine-loopback.pprof"); fileExists(prof) {
		out, err := exec.Command(s.goBin, "tool", "pprof", "-top", "-nodecount=25", s.driver, prof).CombinedOutput()
		if err != nil {
			b.Logf("pprof: %v", err)
		}
		fmt.Printf("\nCPU profile of the last loopback engine run (the driver process):\n%s", indent(string(out)))
		if set.cpuProfile != "" {
			if raw, err := os.ReadFile(prof); err == nil {
				_ = os.WriteFile(set.cpuProfile, raw, 0o644)
			}
		}
	}

	if rep.Loopback != nil {
		b.ReportMetric(rep.Loopback.Engine, "engine-loopback-MB/s")
	}
	if rep.WAN != nil {
		b.ReportMetric(rep.WAN.Engine, "engine-wan-MB/s")
	}
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("\n%s", raw.Bytes())
}

// reportTransfer prints the transfer suite's table and fills its part of
// rep and its goals.
func (s *benchSuite) reportTransfer(b *testing.B, took time.Duration, rep *benchReport,
	pick func(profile, variant string) []sample, med func([]sample, func(sample) float64) float64,
	mbps, perGiB func(sample) float64, goal func(name string, v float64, op string, want float64)) {
	set := s.set
	inFlight := set.opts.BufferCount()
	bound := rssBaseMiB + float64(inFlight)*float64(set.chunk)/mib

	fmt.Printf("\ntransfer benchmark (%.0f s): object %s, chunk %d MiB, ReadAhead %d + PartsInFlight %d = %d chunks in flight, medians of %d interleaved runs\n",
		took.Seconds(), sizeString(set.size), set.chunk/mib, set.opts.ReadAhead, set.opts.PartsInFlight, inFlight, set.rounds)
	fmt.Println("DRACOON: emulator in its own process, --discard-content, S3 direct uploads (loopback_proxy: proxy chunks);")
	fmt.Printf("wan: through a proxy on 127.0.0.1 (%s), presigned part URLs too; S3 always direct\n", netsim.WAN)
	fmt.Println("columns: cpu = CPU s per GiB of the driver process (sys: its system part; xfer: during the transfer alone),")
	fmt.Println("rss = its peak RSS in MiB;")
	fmt.Println("emu, s3, prx = CPU s per GiB of the emulator, versitygw and the proxy (this process); busy = share of the machine's CPUs")
	fmt.Printf("\n%-14s %-11s %8s %15s %6s %6s %6s %6s %6s %6s %6s %6s %5s\n", "profile", "variant", "MB/s", "min-max", "x seq",
		"cpu", "sys", "xfer", "rss", "emu", "s3", "prx", "busy")
	for _, p := range s.profiles {
		var pr profileReport
		seq := med(pick(p.name, "sequential"), mbps)
		rep.CPUByVariant[p.name] = profileExtra{}
		for _, v := range benchVariants {
			sms := pick(p.name, v)
			if len(sms) == 0 {
				continue
			}
			m := med(sms, mbps)
			lo, hi := m, m
			for _, sm := range sms {
				lo, hi = min(lo, sm.mbps()), max(hi, sm.mbps())
			}
			gibs := func(f func(sample) float64) func(sample) float64 {
				return func(sm sample) float64 { return f(sm) / (float64(sm.size) / gib) }
			}
			maxRSS := 0.0
			for _, sm := range sms {
				maxRSS = max(maxRSS, sm.rssMiB)
			}
			fmt.Printf("%-14s %-11s %8.1f %7.1f-%-7.1f %6.2f %6.2f %6.2f %6.2f %6.0f %6.2f %6.2f %6.2f %4.0f%%\n", p.name, v, m, lo, hi, m/seq,
				med(sms, perGiB), med(sms, gibs(func(sm sample) float64 { return sm.sysS })),
				med(sms, gibs(func(sm sample) float64 { return sm.res.CPUSeconds })), maxRSS,
				med(sms, gibs(func(sm sample) float64 { return sm.emuCPUS })),
				med(sms, gibs(func(sm sample) float64 { return sm.s3CPUS })),
				med(sms, gibs(func(sm sample) float64 { return sm.proxyCPUS })), 100*med(sms, func(sm sample) float64 { return sm.busy }))
			rep.CPUByVariant[p.name][v] = round2(med(sms, perGiB))
			switch v {
			case "raw_s3":
				pr.RawS3 = round1(m)
			case "sequential":
				pr.Sequential = round1(m)
			case "engine":
				pr.Engine = round1(m)
			case "engine3":
				pr.Engine3 = round1(m)
			case "raw_dracoon":
				rep.RawDracoonMbps[p.name] = round1(m)
			}
		}
		switch p.name {
		case "loopback":
			rep.Loopback = &pr
		case "wan":
			rep.WAN = &pr
		case "loopback_proxy":
			rep.LoopbackProxy = &pr
		}
	}

	// Engine (one target) CPU and memory; engine3's S3 reads.
	for _, sm := range s.samples {
		if sm.variant == "engine3" {
			rep.S3BytesReadEngine = max(rep.S3BytesReadEngine, sm.res.S3BytesRead)
		}
		if sm.variant == "engine" {
			rep.PeakRSSMiB1G = max(rep.PeakRSSMiB1G, round1(sm.rssMiB))
		}
	}
	rep.CPUSPerGiB = round2(med(pick("loopback", "engine"), perGiB))
	if engines := pick("loopback", "engine"); len(engines) > 0 {
		rep.CPUUserSPerGiB = round2(med(engines, func(sm sample) float64 { return (sm.cpuS - sm.sysS) / (float64(sm.size) / gib) }))
		rep.SealCPUSPerGiB = round2(sealCPU(b, set.size, set.chunk))
		rep.CPUFloorSPerGiB = round2(med(pick("loopback", "raw_s3"), perGiB) + med(pick("loopback", "raw_dracoon"), perGiB) +
			rep.SealCPUSPerGiB)
		fmt.Printf("\nloopback engine CPU %.2f s/GiB (user %.2f); its parts alone in this run: raw_s3 %.2f + raw_dracoon %.2f"+
			" + sealing %.2f = %.2f (engine/parts %.2f)\n", rep.CPUSPerGiB, rep.CPUUserSPerGiB,
			med(pick("loopback", "raw_s3"), perGiB), med(pick("loopback", "raw_dracoon"), perGiB), rep.SealCPUSPerGiB,
			rep.CPUFloorSPerGiB, rep.CPUSPerGiB/rep.CPUFloorSPerGiB)
	}
	for _, sm := range s.big {
		rep.PeakRSSMiB4G = max(rep.PeakRSSMiB4G, round1(sm.rssMiB))
	}
	rssE3 := 0.0
	for _, sm := range s.samples {
		if sm.variant == "engine3" {
			rssE3 = max(rssE3, sm.rssMiB)
		}
	}
	fmt.Printf("\nengine peak RSS: %.0f MiB (%s, max over profiles), engine3 %.0f MiB; bound %d + %d x %d MiB = %.0f MiB\n",
		rep.PeakRSSMiB1G, sizeString(set.size), rssE3, rssBaseMiB, inFlight, set.chunk/mib, bound)
	for _, sm := range s.big {
		fmt.Printf("engine %s object, %s: %.1f MB/s, peak RSS %.0f MiB, cpu %.2f s/GiB\n", sizeString(sm.size), sm.profile,
			sm.mbps(), sm.rssMiB, perGiB(sm))
	}
	fmt.Printf("engine3 S3 bytes read: %d for an object of %d bytes\n", rep.S3BytesReadEngine, set.size)

	// The wan proxy must have carried every uploaded byte (presigned parts included).
	for _, p := range s.profiles {
		if p.link == nil {
			continue
		}
		var uploaded int64
		for _, sm := range append(slices.Clone(s.samples), s.big...) {
			if sm.profile == p.name && sm.variant != "raw_s3" {
				uploaded += sm.size * int64(sm.targets)
			}
		}
		var up int64
		for range 50 { // connections are counted as they close
			if up, _ = p.link.Sent(); up >= uploaded {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Printf("%s proxy: %.2f GB sent upstream for %.2f GB uploaded\n", p.name, float64(up)/1e9, float64(uploaded)/1e9)
		if up < uploaded {
			b.Errorf("%s: only %d bytes went through the proxy for %d uploaded: some uploads bypassed it", p.name, up, uploaded)
		}
	}

	if l := rep.Loopback; l != nil {
		goal("loopback engine/sequential", l.Engine/l.Sequential, ">=", 1.3)
		goal("loopback engine/raw_s3", l.Engine/l.RawS3, ">=", 0.45)
		goal("loopback engine3/engine", l.Engine3/l.Engine, ">=", 0.45)
		goal("loopback engine cpu s/GiB", rep.CPUSPerGiB, "<=", 0.75)
	}
	if w := rep.WAN; w != nil {
		goal("wan engine/sequential", w.Engine/w.Sequential, ">=", 6)
		goal("wan engine3/engine", w.Engine3/w.Engine, ">=", 0.8)
	}
	goal("engine3 s3 reads/object", float64(rep.S3BytesReadEngine)/float64(set.size), "<=", 1)
	goal("peak rss MiB", rep.PeakRSSMiB1G, "<=", bound)
	if len(s.big) > 0 {
		goal("rss big/1g", rep.PeakRSSMiB4G/rep.PeakRSSMiB1G, "<=", 1.1)
	}
}

// rotate returns s rotated left by r.
func rotate[T any](s []T, r int) []T {
	r %= len(s)
	return append(slices.Clone(s[r:]), s[:r]...)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

func sizeString(n int64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	}
	return fmt.Sprintf("%d bytes", n)
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// stackPid returns the PID of a service of .ci/stack, or 0.
func stackPid(name string) int {
	dir := os.Getenv("RS_STACK_DIR")
	if dir == "" {
		dir = emulatortest.RepoPath(".stack")
	}
	raw, err := os.ReadFile(filepath.Join(dir, name+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	return pid
}

// clockTicks is the unit of /proc times (USER_HZ, 100 on Linux).
const clockTicks = 100

// procCPU returns the user+system CPU seconds of process pid so far, or 0.
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// sealCPU is the CPU seconds per GiB this process spends sealing size
// bytes in place, chunk by chunk, with one file key (the engine's
// encryption alone), the median of three runs.
func sealCPU(b *testing.B, size, chunk int64) float64 {
	buf := make([]byte, chunk)
	runs := make([]float64, 3)
	for i := range runs {
		key, err := crypto.GenerateFileKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		sealer, err := crypto.NewSealer(key)
		if err != nil {
			b.Fatal(err)
		}
		c0 := selfCPU()
		for off := int64(0); off < size; off += chunk {
			n := min(chunk, size-off)
			if _, err := sealer.Seal(off, buf[:n], buf[:n]); err != nil {
				b.Fatal(err)
			}
		}
		runs[i] = (selfCPU() - c0) / (float64(size) / gib)
	}
	return median(runs)
}

// selfCPU is the user+system CPU seconds of this process so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// cpuTimes is the first line of /proc/stat.
type cpuTimes struct{ busy, total float64 }

func machineBusy() cpuTimes {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	var t cpuTimes
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i >= 8 { // guest times are already in user and nice
			break
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t
}

func (t cpuTimes) since(t0 cpuTimes) float64 {
	if t.total <= t0.total {
		return 0
	}
	return (t.busy - t0.busy) / (t.total - t0.total)
}
