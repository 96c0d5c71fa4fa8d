package crypto_test

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
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

func TestPlainFileKey_ExportJSON_round_trip(t *testing.T) {
	t.Parallel()
	k := newKey(t, 2)
	b, err := k.ExportJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"key":%q,"iv":%q,"version":"AES-256-GCM","tag":null}`,
		base64.StdEncoding.EncodeToString(k.Key), base64.StdEncoding.EncodeToString(k.IV))
	if string(b) != want {
		t.Errorf("ExportJSON = %s, want %s", b, want)
	}
	back, err := crypto.ImportPlainFileKeyJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, back, k)
	if back.Tag != nil {
		t.Errorf("null tag imported as %x", back.Tag)
	}

	k.Tag = bytes.Repeat([]byte{7}, crypto.TagSize)
	if b, err = k.ExportJSON(); err != nil {
		t.Fatal(err)
	}
	if back, err = crypto.ImportPlainFileKeyJSON(b); err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, back, k)
	var viaUnmarshal crypto.PlainFileKey // UnmarshalJSON reads the same format
	if err := json.Unmarshal(b, &viaUnmarshal); err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, viaUnmarshal, k)

	if _, err := (crypto.PlainFileKey{Key: k.Key[:16], IV: k.IV, Version: k.Version}).ExportJSON(); !errors.Is(err, crypto.ErrBadFileKey) {
		t.Errorf("export of a short key: error = %v, want ErrBadFileKey", err)
	}
}

func TestImportPlainFileKeyJSON_validates(t *testing.T) {
	t.Parallel()
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
		{"redacted", `{"key":"[REDACTED]","iv":"8O+rDR/+InRDmWxB","version":"A"}`, crypto.ErrBadFileKey},
		{"not_json", `[1]`, crypto.ErrBadFileKey},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if _, err := crypto.ImportPlainFileKeyJSON([]byte(tc.JSON)); !errors.Is(err, tc.Want) {
				t.Fatalf("ImportPlainFileKeyJSON error = %v, want %v", err, tc.Want)
			}
			var k crypto.PlainFileKey
			if err := json.Unmarshal([]byte(tc.JSON), &k); !errors.Is(err, tc.Want) {
				t.Fatalf("json.Unmarshal error = %v, want %v", err, tc.Want)
			}
		})
	}
}

// keySecrets returns the forms in which key bytes could leak into text.
func keySecrets(key []byte) []string {
	return []string{
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		fmt.Sprint(key[:4])[1:8], // the %v of a byte slice: "[12 34 56 ..."
		fmt.Sprintf("%#v", key[:4])[8:20],
		string(key[:8]),
	}
}

// assertNoSecret fails when out contains a form of key.
func assertNoSecret(t *testing.T, what, out string, key []byte) {
	t.Helper()
	for _, s := range keySecrets(key) {
		if strings.Contains(out, s) {
			t.Errorf("%s = %q contains the key (%q)", what, out, s)
		}
	}
}

func TestPlainFileKey_never_prints_the_key(t *testing.T) {
	t.Parallel()
	k := newKey(t, 3)
	k.Tag = make([]byte, crypto.TagSize)
	want := k.String()
	assertNoSecret(t, "String()", want, k.Key)
	// Exported fields only: fmt cannot call the methods of a value in an
	// unexported field (see the PlainFileKey documentation).
	type logFields struct {
		Key    crypto.PlainFileKey
		KeyPtr *crypto.PlainFileKey
		Keys   []crypto.PlainFileKey
		Map    map[string]crypto.PlainFileKey
	}
	values := []any{k, &k, []crypto.PlainFileKey{k}, struct{ K crypto.PlainFileKey }{k},
		logFields{Key: k, KeyPtr: &k, Keys: []crypto.PlainFileKey{k}, Map: map[string]crypto.PlainFileKey{"k": k}},
		map[string]any{"key": k}, []any{k, &k}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for _, v := range values {
			got := fmt.Sprintf(verb, v)
			if !strings.Contains(got, "REDACTED") {
				t.Errorf("Sprintf(%q, %T) = %q", verb, v, got)
			}
			assertNoSecret(t, fmt.Sprintf("Sprintf(%q, %T)", verb, v), got, k.Key)
		}
	}
	for _, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		if !strings.Contains(string(b), `"key":"[REDACTED]"`) {
			t.Errorf("json.Marshal(%T) = %s", v, b)
		}
		assertNoSecret(t, fmt.Sprintf("json.Marshal(%T)", v), string(b), k.Key)
	}
	type doc struct{ K crypto.PlainFileKey }
	if x, err := xml.Marshal(doc{k}); err != nil || !strings.Contains(string(x), "REDACTED") {
		t.Errorf("xml.Marshal = %s, %v", x, err)
	} else {
		assertNoSecret(t, "xml.Marshal", string(x), k.Key)
	}
	var tm encoding.TextMarshaler = k
	if b, err := tm.MarshalText(); err != nil || string(b) != want {
		t.Errorf("MarshalText = %q, %v; want %q", b, err, want)
	}

	// The redacted JSON of a malformed or zero key must not fail, or a log
	// entry holding it would be lost.
	for _, bad := range []crypto.PlainFileKey{{}, {Key: []byte{1}, Version: "?"}} {
		if b, err := json.Marshal(bad); err != nil || !strings.Contains(string(b), "REDACTED") {
			t.Errorf("json.Marshal(%v) = %s, %v", bad, b, err)
		}
	}
	// What MarshalJSON writes cannot be read back as a key.
	b, _ := json.Marshal(k)
	if _, err := crypto.ImportPlainFileKeyJSON(b); !errors.Is(err, crypto.ErrBadFileKey) {
		t.Errorf("import of the redacted JSON: error = %v, want ErrBadFileKey", err)
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
