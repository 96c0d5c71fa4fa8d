package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
)

// leaks are what must never show in logs or output: the local instances'
// secrets (conf/instances.yaml), the stack's S3 secret key, and the shapes
// of tokens, upload URLs, private keys and plain file keys.
var leaks = []struct {
	name string
	re   *regexp.Regexp
}{
	{"password", regexp.MustCompile(`service-password|service-encryption-password`)},
	{"client secret", regexp.MustCompile(`local-client-secret`)},
	{"AWS secret key", regexp.MustCompile(`rs-test-secret-key`)},
	{"token", regexp.MustCompile(`(?i)bearer [a-z0-9]|access_token|refresh_token`)},
	{"upload URL", regexp.MustCompile(`/uploads/[^{\s"]`)},
	{"presigned URL", regexp.MustCompile(`X-Amz-Signature|X-Amz-Credential`)},
	{"private key", regexp.MustCompile(`-----BEGIN|"privateKey"`)},
	{"plain file key", regexp.MustCompile(`"iv"\s*:`)},
}

// TestTransferCommand_no_secrets_at_trace runs a transfer in both upload
// modes with the log at its most verbose (trace, Watermill's and the
// clients' debug entries included) and fails if a secret, a token or a
// secret URL appears in the log or the output.
func TestTransferCommand_no_secrets_at_trace(t *testing.T) {
	t.Setenv("RS_LOGGER_LEVEL", "trace")
	t.Setenv("RS_LOGGER_FORMAT", "json")
	cfg := awstest.Config(t)
	client := awstest.S3(t, cfg.AWS)
	bucket := awstest.Bucket(t, client, "cmd-secrets")
	data := make([]byte, 6<<20+3)
	_, _ = rand.Read(data)
	for _, instance := range []string{localInstance, "local-s3.recording-storage.test"} {
		key := "secrets/" + instance + ".mp4"
		if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
		room := fmt.Sprintf("secrets-%d", time.Now().UnixNano())
		code, out, errOut := run(t, "transfer", "--instance", instance, "--bucket", bucket, "--key", key, "--target", room,
			"--remove-source=true", "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", instance, code, errOut)
		}
		if !strings.Contains(errOut, `"level":"debug"`) && !strings.Contains(errOut, `"level":"trace"`) {
			t.Fatalf("%s: no debug or trace entries: the test does not see the verbose log", instance)
		}
		for _, l := range leaks {
			for _, stream := range []struct{ name, text string }{{"log", errOut}, {"output", out}} {
				if m := l.re.FindString(stream.text); m != "" {
					i := strings.Index(stream.text, m)
					t.Errorf("%s: the %s shows a %s: …%s…", instance, stream.name, l.name, stream.text[max(0, i-120):min(len(stream.text), i+60)])
				}
			}
		}
	}
}
