package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/netsim"
	"github.com/recording-storage/recording-storage/pipeline"
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

// wrongPassword is the DRACOON password of the instance whose login is
// refused in TestRun_no_secrets_at_trace: it must not show either.
const wrongPassword = "rs-wrong-password-7f3a"

// TestRun_no_secrets_at_trace runs the pipeline as a process (`run`, aws
// transport) at trace level, Watermill's debug and trace entries
// included, with one job that succeeds and one of an instance whose
// DRACOON password is refused (poisoned: its reason names the login), and
// fails if a secret, a token or a secret URL appears in the log, the
// poisoned message, /healthcheck, /readyz, /metrics, or the output of the
// poison, topology and iam-policy commands.
func TestRun_no_secrets_at_trace(t *testing.T) {
	addr, err := netsim.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	f := newRunFixture(t, 0, map[string]string{"RS_LOGGER_LEVEL": "trace", "RS_HTTP_LISTEN": addr,
		"RS_SHARER_INSTANCES": fixtureDomain + ",refused.recording-storage.test"})
	acct := func(password string) map[string]any {
		return map[string]any{"baseUrl": f.emu.URL, "login": emulatortest.ServiceLogin, "password": password,
			"encryptionPassword": emulatortest.ServiceEncryptionPassword, "clientId": emulatortest.ClientID,
			"clientSecret": emulatortest.ClientSecret, "parentRoomId": emulatortest.ParentRoomID}
	}
	raw, _ := json.Marshal(map[string]any{
		fixtureDomain:                    map[string]any{"storage": "dracoon", "dracoon": acct(emulatortest.ServicePassword)},
		"refused.recording-storage.test": map[string]any{"storage": "dracoon", "dracoon": acct(wrongPassword)},
	})
	if err := os.WriteFile(f.instances, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	room := fmt.Sprintf("secrets-run-%s", f.id)
	sum, _ := f.put("secrets/run.mp4", 6<<20+3)
	f.put("secrets/refused.mp4", 1000)
	f.send(7101, "secrets/run.mp4", room)
	f.sendTo("refused.recording-storage.test", 7102, "secrets/refused.mp4", room)
	cmd, stderr := f.start()

	svc := f.service()
	var poisoned []pipeline.PoisonMessage
	deadline := time.Now().Add(2 * time.Minute)
	for done := false; !done; {
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes: poisoned %+v; log:\n%s", poisoned, tail(stderr.String(), 3000))
		}
		time.Sleep(time.Second)
		files, _ := f.roomFiles(svc, room, "run.mp4")
		poisoned = f.poisoned()
		done = len(files) == 1 && f.decrypts(svc, files[0].ID, sum) && len(poisoned) == 1
	}
	if !strings.Contains(poisoned[0].Reason, "login") {
		t.Errorf("poisoned %+v, want the refused login's", poisoned[0])
	}
	texts := map[string]string{}
	for _, path := range []string{"/healthcheck", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		texts[path] = string(b)
	}
	if !strings.Contains(texts["/healthcheck"], "dracoon_error") {
		t.Errorf("/healthcheck does not name DRACOON: %s", texts["/healthcheck"])
	}
	pm, _ := json.Marshal(poisoned)
	texts["poisoned message"] = string(pm)
	for k, v := range f.env {
		t.Setenv(k, v)
	}
	for _, args := range [][]string{{"poison", "list", "--json"}, {"poison", "show", poisoned[0].ID}, {"topology", "--json"},
		{"iam-policy", "--stages", "parse,resolve,rooms,transfer,share,sweep"}} {
		code, out, errOut := run(t, args...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
		texts[strings.Join(args[:2], " ")] = out + errOut
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	texts["log"] = stderr.String()
	if !strings.Contains(texts["log"], `"level":"trace"`) || !strings.Contains(texts["log"], "message_uuid") {
		t.Fatalf("no trace entries of Watermill's: the test does not see the verbose log:\n%s", tail(texts["log"], 2000))
	}
	wrong := regexp.MustCompile(wrongPassword)
	for name, text := range texts {
		for _, l := range append(leaks, struct {
			name string
			re   *regexp.Regexp
		}{"refused password", wrong}) {
			if m := l.re.FindString(text); m != "" {
				i := strings.Index(text, m)
				t.Errorf("the %s shows a %s: …%s…", name, l.name, text[max(0, i-120):min(len(text), i+60)])
			}
		}
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string { return s[max(0, len(s)-n):] }
