package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/pipeline"
)

func TestWatermillLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.DebugLevel)
	wl := pipeline.NewWatermillLogger(log.WithField("stage", "parse")).With(watermill.LogFields{"topic": "t"})

	wl.Error("publish failed", errors.New("boom"), watermill.LogFields{"message_uuid": "u1"})
	wl.Info("started", nil)
	wl.Debug("received", watermill.LogFields{"n": 2})
	wl.Trace("dropped at debug level", nil)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3 (trace is below the level):\n%s", len(lines), buf.String())
	}
	want := []map[string]any{
		{"level": "error", "msg": "publish failed", "error": "boom", "message_uuid": "u1", "topic": "t", "stage": "parse"},
		{"level": "info", "msg": "started", "topic": "t", "stage": "parse"},
		{"level": "debug", "msg": "received", "n": float64(2), "topic": "t"},
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, got[k], v)
			}
		}
	}
}
