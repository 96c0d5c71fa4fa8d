package stall_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/stall"
)

// slowReader returns one byte per read, after a pause.
type slowReader struct {
	pause time.Duration
	left  int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	p[0] = 'x'
	s.left--
	return 1, nil
}

func TestWatchdog(t *testing.T) {
	t.Parallel()
	if !errclass.IsTransient(stall.ErrStalled) {
		t.Error("ErrStalled is not transient")
	}
	tests := []struct {
		name      string
		d         time.Duration
		pause     time.Duration
		wantStall bool
	}{
		// Five pauses of 30 ms each take longer than the 80 ms of the
		// watchdog together, but each read feeds it.
		{"moving", 80 * time.Millisecond, 30 * time.Millisecond, false},
		{"stalled", 20 * time.Millisecond, 200 * time.Millisecond, true},
		{"never fires", 0, 30 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := stall.Start(tt.d, cancel)
			defer w.Stop()
			closed := false
			rc := w.ReadCloser(io.NopCloser(&slowReader{pause: tt.pause, left: 5}), func() { closed = true })
			_, err := io.Copy(io.Discard, rc)
			if err != nil {
				t.Fatal(err)
			}
			_ = rc.Close()
			if !closed {
				t.Error("Close did not call done")
			}
			if w.Stalled() != tt.wantStall || (ctx.Err() != nil) != tt.wantStall {
				t.Errorf("stalled %v, cancelled %v; want %v", w.Stalled(), ctx.Err() != nil, tt.wantStall)
			}
		})
	}
	// A stopped watchdog fires no more.
	ctx, cancel := context.WithCancel(context.Background())
	w := stall.Start(10*time.Millisecond, cancel)
	w.Stop()
	time.Sleep(50 * time.Millisecond)
	if w.Stalled() || ctx.Err() != nil {
		t.Error("a stopped watchdog fired")
	}
	cancel()
	_, _ = io.Copy(io.Discard, w.Reader(strings.NewReader("abc")))
}
