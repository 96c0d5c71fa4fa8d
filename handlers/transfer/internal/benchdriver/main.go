// Command benchdriver runs one variant of the transfer benchmark
// (handlers/transfer/bench_test.go) in a process of its own, so that the
// benchmark reads the CPU time and the peak RSS of the transferring process
// alone: not those of the S3 server, of the DRACOON emulator or of the
// network simulator. It is not part of the service.
//
// It logs in to DRACOON, resolves the target rooms and looks the object up
// before it starts the clock, runs the variant, and prints one JSON line
// (Result) on stdout. Variants:
//
//	raw_s3       reads the object with ReadAhead concurrent ranged GETs into
//	             nothing (the ceiling of the source)
//	sequential   the original's way: one chunk at a time, read -> encrypt ->
//	             upload, one target, with the dracoon Upload API
//	engine       transfer.Engine, -targets rooms
//	raw_dracoon  uploads the object's size of ready bytes (no S3, no
//	             encryption) with PartsInFlight parts at once, then cancels
//	             (the ceiling of the DRACOON side)
//
// The S3 settings come from the environment (RS_* variables, as the
// service loads them; see .ci/stack).
//
// With -serve-emulator it is instead the DRACOON emulator in its benchmark
// storage mode (what `recording-storage dracoon-emulator --discard-content`
// runs), until SIGTERM: the benchmark needs the emulator in a process of its
// own and builds only this package, not the whole service.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/infra/awsclient"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/s3source"
)

// Result is what the driver prints.
type Result struct {
	Variant     string  `json:"variant"`
	Bytes       int64   `json:"bytes"`         // object size
	Seconds     float64 `json:"seconds"`       // wall time of the variant alone
	S3BytesRead int64   `json:"s3_bytes_read"` // body bytes received from S3
	CPUSeconds  float64 `json:"cpu_s"`         // user+system CPU of this process during the variant
	Direct      bool    `json:"direct"`        // S3 direct upload (else proxy chunks)
	Parts       int     `json:"parts"`         // upload parts (chunks) of the file
	PartSize    int64   `json:"part_size"`
	// PeakRSSKiB is the process's peak resident set (VmHWM). The maxrss
	// of wait4 is no use here: a child started with vfork (as os/exec
	// does) inherits its parent's peak RSS at exec.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
}

type options struct {
	variant, bucket, key, dracoonURL, name, cpuProfile string
	targets, readAhead, parts                          int
	chunk                                              int64
}

func main() {
	var o options
	flag.StringVar(&o.variant, "variant", "", "raw_s3, sequential, engine or raw_dracoon")
	flag.StringVar(&o.bucket, "bucket", "", "S3 bucket of the object")
	flag.StringVar(&o.key, "key", "", "S3 key of the object")
	flag.StringVar(&o.dracoonURL, "dracoon", "", "DRACOON (emulator) base URL")
	flag.StringVar(&o.name, "name", "", "file name in the target rooms (unique per run)")
	flag.IntVar(&o.targets, "targets", 1, "number of target rooms (engine)")
	flag.Int64Var(&o.chunk, "chunk", conf.DefaultChunkSize, "chunk and part size in bytes")
	flag.IntVar(&o.readAhead, "read-ahead", transfer.DefaultReadAhead, "engine Options.ReadAhead (and raw_s3 concurrency)")
	flag.IntVar(&o.parts, "parts", transfer.DefaultPartsInFlight, "engine Options.PartsInFlight (and raw_dracoon concurrency)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the variant to this file")
	var e emuOptions
	flag.BoolVar(&e.serve, "serve-emulator", false, "serve the DRACOON emulator (--discard-content) instead")
	flag.StringVar(&e.listen, "listen", "127.0.0.1:0", "emulator: listen address")
	flag.StringVar(&e.data, "data", "", "emulator: state directory")
	flag.StringVar(&e.seed, "seed", "", "emulator: seed file")
	flag.StringVar(&e.publicURL, "public-url", "", "emulator: the URL clients reach it at (default http://LISTEN)")
	flag.BoolVar(&e.direct, "s3-direct-upload", true, "emulator: S3 direct uploads (else proxy chunks)")
	flag.DurationVar(&e.finishDelay, "s3-finish-delay", 0, "emulator: how long a completed S3 upload stays \"finishing\"; 0: none, and content is discarded; more: content is stored, as without the benchmark mode")
	flag.Parse()
	if e.serve {
		if err := serveEmulator(e); err != nil {
			fmt.Fprintf(os.Stderr, "benchdriver emulator: %v\n", err)
			os.Exit(1)
		}
		return
	}
	res, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchdriver %s: %v\n", o.variant, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (Result, error) {
	res := Result{Variant: o.variant}
	cfg, err := conf.Load("", nil)
	if err != nil {
		return res, err
	}
	awsCfg, err := awsclient.Config(ctx, cfg.AWS)
	if err != nil {
		return res, err
	}
	src := s3source.New(awsclient.S3(awsCfg, cfg.AWS), s3source.Options{})
	obj, err := src.Head(ctx, o.bucket, o.key)
	if err != nil {
		return res, err
	}
	res.Bytes = obj.Size

	var dc *dracoon.Client
	var rooms []transfer.Target
	if o.variant != "raw_s3" {
		dc, err = dracoon.New(dracoon.Config{BaseURL: o.dracoonURL, Login: emulatortest.ServiceLogin, Password: emulatortest.ServicePassword,
			EncryptionPassword: emulatortest.ServiceEncryptionPassword, ClientID: emulatortest.ClientID, ClientSecret: emulatortest.ClientSecret,
			ChunkSize: o.chunk, PartSize: o.chunk})
		if err != nil {
			return res, err
		}
		if _, err := dc.PrivateKey(ctx); err != nil { // login and unlock before the clock
			return res, err
		}
		si, err := dc.SystemInfo(ctx)
		if err != nil {
			return res, err
		}
		res.Direct = si.UseS3Storage
		for i := range max(o.targets, 1) {
			path := fmt.Sprintf("bench/t%d", i+1)
			n, err := dc.EnsureRoomPath(ctx, emulatortest.ParentRoomID, path)
			if err != nil {
				return res, err
			}
			rooms = append(rooms, transfer.Target{RoomID: n.ID, Path: path})
		}
	}
	var data []byte
	if o.variant == "raw_dracoon" { // ready bytes, touched before the clock
		data = make([]byte, o.chunk)
		rand.NewChaCha8([32]byte{1}).Read(data)
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	switch o.variant {
	case "raw_s3":
		err = rawS3(ctx, src, obj, o)
		res.PartSize = o.chunk
		res.Parts = int((obj.Size + o.chunk - 1) / o.chunk)
	case "sequential":
		res.Parts, res.PartSize, err = sequential(ctx, src, dc, obj, rooms[0], o)
	case "engine":
		_, err = transfer.New(src, transfer.Client(dc), transfer.Options{ReadAhead: o.readAhead, PartsInFlight: o.parts}).
			Transfer(ctx, transfer.Job{ID: o.name, Files: []transfer.File{{Object: obj, Name: o.name}}, Targets: rooms})
	case "raw_dracoon":
		res.Parts, res.PartSize, err = rawDracoon(ctx, dc, obj.Size, rooms[0], data, o)
	default:
		err = fmt.Errorf("unknown variant %q", o.variant)
	}
	res.Seconds = time.Since(start).Seconds()
	res.CPUSeconds = cpuSeconds() - cpu0
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	res.S3BytesRead = src.BytesRead()
	res.PeakRSSKiB = peakRSSKiB()
	return res, err
}

// peakRSSKiB is VmHWM of /proc/self/status, or 0.
func peakRSSKiB() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

type emuOptions struct {
	serve                         bool
	listen, data, seed, publicURL string
	direct                        bool
	finishDelay                   time.Duration
}

// serveEmulator serves the emulator with DiscardContent (or, with an S3
// finish delay, storing content as DRACOON would) until SIGTERM or SIGINT.
func serveEmulator(o emuOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	seed, err := emulator.LoadSeed(o.seed)
	if err != nil {
		return err
	}
	seed.S3DirectUpload = o.direct
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	if o.publicURL == "" {
		o.publicURL = "http://" + ln.Addr().String()
	}
	emu, err := emulator.New(emulator.Config{DataDir: o.data, Seed: seed, PublicURL: o.publicURL,
		DiscardContent: o.finishDelay <= 0, S3FinishDelay: o.finishDelay})
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		_ = emu.Close()
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	return errors.Join(err, emu.Close())
}

// cpuSeconds is the user and system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// rawS3 reads obj in chunks with o.readAhead readers, each with one buffer.
func rawS3(ctx context.Context, src *s3source.Source, obj s3source.Object, o options) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, o.readAhead)
	for i := range o.readAhead {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, o.chunk)
			for {
				off := next.Add(o.chunk) - o.chunk
				if off >= obj.Size {
					return
				}
				if _, err := src.ReadChunk(ctx, obj, off, buf); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sequential is the original's way: one chunk at a time, read, encrypt,
// upload, into one target; then complete.
func sequential(ctx context.Context, src *s3source.Source, dc *dracoon.Client, obj s3source.Object, t transfer.Target, o options) (int, int64, error) {
	key, err := crypto.GenerateFileKey(nil)
	if err != nil {
		return 0, 0, err
	}
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		return 0, 0, err
	}
	u, err := dc.StartUpload(ctx, dracoon.UploadSpec{ParentID: t.RoomID, Name: o.name, Size: obj.Size,
		Resolution: dracoon.ResolveFail})
	if err != nil {
		return 0, 0, err
	}
	buf := make([]byte, u.PartSize())
	segs := make([]crypto.Segment, 0, u.Parts())
	for n := 1; n <= u.Parts(); n++ {
		off, length := u.PartRange(n)
		b := buf[:length]
		if _, err := src.ReadChunk(ctx, obj, off, b); err != nil {
			_ = u.Cancel(ctx)
			return 0, 0, err
		}
		seg, err := sealer.Seal(off, b, b)
		if err != nil {
			_ = u.Cancel(ctx)
			return 0, 0, err
		}
		segs = append(segs, seg)
		if err := u.WritePart(ctx, n, off, b); err != nil {
			return 0, 0, err
		}
	}
	tag, err := sealer.Tag(segs)
	if err != nil {
		return 0, 0, err
	}
	key.Tag = tag
	fk, err := dc.WrapFileKey(ctx, key)
	if err != nil {
		return 0, 0, err
	}
	_, err = u.Complete(ctx, fk)
	return u.Parts(), u.PartSize(), err
}

// rawDracoon uploads size bytes of data (repeated) with o.parts parts at
// once (one at a time for proxy uploads, which go in order), then cancels.
func rawDracoon(ctx context.Context, dc *dracoon.Client, size int64, t transfer.Target, data []byte, o options) (int, int64, error) {
	u, err := dc.StartUpload(ctx, dracoon.UploadSpec{ParentID: t.RoomID, Name: o.name, Size: size,
		Resolution: dracoon.ResolveFail})
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = u.Cancel(context.WithoutCancel(ctx)) }()
	if int64(len(data)) < u.PartSize() {
		return 0, 0, fmt.Errorf("part size %d above the chunk %d", u.PartSize(), len(data))
	}
	workers := 1
	if u.Direct() {
		workers = o.parts
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1))
				if n > u.Parts() {
					return
				}
				off, length := u.PartRange(n)
				if err := u.WritePart(ctx, n, off, data[:length]); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return u.Parts(), u.PartSize(), errors.Join(errs...)
}
