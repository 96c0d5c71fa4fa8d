package crypto_test

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
)

// fastIterations keeps generated test keys cheap to unlock.
const fastIterations = 1000

func TestGenerateKeyPair_round_trip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Name, Version, WantVersion string
		Bits                       int
	}{
		{"version_A", crypto.KeyPairVersionA, crypto.KeyPairVersionA, 2048},
		{"default_is_RSA-4096", "", crypto.KeyPairVersionRSA4096, 4096},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && tc.Bits > 2048 {
				t.Skip("RSA-4096 generation skipped in -short mode")
			}
			const password = "Geheim-ä-🐛"
			kp, err := crypto.GenerateKeyPair(tc.Version, password, crypto.WithIterations(fastIterations))
			if err != nil {
				t.Fatal(err)
			}
			if kp.PrivateKeyContainer.Version != tc.WantVersion || kp.PublicKeyContainer.Version != tc.WantVersion {
				t.Errorf("versions %q/%q, want %q", kp.PrivateKeyContainer.Version, kp.PublicKeyContainer.Version, tc.WantVersion)
			}
			if !strings.HasPrefix(kp.PrivateKeyContainer.PrivateKey, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n") ||
				!strings.HasPrefix(kp.PublicKeyContainer.PublicKey, "-----BEGIN PUBLIC KEY-----\n") {
				t.Error("containers do not hold the expected PEM blocks")
			}
			priv, err := crypto.Unlock(kp.PrivateKeyContainer, password)
			if err != nil {
				t.Fatal(err)
			}
			if priv.Version() != tc.WantVersion || priv.Size() != tc.Bits {
				t.Errorf("unlocked %s/%d bits, want %s/%d", priv.Version(), priv.Size(), tc.WantVersion, tc.Bits)
			}
			if err := priv.CheckPair(kp.PublicKeyContainer); err != nil {
				t.Error(err)
			}
			_, err = crypto.Unlock(kp.PrivateKeyContainer, "Geheim-a-🐛")
			if !errors.Is(err, crypto.ErrWrongPassword) {
				t.Errorf("wrong password: error = %v, want ErrWrongPassword", err)
			}
		})
	}
}

func TestGenerateKeyPair_refuses_bad_input(t *testing.T) {
	t.Parallel()
	if _, err := crypto.GenerateKeyPair("RSA-1024", "pw", crypto.WithIterations(1)); !errors.Is(err, crypto.ErrBadVersion) {
		t.Errorf("bad version: error = %v, want ErrBadVersion", err)
	}
	if _, err := crypto.GenerateKeyPair(crypto.KeyPairVersionA, "", crypto.WithIterations(1)); err == nil {
		t.Error("empty password accepted")
	}
	bad := errors.New("no entropy")
	_, err := crypto.GenerateKeyPair(crypto.KeyPairVersionA, "pw", crypto.WithRandom(failingReader{bad}))
	if !errors.Is(err, bad) {
		t.Errorf("failing random: error = %v, want %v", err, bad)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestUnlock_openssl_keys_with_other_PBES2_parameters(t *testing.T) {
	t.Parallel()
	var pub crypto.PublicKeyContainer
	readLocalJSON(t, "openssl_public_key.json", &pub)
	for _, name := range []string{"openssl_sha256_aes256_private_key.json", "openssl_sha512_aes128_private_key.json"} {
		t.Run(name, func(t *testing.T) {
			var c crypto.PrivateKeyContainer
			readLocalJSON(t, name, &c)
			priv, err := crypto.Unlock(c, "TopSecret1234!")
			if err != nil {
				t.Fatal(err)
			}
			if err := priv.CheckPair(pub); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnlock_refuses_versions_that_do_not_fit_the_key(t *testing.T) {
	t.Parallel()
	var priv crypto.PrivateKeyContainer
	readJSON(t, unitKP2048, &priv)
	priv.Version = crypto.KeyPairVersionRSA4096
	if _, err := crypto.Unlock(priv, readPassword(t, unitPW)); !errors.Is(err, crypto.ErrBadVersion) {
		t.Errorf("Unlock: error = %v, want ErrBadVersion", err)
	}
	var pub crypto.PublicKeyContainer
	readJSON(t, unitData+"kp_rsa2048/public_key.json", &pub)
	pub.Version = crypto.KeyPairVersionRSA4096
	if _, err := crypto.ParsePublicKey(pub); !errors.Is(err, crypto.ErrBadVersion) {
		t.Errorf("ParsePublicKey: error = %v, want ErrBadVersion", err)
	}
}

func TestPrivateKey_CheckPair_detects_another_key(t *testing.T) {
	t.Parallel()
	priv := unlockVector(t, unitKP2048, readPassword(t, unitPW))
	var other crypto.PublicKeyContainer
	readJSON(t, "dracoon-java-crypto-sdk/integration/js/data/kp_rsa2048/public_key.json", &other)
	if err := priv.CheckPair(other); !errors.Is(err, crypto.ErrKeyMismatch) {
		t.Errorf("error = %v, want ErrKeyMismatch", err)
	}
}

func TestPrivateKey_never_prints_its_secret(t *testing.T) {
	t.Parallel()
	priv := unlockVector(t, unitKP2048, readPassword(t, unitPW))
	want := priv.String()
	if !strings.Contains(want, "REDACTED") {
		t.Errorf("String() = %q", want)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		for _, v := range []any{priv, *priv} {
			if got := fmt.Sprintf(verb, v); got != want {
				t.Errorf("Sprintf(%q, %T) = %q, want %q", verb, v, got, want)
			}
		}
		type fields struct {
			Ptr *crypto.PrivateKey
			Val crypto.PrivateKey
		}
		if got := fmt.Sprintf(verb, fields{priv, *priv}); strings.Count(got, want) != 2 {
			t.Errorf("Sprintf(%q, struct) = %q, want the redacted description twice", verb, got)
		}
	}
	wantJSON, _ := json.Marshal(want)
	for _, v := range []any{priv, *priv} {
		if b, err := json.Marshal(v); err != nil || string(b) != string(wantJSON) {
			t.Errorf("json.Marshal(%T) = %s, %v; want %s", v, b, err, wantJSON)
		}
	}
	b, err := json.Marshal(map[string]any{"ptr": priv, "val": *priv, "nil": (*crypto.PrivateKey)(nil)})
	if err != nil || string(b) != fmt.Sprintf(`{"nil":null,"ptr":%s,"val":%s}`, wantJSON, wantJSON) {
		t.Errorf("json.Marshal(map) = %s, %v", b, err)
	}
	var tm encoding.TextMarshaler = priv
	if b, err := tm.MarshalText(); err != nil || string(b) != want {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	if got := fmt.Sprint(crypto.PrivateKey{}); !strings.Contains(got, "REDACTED") {
		t.Errorf("zero PrivateKey prints as %q", got)
	}
}

func TestUnlock_errors_do_not_contain_the_password(t *testing.T) {
	t.Parallel()
	var c crypto.PrivateKeyContainer
	readJSON(t, unitKP2048, &c)
	const pw = "very-secret-guess"
	_, err := crypto.Unlock(c, pw)
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Fatalf("error = %v", err)
	}
}
