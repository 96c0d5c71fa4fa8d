package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/pipeline/demo"
)

// runDemo implements "recording-storage demo": the main job end to end on
// the local stack, through the service's queues.
func runDemo(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "demo", "demo [--config FILE] [--size SIZE] [--instance DOMAIN,...] [--members FILE]",
		"Runs the service's stages, puts a generated recording into S3, sends the original service's example message\n"+
			"to the inbound queue and has every room member download, decrypt and check the result (the local stack must run).")
	configFile := configFlag(fs)
	domains := fs.String("instance", "local.recording-storage.test,local-s3.recording-storage.test",
		"comma-separated instance domains (the defaults' DRACOON emulators take proxy chunks and S3 direct parts)")
	membersFile := fs.String("members", "testdata/dracoon/members.json", "room members who download and check the recording")
	example := fs.String("message", "testdata/messages/original-example.json", "the original service's example message")
	bucket := fs.String("bucket", "demo-recordings", "S3 bucket for the generated recording (created if missing)")
	size := conf.ByteSize(256 << 20)
	fs.TextVar(&size, "size", size, "size of the generated recording (e.g. 256MiB)")
	timeout := fs.Duration("timeout", 4*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(s.err, "demo: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	var members []demo.Member
	data, err := os.ReadFile(*membersFile)
	if err == nil {
		err = json.Unmarshal(data, &members)
	}
	if err != nil {
		return commandError(s, "demo", fmt.Errorf("cannot read the members: %w", err))
	}
	env, err := openEnv(ctx, *configFile, s.err)
	if err != nil {
		return commandError(s, "demo", err)
	}
	err = demo.Run(ctx, s.out, demo.Settings{Config: env.cfg, Domains: strings.Split(*domains, ","), Members: members,
		Size: int64(size), Example: *example, Bucket: *bucket, Timeout: *timeout, Logger: env.log, Steps: env.steps,
		Instances: env.instances})
	if err != nil {
		return commandError(s, "demo", err)
	}
	return 0
}
