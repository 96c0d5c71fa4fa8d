package emulatortest

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// TestRegenerateFastSeed writes FastSeedFile from the stack's seed and the
// members' passwords, with fresh key pairs of 1000 iterations.
func TestRegenerateFastSeed(t *testing.T) {
	if os.Getenv("RS_REGENERATE_FAST_SEED") == "" {
		t.Skip("set RS_REGENERATE_FAST_SEED=1 to regenerate " + FastSeedFile)
	}
	raw, err := os.ReadFile(RepoPath("testdata/dracoon/seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var seed emulator.Seed
	if err := json.Unmarshal(raw, &seed); err != nil {
		t.Fatal(err)
	}
	encryption := map[string]string{"service": "service-encryption-password"}
	rawMembers, err := os.ReadFile(RepoPath("testdata/dracoon/members.json"))
	if err != nil {
		t.Fatal(err)
	}
	var members []struct{ Login, EncryptionPassword string }
	if err := json.Unmarshal(rawMembers, &members); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		encryption[m.Login] = m.EncryptionPassword
	}
	for i, u := range seed.Users {
		pw, ok := encryption[u.UserName]
		if !ok {
			continue
		}
		kp, err := crypto.GenerateKeyPair(crypto.KeyPairVersionRSA4096, pw, crypto.WithIterations(1000))
		if err != nil {
			t.Fatal(err)
		}
		rawKP, err := json.Marshal(kp)
		if err != nil {
			t.Fatal(err)
		}
		seed.Users[i].KeyPairs = []json.RawMessage{rawKP}
	}
	out, err := json.MarshalIndent(seed, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(RepoPath(FastSeedFile), append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFastSeed_matches_the_stack_seed: same users and rooms, fast keys that
// unlock with the members' passwords.
func TestFastSeed_matches_the_stack_seed(t *testing.T) {
	fast := FastSeed(t, false)
	slow, err := emulator.LoadSeed(RepoPath("testdata/dracoon/seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fast.Users) != len(slow.Users) || len(fast.Rooms) != len(slow.Rooms) {
		t.Fatalf("fast seed has %d users and %d rooms, the stack's %d and %d", len(fast.Users), len(fast.Rooms), len(slow.Users), len(slow.Rooms))
	}
	for i := range fast.Users {
		if fast.Users[i].UserName != slow.Users[i].UserName || fast.Users[i].Password != slow.Users[i].Password {
			t.Errorf("user %d differs", i)
		}
	}
}
