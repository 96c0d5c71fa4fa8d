package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/pipeline"
)

// runTopology implements "recording-storage topology": every topic, queue,
// subscription and queue attribute the configuration implies, and what each
// stage reads, publishes and needs.
func runTopology(_ context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "topology", "topology [--config FILE] [--json]",
		"Prints the topics, queues (with their attributes), subscriptions and each stage's inputs, outputs and needs that the configuration implies (aws transport); creates and changes nothing.")
	configFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(s.err, "topology: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	cfg, err := conf.Load(*configFile, nil)
	if err != nil {
		return commandError(s, "topology", errclass.AsPermanent(err))
	}
	topo := pipeline.NewTopology(cfg)
	if *asJSON {
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(topo); err != nil {
			return commandError(s, "topology", err)
		}
		return 0
	}
	w := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC")
	for _, t := range topo.Topics {
		fmt.Fprintln(w, t)
	}
	fmt.Fprintln(w, "\nQUEUE\tREADER\tSUBSCRIBED TO (raw delivery)\tATTRIBUTES")
	for _, q := range topo.Queues {
		from := "-"
		for _, sub := range topo.Subscriptions {
			if sub.Queue == q.Name {
				from = sub.Topic
			}
		}
		name := q.Name
		if q.URL != "" {
			name = q.URL
		}
		var attrs []string
		for _, k := range slices.Sorted(maps.Keys(q.Attributes)) {
			attrs = append(attrs, k+"="+q.Attributes[k])
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, q.Reader, from, strings.Join(attrs, " "))
	}
	fmt.Fprintln(w, "\nSTAGE\tREADS\tPAYLOADS\tWORKERS\tPUBLISHES\tNEEDS\tHEALTH")
	for _, st := range topo.Stages {
		needs := make([]string, len(st.Needs))
		for i, n := range st.Needs {
			needs[i] = string(n)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", st.Stage, orDash(st.Queues), orDash(st.Payloads), st.Workers,
			orDash(st.Publishes), orDash(needs), st.Health)
	}
	if err := w.Flush(); err != nil {
		return commandError(s, "topology", err)
	}
	return 0
}

// orDash joins list with commas, "-" when it is empty.
func orDash(list []string) string {
	if len(list) == 0 {
		return "-"
	}
	return strings.Join(list, ",")
}

// runIAMPolicy implements "recording-storage iam-policy": the
// least-privilege IAM policy of a process running the given stages.
func runIAMPolicy(_ context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "iam-policy", "iam-policy [--config FILE] --stages S,... [--bucket NAME ...]",
		"Prints the least-privilege IAM policy (JSON) of a process running the given stages with this configuration: SQS and SNS on exactly their queues and topics, S3 reads and deletes of recordings; with stages.create_resources true also the creation of every topic, queue and subscription of the configuration.")
	configFile := configFlag(fs)
	stageList := fs.String("stages", "", "comma-separated stages the process runs (required)")
	var buckets listFlag
	fs.Var(&buckets, "bucket", "a bucket the recordings come from (repeatable; default: any bucket)")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(s.err, "iam-policy: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *stageList == "" {
		fmt.Fprintln(s.err, "iam-policy: --stages is required")
		fs.Usage()
		return 2
	}
	stages, err := pipeline.SelectStages(strings.Split(*stageList, ","))
	if err != nil {
		return usageError(s, "iam-policy", err)
	}
	cfg, err := conf.Load(*configFile, nil)
	if err != nil {
		return commandError(s, "iam-policy", errclass.AsPermanent(err))
	}
	p, err := pipeline.NewIAMPolicy(cfg, stages, buckets)
	if err != nil {
		return commandError(s, "iam-policy", errclass.AsPermanent(err))
	}
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return commandError(s, "iam-policy", err)
	}
	return 0
}
