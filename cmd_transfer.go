package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/messages"
)

// runTransfer implements "recording-storage transfer": one job, given on the
// command line, through every step in this process.
func runTransfer(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "transfer",
		"transfer --instance DOMAIN --bucket BUCKET --key KEY [--key KEY ...] --target PATH[=EXPIRATION] [--target ...] [--meeting-id N] [--remove-source=true|false] [--json]",
		"Transfers S3 objects into DRACOON rooms of an instance without queues: checks every source, finds or creates\n"+
			"the rooms below the instance's parent room, uploads each key encrypted to each room, hands the file keys to\n"+
			"the rooms' members and removes the sources when asked. Running it again uploads nothing twice. Progress:\n"+
			"a bar per key when standard output is a terminal, log lines (code 15006) otherwise.")
	configFile := configFlag(fs)
	instance := fs.String("instance", "", "instance domain whose DRACOON account and parent room are used (required)")
	bucket := fs.String("bucket", "", "S3 bucket of the recordings (required)")
	var keys, targets listFlag
	fs.Var(&keys, "key", "S3 key of a recording (repeatable, at least one)")
	fs.Var(&targets, "target", "room path below the parent room, optionally =EXPIRATION such as \"=4 years\" (repeatable, at least one)")
	meetingID := fs.Int64("meeting-id", 0, "meeting id, part of the file names (0: none)")
	var remove optionalBool
	fs.Var(&remove, "remove-source", "delete the sources once every room has them (default: s3.remove_after_transfer)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(s.err, "transfer: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	specs := make([]messages.TargetSpec, len(targets))
	for i, t := range targets {
		specs[i] = parseTargetFlag(t)
	}
	job, err := messages.NewJob(*instance, *bucket, keys, specs, *meetingID, time.Now())
	if err != nil {
		return usageError(s, "transfer", err)
	}
	env, err := openEnv(ctx, *configFile, s.err)
	if err != nil {
		return commandError(s, "transfer", err)
	}
	opts := steps.RunOptions{RemoveSource: env.cfg.S3.RemoveAfterTransfer}
	if remove.set {
		opts.RemoveSource = remove.value
	}
	bars := newProgressBars(s.out)
	if bars != nil && !*asJSON {
		opts.Progress = bars.update
	}
	sum, err := env.steps.Run(ctx, job, opts)
	if opts.Progress != nil {
		bars.wait()
	}
	if len(sum.Files) > 0 || err == nil {
		printSummary(s.out, sum, *asJSON)
	}
	if err != nil {
		return commandError(s, "transfer", err)
	}
	return 0
}

// parseTargetFlag splits "PATH[=EXPIRATION]" at its last "=" (expirations
// contain none); "PATH=" means no expiration.
func parseTargetFlag(v string) messages.TargetSpec {
	path, exp, ok := cutLast(v, "=")
	if !ok {
		return messages.TargetSpec{Path: v}
	}
	if strings.TrimSpace(exp) == "" {
		return messages.TargetSpec{Path: path}
	}
	return messages.TargetSpec{Path: path, Expiration: &exp}
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// printSummary writes the summary as text, or as one JSON object.
func printSummary(w io.Writer, sum steps.Summary, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
		return
	}
	fmt.Fprintf(w, "job %s (instance %s, bucket %s)\n", sum.JobID, sum.Instance, sum.Bucket)
	for _, f := range sum.Files {
		state := "kept"
		switch {
		case f.SourceRemoved:
			state = "removed"
		case f.SourceKept != "":
			state = "kept: " + f.SourceKept
		}
		fmt.Fprintf(w, "  %s  %s bytes  source %s\n", f.Key, strconv.FormatInt(f.Size, 10), state)
		for _, t := range f.Targets {
			how := "uploaded"
			if t.Existed {
				how = "already there"
			}
			if t.NameTaken {
				how += " (its name was held by another recording, so under this version's own name)"
			}
			fmt.Fprintf(w, "    -> %s (room %d): file %d %q, %s\n", t.RoomPath, t.RoomID, t.NodeID, t.FileName, how)
		}
	}
	fmt.Fprintf(w, "  file keys: %d set, %d skipped, %d failed\n", sum.Keys.Set, sum.Keys.Skipped, sum.Keys.Failed)
}
