package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/pipeline"
)

// runPoison implements "recording-storage poison": the operator's view of
// the poison queue.
func runPoison(ctx context.Context, args []string, s stdio) int {
	const synopsis = "poison [--config FILE] list [--json] | show ID | requeue ID... | requeue --all | purge --yes"
	fs := newFlagSet(s, "poison", synopsis,
		"Lists the messages of the poison queue (id, time, stage, reason), shows one with its payload and metadata,\n"+
			"sends messages back to the stage they failed in, or deletes them all. Nothing leaves the poison queue\n"+
			"until it is requeued or purged.")
	configFile := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	sub := newFlagSet(s, "poison "+rest[0], synopsis, "")
	asJSON := sub.Bool("json", false, "list: one JSON object per line")
	all := sub.Bool("all", false, "requeue: every message")
	yes := sub.Bool("yes", false, "purge: confirm deleting every message")
	if err := sub.Parse(rest[1:]); err != nil {
		return parseExit(err)
	}
	ids := sub.Args()
	switch {
	case rest[0] == "list" && len(ids) == 0,
		rest[0] == "show" && len(ids) == 1,
		rest[0] == "requeue" && (len(ids) > 0) != *all,
		rest[0] == "purge" && len(ids) == 0:
	default:
		fmt.Fprintf(s.err, "poison: bad command line: %s\n", strings.Join(rest, " "))
		fs.Usage()
		return 2
	}
	if rest[0] == "purge" && !*yes {
		fmt.Fprintln(s.err, "poison: purge deletes every message of the poison queue: add --yes to confirm")
		return 2
	}
	cfg, err := conf.Load(*configFile, nil)
	if err != nil {
		return commandError(s, "poison", err)
	}
	t, err := pipeline.NewTransport(ctx, cfg, nil)
	if err != nil {
		return commandError(s, "poison", err)
	}
	defer t.Close()
	q, err := t.PoisonQueue(ctx)
	if err != nil {
		return commandError(s, "poison", err)
	}
	switch rest[0] {
	case "list":
		msgs, err := q.List(ctx)
		if err != nil {
			return commandError(s, "poison", err)
		}
		printPoisonList(s.out, msgs, *asJSON)
	case "show":
		m, err := q.Show(ctx, ids[0])
		if err != nil {
			return commandError(s, "poison", err)
		}
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(m)
	case "requeue":
		done, err := q.Requeue(ctx, ids...)
		for _, m := range done {
			fmt.Fprintf(s.out, "requeued %s to stage %s\n", m.ID, m.Stage)
		}
		if err != nil {
			return commandError(s, "poison", err)
		}
		if len(done) == 0 {
			fmt.Fprintln(s.out, "the poison queue is empty")
		}
	case "purge":
		n, err := q.Purge(ctx)
		fmt.Fprintf(s.out, "deleted %d message(s)\n", n)
		if err != nil {
			return commandError(s, "poison", err)
		}
	}
	return 0
}

// printPoisonList writes one line per message: a table, or JSON lines.
func printPoisonList(w io.Writer, msgs []pipeline.PoisonMessage, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, m := range msgs {
			_ = enc.Encode(m)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tSTAGE\tCLASS\tDELIVERIES\tREASON")
	for _, m := range msgs {
		reason := m.Reason
		if len(reason) > 120 {
			reason = reason[:117] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", m.ID, m.Time.Format(time.RFC3339), m.Stage, m.Class, m.Deliveries, reason)
	}
	_ = tw.Flush()
}
