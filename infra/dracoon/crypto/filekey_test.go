package crypto_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
)

func readLocalJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateFileKey(t *testing.T) {
	t.Parallel()
	a, b := newKey(t, 1), newKey(t, 1)
	if len(a.Key) != crypto.FileKeySize || len(a.IV) != crypto.IVSize || a.Tag != nil || a.Version != crypto.PlainFileKeyVersion {
		t.Fatalf("GenerateFileKey = %v", a)
	}
	if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.IV, b.IV) {
		t.Error("the injected random reader was not used")
	}
	bad := errors.New("no entropy")
	if _, err := crypto.GenerateFileKey(failingReader{bad}); !errors.Is(err, bad) {
		t.Errorf("error = %v, want %v", err, bad)
	}
	if k, err := crypto.GenerateFileKey(nil); err != nil || bytes.Equal(k.Key, a.Key) {
		t.Errorf("GenerateFileKey(nil) = %v, %v", k, err)
	}
}

func TestPlainFileKey_JSON(t *testing.T) {
	t.Parallel()
	k := newKey(t, 2)
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"key":%q,"iv":%q,"version":"AES-256-GCM","tag":null}`,
		base64.StdEncoding.EncodeToString(k.Key), base64.StdEncoding.EncodeToString(k.IV))
	if string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	k.Tag = bytes.Repeat([]byte{7}, crypto.TagSize)
	b, err = json.Marshal(&k)
	if err != nil {
		t.Fatal(err)
	}
	var back crypto.PlainFileKey
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, back, k)

	cases := []struct {
		Name, JSON string
		Want       error
	}{
		{"sdk_label_A", `{"key":"RZIcE5VWziSw4EPsfa40xKGM95LAdC/WMMY84g4aOHo=","iv":"8O+rDR/+InRDmWxB","version":"A","tag":"SsQh5Pws/rmrVC2b+25v9A=="}`, nil},
		{"no_tag", `{"key":"RZIcE5VWziSw4EPsfa40xKGM95LAdC/WMMY84g4aOHo=","iv":"8O+rDR/+InRDmWxB","version":"AES-256-GCM"}`, nil},
		{"bad_version", `{"key":"RZIcE5VWziSw4EPsfa40xKGM95LAdC/WMMY84g4aOHo=","iv":"8O+rDR/+InRDmWxB","version":"RSA-4096/AES-256-GCM"}`, crypto.ErrBadVersion},
		{"short_key", `{"key":"RZIcE5VWziSw4EPsfa40xA==","iv":"8O+rDR/+InRDmWxB","version":"A"}`, crypto.ErrBadFileKey},
		{"short_iv", `{"key":"RZIcE5VWziSw4EPsfa40xKGM95LAdC/WMMY84g4aOHo=","iv":"8O+rDR/+","version":"A"}`, crypto.ErrBadFileKey},
		{"short_tag", `{"key":"RZIcE5VWziSw4EPsfa40xKGM95LAdC/WMMY84g4aOHo=","iv":"8O+rDR/+InRDmWxB","version":"A","tag":"SsQh"}`, crypto.ErrBadFileKey},
		{"not_base64", `{"key":"RZIcE5VWziSw4EPsfa40xKGM95LAdC/WMMY84g4aOHo","iv":"8O+rDR/+InRDmWxB","version":"A"}`, crypto.ErrBadFileKey},
		{"not_json", `[1]`, crypto.ErrBadFileKey},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			var k crypto.PlainFileKey
			if err := json.Unmarshal([]byte(tc.JSON), &k); !errors.Is(err, tc.Want) {
				t.Fatalf("error = %v, want %v", err, tc.Want)
			}
		})
	}
}

func TestPlainFileKey_never_prints_the_key(t *testing.T) {
	t.Parallel()
	k := newKey(t, 3)
	k.Tag = make([]byte, crypto.TagSize)
	want := k.String()
	secrets := []string{base64.StdEncoding.EncodeToString(k.Key), hex.EncodeToString(k.Key), fmt.Sprint(k.Key[:4])[1:8]}
	for _, s := range secrets {
		if strings.Contains(want, s) {
			t.Fatalf("String() = %q contains the key", want)
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		for _, v := range []any{k, &k, []crypto.PlainFileKey{k}, struct{ K crypto.PlainFileKey }{k}} {
			got := fmt.Sprintf(verb, v)
			if !strings.Contains(got, "REDACTED") {
				t.Errorf("Sprintf(%q, %T) = %q", verb, v, got)
			}
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Errorf("Sprintf(%q, %T) = %q contains the key", verb, v, got)
				}
			}
		}
	}
}

func TestWrapFileKey_by_key_version(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Version, WantFileKeyVersion string
	}{
		{crypto.KeyPairVersionA, crypto.FileKeyVersionA},
		{crypto.KeyPairVersionRSA4096, crypto.FileKeyVersionRSA4096},
	}
	keys := map[string]*crypto.PrivateKey{}
	for _, kp := range benchKeyPairs {
		keys[kp.version] = unlockVector(t, kp.private, readPassword(t, kp.password))
	}
	for _, tc := range cases {
		t.Run(tc.Version, func(t *testing.T) {
			priv := keys[tc.Version]
			k := newKey(t, 4)
			if _, err := priv.Public().WrapFileKey(k); !errors.Is(err, crypto.ErrBadFileKey) {
				t.Errorf("wrap without tag: error = %v, want ErrBadFileKey", err)
			}
			k.Tag = bytes.Repeat([]byte{1}, crypto.TagSize)
			fk, err := priv.Public().WrapFileKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if fk.Version != tc.WantFileKeyVersion {
				t.Errorf("file key version %q, want %q", fk.Version, tc.WantFileKeyVersion)
			}
			if raw, _ := base64.StdEncoding.DecodeString(fk.Key); len(raw)*8 != priv.Size() {
				t.Errorf("wrapped key of %d bytes", len(raw))
			}
			back, err := priv.UnwrapFileKey(fk)
			if err != nil {
				t.Fatal(err)
			}
			assertSameKey(t, back, k)
			for v, other := range keys {
				if v == tc.Version {
					continue
				}
				if _, err := other.UnwrapFileKey(fk); !errors.Is(err, crypto.ErrBadVersion) {
					t.Errorf("unwrap with a %s key: error = %v, want ErrBadVersion", v, err)
				}
			}
		})
	}
}
