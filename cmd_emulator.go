package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// emulatorShutdownTimeout bounds the graceful shutdown of the emulator.
const emulatorShutdownTimeout = 10 * time.Second

// runEmulator implements "recording-storage dracoon-emulator --listen
// 127.0.0.1:PORT --data DIR [--seed FILE] [--faults SPEC] [--public-url URL]
// [--discard-content]":
// it serves the local DRACOON API emulator until ctx is cancelled.
func runEmulator(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "dracoon-emulator", "dracoon-emulator --listen 127.0.0.1:PORT --data DIR [--seed FILE] [--faults SPEC] [--public-url URL] [--discard-content] [--tls-cert FILE --tls-key FILE]", "Runs the local DRACOON API emulator until interrupted.")
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on (port 0 picks a free port)")
	dataDir := fs.String("data", "", "directory for the emulator state (required; created if missing)")
	seedFile := fs.String("seed", "", "JSON seed file (see testdata/dracoon/README.md); only what is missing is created")
	faultSpec := fs.String("faults", "", "fault injection, e.g. seed=42,500=0.05,429=0.05,retry-after=1,reset=0.02,latency=5ms,after-reset=0.01,after-502=0.01,after-delay=0.01,after-delay-for=90s,cut=0.01 (cut: the answer's body cut off midway; see testdata/dracoon/README.md)")
	publicURL := fs.String("public-url", "", "scheme://host:port clients use to reach the emulator (default: http://LISTEN-ADDRESS)")
	allowRemote := fs.Bool("allow-non-loopback", false, "allow listening on a non-loopback address (the emulator has no real security)")
	finishDelay := fs.Duration("s3-finish-delay", emulator.DefaultS3FinishDelay, "how long a completed S3 upload stays \"finishing\"")
	accessTTL := fs.Duration("access-token-lifetime", emulator.DefaultAccessTokenLifetime, "OAuth access token lifetime")
	refreshTTL := fs.Duration("refresh-token-lifetime", emulator.DefaultRefreshTokenLifetime, "OAuth refresh token lifetime")
	uploadTTL := fs.Duration("upload-lifetime", emulator.DefaultUploadLifetime, "how long an upload channel left open (neither completed nor cancelled) lives before it is dropped")
	discard := fs.Bool("discard-content", false, "benchmark mode: count and hash uploaded bytes without storing them (downloads of such files fail; no S3 finish delay)")
	verbose := fs.Bool("v", false, "log every request")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) to serve https with, together with --tls-key; clients trust its CA through tls.ca_file")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	var s3Direct *bool
	fs.Func("s3-direct-upload", "override the seed's s3DirectUpload: true or false", func(v string) error {
		b, err := strconv.ParseBool(v)
		s3Direct = &b
		return err
	})
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 0 || *dataDir == "" {
		fs.Usage()
		return 2
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		fmt.Fprintln(s.err, "dracoon-emulator: --tls-cert and --tls-key go together")
		return 2
	}
	if err := checkLoopback(*listen, *allowRemote); err != nil {
		fmt.Fprintf(s.err, "dracoon-emulator: %v\n", err)
		return 2
	}
	faults, err := emulator.ParseFaults(*faultSpec)
	if err != nil {
		fmt.Fprintf(s.err, "dracoon-emulator: --faults: %v\n", err)
		return 2
	}
	var seed *emulator.Seed
	if *seedFile != "" {
		if seed, err = emulator.LoadSeed(*seedFile); err != nil {
			fmt.Fprintf(s.err, "dracoon-emulator: --seed: %v\n", err)
			return 1
		}
	}
	if s3Direct != nil {
		if seed == nil {
			seed = &emulator.Seed{}
		}
		seed.S3DirectUpload = *s3Direct
	}

	log := logrus.New()
	log.SetOutput(s.err)
	log.SetFormatter(&logrus.JSONFormatter{})
	if *verbose {
		log.SetLevel(logrus.DebugLevel)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(s.err, "dracoon-emulator: %v\n", err)
		return 1
	}
	base := *publicURL
	if base == "" {
		scheme := "http"
		if *tlsCert != "" {
			scheme = "https"
		}
		base = scheme + "://" + ln.Addr().String()
	}
	emu, err := emulator.New(emulator.Config{DataDir: *dataDir, Seed: seed, Faults: faults, PublicURL: base,
		S3FinishDelay: *finishDelay, DiscardContent: *discard, AccessTokenLifetime: *accessTTL, RefreshTokenLifetime: *refreshTTL, UploadLifetime: *uploadTTL,
		Logger: log.WithField("component", "dracoon-emulator")})
	if err != nil {
		ln.Close()
		fmt.Fprintf(s.err, "dracoon-emulator: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			served <- srv.ServeTLS(ln, *tlsCert, *tlsKey)
			return
		}
		served <- srv.Serve(ln)
	}()
	log.WithFields(logrus.Fields{"listen_addr": ln.Addr().String(), "public_url": base, "data_dir": *dataDir}).
		Info("dracoon emulator listening")

	code := 0
	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintf(s.err, "dracoon-emulator: %v\n", err)
		code = 1
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), emulatorShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(s.err, "dracoon-emulator: shutdown: %v\n", err)
		code = 1
	}
	if err := emu.Close(); err != nil {
		fmt.Fprintf(s.err, "dracoon-emulator: %v\n", err)
		code = 1
	}
	log.Info("dracoon emulator stopped")
	return code
}

// checkLoopback refuses listen addresses that are not loopback (an empty
// host means all interfaces) unless allowed.
func checkLoopback(addr string, allowed bool) error {
	if allowed {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if conf.IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("--listen %q is not a loopback address; pass --allow-non-loopback to allow it", addr)
}
