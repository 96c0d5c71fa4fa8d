package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/recording-storage/recording-storage/pipeline"
)

// runProcess implements "recording-storage process FILE|-": one job message
// through every stage in this process, without queues.
func runProcess(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "process", "process [--config FILE] FILE|-",
		"Runs one job message (the JSON producers send) through every stage in this process over in-memory queues,\n"+
			"and prints the Transferred report as JSON: the files and the rooms they went to.")
	configFile := configFlag(fs)
	data, _, code := parseJobArgs(fs, args, s)
	if code >= 0 {
		return code
	}
	env, err := openEnv(ctx, *configFile, s.err)
	if err != nil {
		return commandError(s, "process", err)
	}
	report, err := pipeline.Process(ctx, pipeline.Options{Config: env.cfg, Steps: env.steps, Logger: env.log}, data)
	if err != nil {
		return commandError(s, "process", err)
	}
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(report); err != nil {
		return commandError(s, "process", fmt.Errorf("cannot print the report: %w", err))
	}
	return 0
}
