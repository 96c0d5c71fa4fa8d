package main

import (
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
)

// TestDemoCommand runs the demo on the local stack, through the service's
// queues, for both DRACOON emulators (proxy chunks and S3 direct parts),
// with a small recording.
func TestDemoCommand(t *testing.T) {
	awstest.Config(t)
	code, out, errOut := run(t, "demo", "--size", "3MiB", "--bucket", "demo-test")
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"local.recording-storage.test/live now", "local-s3.recording-storage.test/live now",
		"some room/sub-room", "stage     transferred", "decrypted by alice, bob, S3 source removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if got := strings.Count(out, "matches"); got != 8 {
		t.Errorf("%d member checks passed, want 8 (2 members × 2 rooms × 2 instances):\n%s", got, out)
	}
	for _, secret := range []string{"service-password", "encryption-password", "local-client-secret"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("demo output shows a secret (%s)", secret)
		}
	}
}
