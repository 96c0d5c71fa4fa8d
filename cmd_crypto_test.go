package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cryptoVectors holds the official DRACOON SDK test vectors.
const cryptoVectors = "testdata/vectors/dracoon-java-crypto-sdk/"

func cryptoVector(rel string) string { return filepath.FromSlash(cryptoVectors + rel) }

// writeDecoded writes the base64 vector rel, decoded, into dir.
func writeDecoded(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(cryptoVector(rel))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.Base(rel)+".bin")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkPlainFile checks that the file out holds the official vectors'
// plaintext (unit/files/plain_file.b64).
func checkPlainFile(t *testing.T, dir, out string) {
	t.Helper()
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(writeDecoded(t, dir, "unit/files/plain_file.b64"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decrypted %q, want %q", got, want)
	}
}

func runCryptoCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = dispatch(context.Background(), append([]string{"crypto"}, args...), stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}

func TestCrypto_unlock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwNewline := filepath.Join(dir, "pw.txt")
	if err := os.WriteFile(pwNewline, []byte("Qwer1234!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		priv2048 = cryptoVector("unit/data/kp_rsa2048/private_key.json")
		pub2048  = cryptoVector("unit/data/kp_rsa2048/public_key.json")
		pw       = cryptoVector("unit/data/kp_general/pw.txt")
		general  = "unit/data/kp_general/"
	)
	cases := []struct {
		Name       string
		Args       []string
		WantCode   int
		WantStdout []string
		WantStderr string
	}{
		{"matching_pair", []string{"--private-key", priv2048, "--password-file", pw, "--public-key", pub2048}, 0,
			[]string{"version A, RSA 2048 bits", "public key matches"}, ""},
		{"password_with_trailing_newline", []string{"--private-key", priv2048, "--password-file", pwNewline}, 0,
			[]string{"version A, RSA 2048 bits"}, ""},
		{"rsa4096", []string{"--private-key", cryptoVector("unit/data/kp_rsa4096/private_key.json"), "--password-file", pw}, 0,
			[]string{"version RSA-4096, RSA 4096 bits"}, ""},
		{"wrong_password", []string{"--private-key", priv2048, "--password-file", cryptoVector(general + "pw_invalid.txt")}, 1, nil, "wrong password"},
		{"bad_pem", []string{"--private-key", cryptoVector(general + "private_key_bad_pem.json"), "--password-file", pw}, 1, nil, "bad PEM"},
		{"bad_asn1", []string{"--private-key", cryptoVector(general + "private_key_bad_asn1.json"), "--password-file", pw}, 1, nil, "bad ASN.1"},
		{"bad_version", []string{"--private-key", cryptoVector(general + "private_key_bad_version.json"), "--password-file", pw}, 1, nil, "unsupported version"},
		{"mismatch", []string{"--private-key", priv2048, "--password-file", pw, "--public-key", cryptoVector("integration/js/data/kp_rsa2048/public_key.json")}, 1,
			nil, "does not match"},
		{"bad_public_key", []string{"--private-key", priv2048, "--password-file", pw, "--public-key", cryptoVector(general + "public_key_bad_pem.json")}, 1, nil, "bad PEM"},
		{"missing_file", []string{"--private-key", filepath.Join(dir, "nope.json"), "--password-file", pw}, 1, nil, "no such file"},
		{"missing_password_flag", []string{"--private-key", priv2048}, 2, nil, "usage:"},
		{"stray_argument", []string{"--private-key", priv2048, "--password-file", pw, "extra"}, 2, nil, "usage:"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCryptoCLI(append([]string{"unlock"}, tc.Args...)...)
			if code != tc.WantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.WantCode, stderr)
			}
			for _, w := range tc.WantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout %q lacks %q", stdout, w)
				}
			}
			if !strings.Contains(stderr, tc.WantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.WantStderr)
			}
		})
	}
}

func TestCrypto_decrypt_prints_the_plain_file_key(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCryptoCLI("decrypt",
		"--private-key", cryptoVector("unit/data/kp_rsa4096/private_key.json"),
		"--password-file", cryptoVector("unit/data/kp_general/pw.txt"),
		"--file-key", cryptoVector("unit/data/fk_rsa4096_aes256gcm/enc_file_key.json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got, want map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	b, err := os.ReadFile(cryptoVector("unit/data/fk_rsa4096_aes256gcm/plain_file_key.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"key", "iv", "tag"} {
		if got[field] != want[field] {
			t.Errorf("%s = %v, want %v", field, got[field], want[field])
		}
	}
	if v := got["version"]; v != "AES-256-GCM" && v != "A" {
		t.Errorf("version = %v", v)
	}
}

func TestCrypto_decrypt_printed_key_decrypts_the_content(t *testing.T) {
	t.Parallel()
	const unitKey = "unit/data/fk_rsa2048_aes256gcm/"
	code, stdout, stderr := runCryptoCLI("decrypt",
		"--private-key", cryptoVector("unit/data/kp_rsa2048/private_key.json"),
		"--password-file", cryptoVector("unit/data/kp_general/pw.txt"),
		"--file-key", cryptoVector(unitKey+"enc_file_key.json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "REDACTED") || !strings.HasSuffix(stdout, "}\n") {
		t.Fatalf("printed key %q", stdout)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "plain_file_key.json")
	if err := os.WriteFile(keyFile, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	in := writeDecoded(t, dir, "unit/files/aes256gcm/enc_file.b64")
	out := filepath.Join(dir, "plain.bin")
	if code, _, stderr := runCryptoCLI("decrypt", "--plain-file-key", keyFile, "--in", in, "--out", out); code != 0 {
		t.Fatalf("decrypt with the printed key: exit %d: %s", code, stderr)
	}
	checkPlainFile(t, dir, out)
}

func TestCrypto_decrypt_refuses_a_redacted_plain_file_key(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "redacted.json")
	// What json.Marshal of a crypto.PlainFileKey writes, e.g. into a log.
	redacted := `{"key":"[REDACTED]","iv":"8O+rDR/+InRDmWxB","version":"A","tag":"SsQh5Pws/rmrVC2b+25v9A=="}`
	if err := os.WriteFile(keyFile, []byte(redacted), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCryptoCLI("decrypt", "--plain-file-key", keyFile)
	if code != 1 || !strings.Contains(stderr, "redacted") || !strings.Contains(stderr, keyFile) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestCrypto_decrypt_content(t *testing.T) {
	t.Parallel()
	const (
		unitKey  = "unit/data/fk_rsa2048_aes256gcm/"
		unitFile = "unit/files/aes256gcm/enc_file.b64"
	)
	viaPrivate := []string{
		"--private-key", cryptoVector("unit/data/kp_rsa2048/private_key.json"),
		"--password-file", cryptoVector("unit/data/kp_general/pw.txt"),
		"--file-key", cryptoVector(unitKey + "enc_file_key.json"),
	}
	viaPlain := []string{"--plain-file-key", cryptoVector(unitKey + "plain_file_key.json")}
	cases := []struct {
		Name       string
		KeyArgs    []string
		In         string
		WantCode   int
		WantStderr string
	}{
		{"private_key_and_file_key", viaPrivate, unitFile, 0, ""},
		{"plain_file_key", viaPlain, unitFile, 0, ""},
		{"tampered_content", viaPlain, "unit/files/aes256gcm/enc_file_modified.b64", 1, "message authentication failed"},
		{"tampered_tag", []string{"--plain-file-key", cryptoVector("unit/data/fk_general/plain_file_key_bad_tag.json")}, unitFile, 1, "message authentication failed"},
		{"wrong_key_for_content", []string{"--plain-file-key", cryptoVector("integration/js/data/fk_rsa2048_aes256gcm/plain_file_key.json")}, unitFile, 1, "message authentication failed"},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			in := writeDecoded(t, dir, tc.In)
			outDir := filepath.Join(dir, "out")
			if err := os.Mkdir(outDir, 0o700); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(outDir, "recording.mp4")
			code, stdout, stderr := runCryptoCLI(append(append([]string{"decrypt"}, tc.KeyArgs...), "--in", in, "--out", out)...)
			if code != tc.WantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.WantCode, stderr)
			}
			if !strings.Contains(stderr, tc.WantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.WantStderr)
			}
			entries, err := os.ReadDir(outDir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.WantCode != 0 {
				if len(entries) != 0 {
					t.Errorf("failed decryption left %v in the output directory", entries)
				}
				return
			}
			if len(entries) != 1 {
				t.Errorf("output directory holds %v, want only the output", entries)
			}
			checkPlainFile(t, dir, out)
			if !strings.Contains(stdout, "tag verified") {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
}

func TestCrypto_usage_errors(t *testing.T) {
	t.Parallel()
	plain := cryptoVector("unit/data/fk_rsa2048_aes256gcm/plain_file_key.json")
	cases := []struct {
		Name string
		Args []string
		Want int
	}{
		{"no_subcommand", nil, 2},
		{"unknown_subcommand", []string{"encrypt"}, 2},
		{"help", []string{"help"}, 0},
		{"decrypt_without_key", []string{"decrypt"}, 2},
		{"decrypt_in_without_out", []string{"decrypt", "--plain-file-key", plain, "--in", "x"}, 2},
		{"decrypt_out_without_in", []string{"decrypt", "--plain-file-key", plain, "--out", "x"}, 2},
		{"decrypt_both_key_sources", []string{"decrypt", "--plain-file-key", plain, "--file-key", plain}, 2},
		{"decrypt_partial_private_key_source", []string{"decrypt", "--private-key", plain, "--file-key", plain}, 2},
		{"decrypt_in_is_out", []string{"decrypt", "--plain-file-key", plain, "--in", "x", "--out", "./x"}, 2},
		{"decrypt_unknown_flag", []string{"decrypt", "--bogus"}, 2},
		{"decrypt_missing_input", []string{"decrypt", "--plain-file-key", plain, "--in", filepath.Join(t.TempDir(), "none"), "--out", filepath.Join(t.TempDir(), "o")}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			if code, _, stderr := runCryptoCLI(tc.Args...); code != tc.Want {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.Want, stderr)
			}
		})
	}
}

func TestCrypto_decrypt_stops_when_cancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := writeDecoded(t, dir, "unit/files/aes256gcm/enc_file.b64")
	out := filepath.Join(dir, "out.bin")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := runCrypto(ctx, []string{"decrypt", "--plain-file-key", cryptoVector("unit/data/fk_rsa2048_aes256gcm/plain_file_key.json"), "--in", in, "--out", out},
		stdio{out: &stdout, err: &stderr})
	if code != 1 || !strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output exists after cancellation: %v", err)
	}
}
