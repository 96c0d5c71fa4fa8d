package steps_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/emulatortest"
	"github.com/recording-storage/recording-storage/infra/setup"
)

// instances serves one instance configuration per domain.
type instances map[string]conf.Instance

func (m instances) Instance(_ context.Context, domain string) (conf.Instance, error) {
	inst, ok := m[domain]
	if !ok {
		return inst, errors.New("no such instance")
	}
	return inst, nil
}

// TestService_CheckInstance: the check covers the login, the key pair and
// the parent room, and its error names the part that fails.
func TestService_CheckInstance(t *testing.T) {
	seed := emulatortest.FastSeed(t, false)
	plain := emulator.SeedRoom{ID: 90, Name: "Plain", Members: seed.Rooms[0].Members}
	seed.Rooms = append(seed.Rooms, plain)
	emu := emulatortest.Start(t, emulator.Config{DataDir: t.TempDir(), Seed: seed})
	acct := func(mod func(*conf.DracoonAccount)) conf.Instance {
		a := conf.DracoonAccount{BaseURL: emu.URL, Login: emulatortest.ServiceLogin, Password: emulatortest.ServicePassword,
			EncryptionPassword: emulatortest.ServiceEncryptionPassword, ClientID: emulatortest.ClientID,
			ClientSecret: emulatortest.ClientSecret, ParentRoomID: emulatortest.ParentRoomID}
		if mod != nil {
			mod(&a)
		}
		return conf.Instance{Storage: conf.StorageDracoon, Dracoon: a}
	}
	insts := instances{
		"ok.test":             acct(nil),
		"password.test":       acct(func(a *conf.DracoonAccount) { a.Password = "wrong-password" }),
		"encryption.test":     acct(func(a *conf.DracoonAccount) { a.EncryptionPassword = "wrong-encryption" }),
		"plain-parent.test":   acct(func(a *conf.DracoonAccount) { a.ParentRoomID = plain.ID }),
		"missing-parent.test": acct(func(a *conf.DracoonAccount) { a.ParentRoomID = 4711 }),
	}
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	svc := steps.New(conf.Default(), insts, nil, setup.Accounts(conf.Default(), log), nil, log)
	tests := []struct {
		name       string
		domain     string
		wantPrefix string // "" means no error
		secret     string // must not appear in the error
	}{
		{name: "all_parts_work", domain: "ok.test"},
		{name: "unknown_instance", domain: "nowhere.test", wantPrefix: "instance configuration: "},
		{name: "wrong_password", domain: "password.test", wantPrefix: "login: ", secret: "wrong-password"},
		{name: "wrong_encryption_password", domain: "encryption.test", wantPrefix: "key pair: ", secret: "wrong-encryption"},
		{name: "parent_room_not_encrypted", domain: "plain-parent.test", wantPrefix: "parent room 90: "},
		{name: "parent_room_missing", domain: "missing-parent.test", wantPrefix: "parent room 4711: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := svc.CheckInstance(context.Background(), tt.domain)
			switch {
			case tt.wantPrefix == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantPrefix != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantPrefix)):
				t.Fatalf("got %v, want an error starting with %q", err, tt.wantPrefix)
			case tt.secret != "" && strings.Contains(err.Error(), tt.secret):
				t.Fatalf("error %q shows a secret", err)
			}
		})
	}
}
