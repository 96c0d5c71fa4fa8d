package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDemoCommand runs the demo against the DRACOON emulators of the local
// stack, in both upload modes, with a small recording.
func TestDemoCommand(t *testing.T) {
	if os.Getenv("RS_TEST_STACK") == "" {
		t.Fatal("the local stack is not running: run `make test`, or `make stack-up` and `. .stack/env` before `go test`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := dispatch(ctx, []string{"demo", "--size", "3MiB"}, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"encrypted as proxy chunks", "encrypted as S3 direct parts", "alice", "bob"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if got := strings.Count(out.String(), "matches"); got != 4 {
		t.Errorf("%d members' checks passed, want 4 (2 members × 2 modes):\n%s", got, out.String())
	}
	for _, secret := range []string{"service-password", "encryption-password", "local-client-secret"} {
		if strings.Contains(out.String()+errOut.String(), secret) {
			t.Errorf("demo output shows a secret (%s)", secret)
		}
	}
}
