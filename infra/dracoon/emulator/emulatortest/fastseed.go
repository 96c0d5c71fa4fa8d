package emulatortest

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// FastSeedFile is the seed of the local stack (testdata/dracoon/seed.json)
// with the same users, passwords and rooms, but key pairs protected by 1000
// PBKDF2 iterations instead of 1.3 million, so that tests unlock them in
// milliseconds. Regenerate it with
//
//	RS_REGENERATE_FAST_SEED=1 go test -run TestRegenerateFastSeed ./infra/dracoon/emulator/emulatortest/
const FastSeedFile = "testdata/dracoon/fast-seed.json"

// The service account of FastSeedFile (the same as the local stack's seed)
// and the encrypted parent room it manages.
const (
	ServiceLogin              = "service"
	ServicePassword           = "service-password"
	ServiceEncryptionPassword = "service-encryption-password"
	ClientID                  = "recording-storage"
	ClientSecret              = "local-client-secret"
	ParentRoomID              = 1
)

// FastSeed loads FastSeedFile and sets its S3 direct upload mode.
func FastSeed(tb testing.TB, s3Direct bool) *emulator.Seed {
	tb.Helper()
	seed, err := emulator.LoadSeed(RepoPath(FastSeedFile))
	if err != nil {
		tb.Fatal(err)
	}
	seed.S3DirectUpload = s3Direct
	return seed
}

// RepoPath returns the absolute path of a file given relative to the
// repository root.
func RepoPath(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", rel)
}
