package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRun_SIGTERM_drains_and_releases runs `recording-storage run` as a
// process with the default 15-minute visibility timeout, transferring a
// long recording over a slow DRACOON, and sends it SIGTERM three times
// mid-transfer, restarting it each time, with stages.max_deliveries 3:
// each run exits 0 within the drain timeout and a few seconds, the job is
// done soon after the last restart (not after a visibility timeout), with
// one file per room and nothing poisoned. Once with a drain timeout that
// the transfer outlasts (it is cancelled and released at the drain's end),
// once with 1 s (the release path at once).
func TestRun_SIGTERM_drains_and_releases(t *testing.T) {
	for _, drain := range []time.Duration{8 * time.Second, time.Second} {
		t.Run(drain.String(), func(t *testing.T) {
			t.Parallel()
			testStopDrains(t, drain)
		})
	}
}

func testStopDrains(t *testing.T, drain time.Duration) {
	// Each 5 MiB chunk takes a second, a transfer about 17 s.
	f := newRunFixture(t, time.Second, map[string]string{"RS_STAGES_MAX_DELIVERIES": "3", "RS_STAGES_DRAIN_TIMEOUT": drain.String()})
	if f.cfg.Stages.VisibilityTimeout != 15*time.Minute {
		t.Fatalf("visibility timeout %s, want the default 15m", f.cfg.Stages.VisibilityTimeout)
	}
	sum, _ := f.put("stop/long.mp4", 80<<20+7)
	rooms := []string{"stop-" + f.id + "/a", "stop-" + f.id + "/b"}
	f.send(4242, "stop/long.mp4", rooms...)

	for i := 1; i <= 3; i++ {
		cmd, stderr := f.start()
		// Mid-transfer: channels open and a few chunks through.
		deadline := time.Now().Add(90 * time.Second)
		for f.emu.Emu.OpenUploads() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("run %d: no transfer started within 90 s:\n%s", i, stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d exited with %v after SIGTERM:\n%s", i, err, stderr)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("run %d did not exit within 30 s of SIGTERM:\n%s", i, stderr)
		}
		if d := time.Since(start); d > drain+10*time.Second {
			t.Errorf("run %d took %s to stop with a %s drain", i, d, drain)
		}
		if !strings.Contains(stderr.String(), "released") {
			t.Errorf("run %d released no message:\n%s", i, stderr)
		}
	}

	// The last restart finishes the job: not after the 15-minute
	// visibility timeout, not poisoned after 3 deliveries.
	_, stderr := f.start()
	svc := f.service()
	deadline := time.Now().Add(2 * time.Minute)
	for _, room := range rooms {
		for {
			files, err := f.roomFiles(svc, room, "long")
			if err == nil && len(files) == 1 {
				if !f.decrypts(svc, files[0].ID, sum) {
					t.Fatalf("room %s: the file does not decrypt to the recording", room)
				}
				break
			}
			if len(files) > 1 {
				t.Fatalf("room %s holds %d files: %+v", room, len(files), files)
			}
			if time.Now().After(deadline) {
				t.Fatalf("room %s: no file within 2 minutes of the last restart (%v):\n%s", room, err, stderr)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if msgs := f.poisoned(); len(msgs) != 0 {
		t.Fatalf("poisoned: %+v", msgs)
	}
}
