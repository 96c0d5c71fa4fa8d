package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/recording-storage/recording-storage/messages"
)

// runValidate implements "recording-storage validate [--now RFC3339] FILE|-".
func runValidate(_ context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "validate", "validate [--now RFC3339] FILE|-", "Parses and validates one job message and prints the normalized job as JSON.")
	nowFlag := fs.String("now", "", "clock for expiration arithmetic, RFC 3339 (default: now)")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			fmt.Fprintf(s.err, "validate: --now: %q is not an RFC 3339 date-time\n", *nowFlag)
			return 2
		}
		now = t
	}
	data, err := readInput(fs.Arg(0), s.in)
	if err != nil {
		fmt.Fprintf(s.err, "validate: %v\n", err)
		return 1
	}
	job, err := messages.ParseJob(data, now)
	if err != nil {
		var verr *messages.ValidationError
		if errors.As(err, &verr) {
			fmt.Fprintf(s.err, "invalid job message (%d problems):\n", len(verr.Fields))
			for _, f := range verr.Fields {
				fmt.Fprintf(s.err, "  %s\n", f)
			}
		} else {
			fmt.Fprintf(s.err, "validate: %v\n", err)
		}
		return 1
	}
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(job); err != nil {
		fmt.Fprintf(s.err, "validate: %v\n", err)
		return 1
	}
	return 0
}

// readInput reads the named file, or standard input for "-". The size is bounded
// a little above the message limit so that ParseJob reports the size itself.
func readInput(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	return io.ReadAll(io.LimitReader(r, messages.MaxJobMessageSize+1))
}
