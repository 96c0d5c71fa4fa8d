package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/pipeline"
)

// TestPoisonCommands runs the parse stage with `run`, sends it a message
// that is not JSON, and drives the poison commands as an operator would:
// list (table and JSON), show, requeue (it fails again and comes back),
// purge. Also submit: a valid job goes to the inbound queue, an invalid one
// is refused before it.
func TestPoisonCommands(t *testing.T) {
	awstest.Config(t)
	id := watermill.NewShortUUID()[:8]
	for k, v := range map[string]string{"RS_STAGES_PARSE_QUEUE": "cli-jobs-" + id, "RS_STAGES_POISON": "cli-poison-" + id,
		"RS_STAGES_RESOLVE_TOPIC": "cli-parsed-" + id, "RS_STAGES_RETRY_DELAY": "1s", "RS_HTTP_LISTEN": "127.0.0.1:0",
		"RS_LOGGER_LEVEL": "warn"} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		code, _, errOut := runCtx(ctx, "run", "--stages", "parse")
		if code != 0 && ctx.Err() == nil {
			t.Errorf("run exited %d: %s", code, errOut)
		}
		done <- code
	}()
	defer func() {
		cancel()
		<-done
	}()

	cfg, err := conf.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := setUpTransport(t, cfg)
	pub, err := tr.InboundPublisher()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(cfg.Stages.Parse.Queue, message.NewMessage(watermill.NewUUID(), []byte("not json"))); err != nil {
		t.Fatal(err)
	}

	list := func(want int) []pipeline.PoisonMessage {
		t.Helper()
		var msgs []pipeline.PoisonMessage
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, out, errOut := run(t, "poison", "list", "--json")
			if code != 0 {
				t.Fatalf("poison list exited %d: %s", code, errOut)
			}
			msgs = msgs[:0]
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if line == "" {
					continue
				}
				var m pipeline.PoisonMessage
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("list line %q: %v", line, err)
				}
				msgs = append(msgs, m)
			}
			if len(msgs) == want || time.Now().After(deadline) {
				return msgs
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	msgs := list(1)
	if len(msgs) != 1 || msgs[0].Stage != "parse" || !strings.Contains(msgs[0].Reason, "invalid JSON") || msgs[0].Payload != "not json" {
		t.Fatalf("poison list: %+v", msgs)
	}
	code, out, _ := run(t, "poison", "list")
	if code != 0 || !strings.Contains(out, msgs[0].ID) || !strings.Contains(out, "STAGE") {
		t.Errorf("poison list (table): %d %s", code, out)
	}
	code, out, _ = run(t, "poison", "show", msgs[0].ID)
	if code != 0 || !strings.Contains(out, `"payload": "not json"`) {
		t.Errorf("poison show: %d %s", code, out)
	}
	if code, _, errOut := run(t, "poison", "show", "no-such-id"); code != 1 || !strings.Contains(errOut, "no such message") {
		t.Errorf("poison show of an unknown id: %d %s", code, errOut)
	}
	code, out, errOut := run(t, "poison", "requeue", msgs[0].ID)
	if code != 0 || !strings.Contains(out, "requeued "+msgs[0].ID+" to stage parse") {
		t.Fatalf("poison requeue: %d %s %s", code, out, errOut)
	}
	again := list(1) // parsed again, failed again, poisoned again
	if len(again) != 1 || again[0].ID == msgs[0].ID {
		t.Fatalf("after requeue: %+v", again)
	}
	if code, _, _ := run(t, "poison", "purge"); code != 2 {
		t.Errorf("purge without --yes exited %d", code)
	}
	if code, out, _ := run(t, "poison", "purge", "--yes"); code != 0 || !strings.Contains(out, "deleted 1") {
		t.Errorf("purge: %d %s", code, out)
	}

	// submit: valid and invalid jobs.
	bad := t.TempDir() + "/bad.json"
	_ = os.WriteFile(bad, []byte(`{"storage":{"type":"s3"}}`), 0o600)
	if code, _, errOut := run(t, "submit", bad); code != 2 || !strings.Contains(errOut, `storage.type: must be "dracoon"`) {
		t.Errorf("submit of a bad job: %d %s", code, errOut)
	}
	code, out, errOut = run(t, "submit", "testdata/messages/original-example.json")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("to %s", cfg.Stages.Parse.Queue)) {
		t.Errorf("submit: %d %s %s", code, out, errOut)
	}
}
