package steps_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/awsclient/awstest"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/infra/setup"
	"github.com/recording-storage/recording-storage/messages"
)

// TestResolve_missing_source_classes: a missing source whose copies the
// rooms do not hold is permanent, naming the rooms; the same with the
// rooms' lookup failing transiently is transient (retried), not poisoned
// as a missing source.
func TestResolve_missing_source_classes(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	cfg.Dracoon.Retries = 1
	client := awstest.S3(t, cfg.AWS)
	bucket := awstest.Bucket(t, client, "steps")
	emu := emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: emulatortest.FastSeed(t, false), S3FinishDelay: -1})
	inst := conf.Instance{Storage: "dracoon", Dracoon: conf.DracoonAccount{BaseURL: emu.URL, Login: emulatortest.ServiceLogin,
		Password: emulatortest.ServicePassword, EncryptionPassword: emulatortest.ServiceEncryptionPassword,
		ClientID: emulatortest.ClientID, ClientSecret: emulatortest.ClientSecret, ParentRoomID: emulatortest.ParentRoomID}}
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	svc := steps.New(cfg, instances{"steps.example": inst}, s3source.New(client, s3source.Options{}), setup.Accounts(cfg, log), nil, log)
	job := &messages.Job{Version: messages.JobVersion, ID: "j", Instance: "steps.example",
		Source: messages.Source{Bucket: bucket, Keys: []string{"gone.mp4"}}, Meeting: messages.Meeting{ID: 9},
		Targets: []messages.Target{{Path: "steps-room"}}}
	ctx := context.Background()

	_, err := svc.Resolve(ctx, job, steps.ResolveOptions{})
	if !errors.Is(err, s3source.ErrNoSuchKey) || !errclass.IsPermanent(err) {
		t.Fatalf("missing source: %v (%v), want permanent", err, errclass.Of(err))
	}
	if want := `rooms "steps-room" hold no copy`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %s", err, want)
	}

	emu.Emu.InjectFault(emulator.FaultRule{Method: "GET", PathPrefix: "/api/v4/nodes", Status: 503, Times: 1000})
	_, err = svc.Resolve(ctx, job, steps.ResolveOptions{})
	if !errors.Is(err, s3source.ErrNoSuchKey) || !errclass.IsTransient(err) {
		t.Fatalf("missing source, rooms not answering: %v (%v), want transient", err, errclass.Of(err))
	}
}

// TestResolve_allowed_sources: an instance that names its sources refuses
// a job naming another bucket, or a key outside its prefix, before anything
// is read, created or removed.
func TestResolve_allowed_sources(t *testing.T) {
	t.Parallel()
	cfg := awstest.Config(t)
	client := awstest.S3(t, cfg.AWS)
	bucket := awstest.Bucket(t, client, "steps-src")
	emu := emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: emulatortest.FastSeed(t, false), S3FinishDelay: -1})
	inst := conf.Instance{Storage: "dracoon", Dracoon: conf.DracoonAccount{BaseURL: emu.URL, Login: emulatortest.ServiceLogin,
		Password: emulatortest.ServicePassword, EncryptionPassword: emulatortest.ServiceEncryptionPassword,
		ClientID: emulatortest.ClientID, ClientSecret: emulatortest.ClientSecret, ParentRoomID: emulatortest.ParentRoomID},
		Sources: []conf.SourceRule{{Bucket: bucket, Prefix: "meetings/"}}}
	if err := inst.Validate(); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	svc := steps.New(cfg, instances{"steps.example": inst}, s3source.New(client, s3source.Options{}), setup.Accounts(cfg, log), nil, log)
	tests := []struct {
		bucket, key string
		refused     bool
	}{
		{bucket, "meetings/a.mp4", false},
		{bucket, "other/a.mp4", true},
		{"someone-elses-bucket", "meetings/a.mp4", true},
	}
	for _, tt := range tests {
		job := &messages.Job{Version: messages.JobVersion, ID: "j", Instance: "steps.example",
			Source: messages.Source{Bucket: tt.bucket, Keys: []string{tt.key}}, Meeting: messages.Meeting{ID: 9},
			Targets: []messages.Target{{Path: "steps-src"}}}
		_, err := svc.Resolve(context.Background(), job, steps.ResolveOptions{})
		refused := err != nil && strings.Contains(err.Error(), "does not take recordings from s3://"+tt.bucket+"/"+tt.key)
		if refused != tt.refused || (refused && !errclass.IsPermanent(err)) {
			t.Errorf("s3://%s/%s: %v (%v), refused %v, want %v", tt.bucket, tt.key, err, errclass.Of(err), refused, tt.refused)
		}
	}
}
