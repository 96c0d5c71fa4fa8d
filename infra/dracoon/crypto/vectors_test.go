package crypto_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// vectorDir holds the official DRACOON SDK test vectors (Apache-2.0, see its
// README.md and LICENSE).
const vectorDir = "../../../testdata/vectors"

type vectorIndex struct {
	KeyPairs []struct {
		PrivateKey            string `json:"privateKey"`
		PublicKey             string `json:"publicKey"`
		PasswordFile          string `json:"passwordFile"`
		Password              string `json:"password"`
		PasswordBytesEncoding string `json:"passwordBytesEncoding"`
		Version               string `json:"version"`
		Iterations            int    `json:"iterations"`
	} `json:"keyPairs"`
	FileKeys []struct {
		EncryptedFileKey      string `json:"encryptedFileKey"`
		PlainFileKey          string `json:"plainFileKey"`
		DecryptWithPrivateKey string `json:"decryptWithPrivateKey"`
	} `json:"fileKeys"`
	FileContents []struct {
		Plain        string `json:"plain"`
		Encrypted    string `json:"encrypted"`
		PlainFileKey string `json:"plainFileKey"`
		Expect       string `json:"expect"`
	} `json:"fileContents"`
}

func loadIndex(t *testing.T) vectorIndex {
	t.Helper()
	var idx vectorIndex
	readJSON(t, "index.json", &idx)
	if len(idx.KeyPairs) == 0 || len(idx.FileKeys) == 0 || len(idx.FileContents) == 0 {
		t.Fatal("index.json lists no vectors")
	}
	return idx
}

// vectorPath returns the path of a vector, or "" when index.json points
// outside the copied tree (the dco3 fixture is not shipped with it).
func vectorPath(rel string) string {
	if strings.Contains(rel, "#") {
		return ""
	}
	p := filepath.Join(vectorDir, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func readVector(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t testing.TB, rel string, v any) {
	t.Helper()
	if err := json.Unmarshal(readVector(t, rel), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// readPassword reads a password file: UTF-8 text, one trailing newline ignored.
func readPassword(t testing.TB, rel string) string {
	t.Helper()
	s := string(readVector(t, rel))
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

func readB64(t *testing.T, rel string) []byte {
	t.Helper()
	s := strings.Join(strings.Fields(string(readVector(t, rel))), "")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return b
}

func readPlainFileKey(t *testing.T, rel string) crypto.PlainFileKey {
	t.Helper()
	var k crypto.PlainFileKey
	readJSON(t, rel, &k)
	return k
}

// passwordFor returns the password of the key pair whose private key is at rel.
func passwordFor(t *testing.T, idx vectorIndex, rel string) string {
	t.Helper()
	for _, kp := range idx.KeyPairs {
		if kp.PrivateKey == rel {
			return readPassword(t, kp.PasswordFile)
		}
	}
	t.Fatalf("no key pair in index.json for %s", rel)
	return ""
}

func unlockVector(t testing.TB, rel, password string) *crypto.PrivateKey {
	t.Helper()
	var c crypto.PrivateKeyContainer
	readJSON(t, rel, &c)
	k, err := crypto.Unlock(c, password)
	if err != nil {
		t.Fatalf("unlock %s: %v", rel, err)
	}
	return k
}

func TestVectors_key_pairs_unlock_and_match(t *testing.T) {
	idx := loadIndex(t)
	for _, kp := range idx.KeyPairs {
		t.Run(kp.PrivateKey, func(t *testing.T) {
			if vectorPath(kp.PrivateKey) == "" {
				t.Skipf("fixture %s is not part of the copied vectors", kp.PrivateKey)
			}
			// The 1.3M-iteration keys take ~0.4 s each: run them side by side.
			t.Parallel()
			if testing.Short() && kp.Iterations > 100_000 {
				t.Skip("slow PBKDF2 vector skipped in -short mode")
			}
			pw := kp.Password
			if kp.PasswordFile != "" {
				pw = readPassword(t, kp.PasswordFile)
			}
			priv := unlockVector(t, kp.PrivateKey, pw)
			if priv.Version() != kp.Version {
				t.Errorf("Version() = %q, want %q", priv.Version(), kp.Version)
			}
			var pubC crypto.PublicKeyContainer
			readJSON(t, kp.PublicKey, &pubC)
			pub, err := crypto.ParsePublicKey(pubC)
			if err != nil {
				t.Fatal(err)
			}
			if !priv.Matches(pub) {
				t.Error("private key does not match its public key")
			}
			if err := priv.CheckPair(pubC); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestVectors_file_keys_unwrap_and_rewrap(t *testing.T) {
	idx := loadIndex(t)
	for _, fk := range idx.FileKeys {
		t.Run(fk.EncryptedFileKey, func(t *testing.T) {
			t.Parallel()
			priv := unlockVector(t, fk.DecryptWithPrivateKey, passwordFor(t, idx, fk.DecryptWithPrivateKey))
			var enc crypto.FileKey
			readJSON(t, fk.EncryptedFileKey, &enc)
			want := readPlainFileKey(t, fk.PlainFileKey)

			got, err := priv.UnwrapFileKey(enc)
			if err != nil {
				t.Fatal(err)
			}
			assertSameKey(t, got, want)

			rewrapped, err := priv.Public().WrapFileKey(got)
			if err != nil {
				t.Fatal(err)
			}
			if rewrapped.Version != enc.Version || rewrapped.IV != enc.IV || rewrapped.Tag != enc.Tag {
				t.Errorf("rewrapped = %+v, want version, iv and tag of %+v", rewrapped, enc)
			}
			again, err := priv.UnwrapFileKey(rewrapped)
			if err != nil {
				t.Fatal(err)
			}
			assertSameKey(t, again, want)
		})
	}
}

func assertSameKey(t *testing.T, got, want crypto.PlainFileKey) {
	t.Helper()
	if !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.IV, want.IV) || !bytes.Equal(got.Tag, want.Tag) {
		t.Errorf("plain file key = %v, want %v (keys equal: %v)", got, want, bytes.Equal(got.Key, want.Key))
	}
}

func TestVectors_contents_decrypt_and_reencrypt(t *testing.T) {
	idx := loadIndex(t)
	for _, fc := range idx.FileContents {
		t.Run(fc.Encrypted, func(t *testing.T) {
			t.Parallel()
			key := readPlainFileKey(t, fc.PlainFileKey)
			plain, enc := readB64(t, fc.Plain), readB64(t, fc.Encrypted)
			tampered := fc.Expect != ""

			var out bytes.Buffer
			n, err := crypto.DecryptStream(key, &out, bytes.NewReader(enc))
			if tampered {
				if !errors.Is(err, crypto.ErrAuthentication) {
					t.Fatalf("DecryptStream error = %v, want ErrAuthentication", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(enc)) || !bytes.Equal(out.Bytes(), plain) {
				t.Fatalf("decrypted %d bytes %q, want %q", n, out.Bytes(), plain)
			}

			// Segment by segment, in reverse order, must give the same. A
			// key with a tag cannot seal: re-encrypt with a copy without.
			fresh := key
			fresh.Tag = nil
			sealer, err := crypto.NewSealer(fresh)
			if err != nil {
				t.Fatal(err)
			}
			ct := make([]byte, len(plain))
			var segs []crypto.Segment
			for off := (len(plain) - 1) &^ 15; off >= 0; off -= 16 {
				seg, err := sealer.Seal(int64(off), ct[off:], plain[off:min(off+16, len(plain))])
				if err != nil {
					t.Fatal(err)
				}
				segs = append(segs, seg)
			}
			tag, err := sealer.Tag(segs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ct, enc) || !bytes.Equal(tag, key.Tag) {
				t.Errorf("re-encrypted content or tag differs from the SDK's")
			}
		})
	}
}

// badInput is a *_bad_* vector (or a wrong password) and how it must fail.
type badInput struct {
	Name string
	File string // the bad file, relative to vectorDir
	Run  func(t *testing.T, idx vectorIndex, file string) error
	Want error
}

const (
	unitData   = "dracoon-java-crypto-sdk/unit/data/"
	unitKP2048 = unitData + "kp_rsa2048/private_key.json"
	unitPW     = unitData + "kp_general/pw.txt"
	unitFile   = "dracoon-java-crypto-sdk/unit/files/aes256gcm/enc_file.b64"
)

func unlockFile(t *testing.T, _ vectorIndex, file string) error {
	var c crypto.PrivateKeyContainer
	readJSON(t, file, &c)
	_, err := crypto.Unlock(c, readPassword(t, unitPW))
	return err
}

func parsePublicFile(t *testing.T, _ vectorIndex, file string) error {
	var c crypto.PublicKeyContainer
	readJSON(t, file, &c)
	_, err := crypto.ParsePublicKey(c)
	return err
}

func unwrapFile(t *testing.T, idx vectorIndex, file string) error {
	priv := unlockVector(t, unitKP2048, passwordFor(t, idx, unitKP2048))
	var fk crypto.FileKey
	readJSON(t, file, &fk)
	_, err := priv.UnwrapFileKey(fk)
	return err
}

// unwrapAndDecrypt unwraps an encrypted file key that unwraps fine and
// decrypts the unit file content with it.
func unwrapAndDecrypt(t *testing.T, idx vectorIndex, file string) error {
	priv := unlockVector(t, unitKP2048, passwordFor(t, idx, unitKP2048))
	var fk crypto.FileKey
	readJSON(t, file, &fk)
	k, err := priv.UnwrapFileKey(fk)
	if err != nil {
		t.Fatalf("unwrap: %v", err)
	}
	_, err = crypto.DecryptStream(k, new(bytes.Buffer), bytes.NewReader(readB64(t, unitFile)))
	return err
}

func parsePlainFile(t *testing.T, _ vectorIndex, file string) error {
	var k crypto.PlainFileKey
	return json.Unmarshal(readVector(t, file), &k)
}

func decryptWithPlainFile(t *testing.T, _ vectorIndex, file string) error {
	k := readPlainFileKey(t, file)
	_, err := crypto.DecryptStream(k, new(bytes.Buffer), bytes.NewReader(readB64(t, unitFile)))
	return err
}

func TestVectors_bad_inputs_are_refused(t *testing.T) {
	idx := loadIndex(t)
	cases := []badInput{
		{"private_key_bad_asn1", unitData + "kp_general/private_key_bad_asn1.json", unlockFile, crypto.ErrBadASN1},
		{"private_key_bad_pem", unitData + "kp_general/private_key_bad_pem.json", unlockFile, crypto.ErrBadPEM},
		{"private_key_bad_value", unitData + "kp_general/private_key_bad_value.json", unlockFile, crypto.ErrBadASN1},
		{"private_key_bad_version", unitData + "kp_general/private_key_bad_version.json", unlockFile, crypto.ErrBadVersion},
		{"public_key_bad_pem", unitData + "kp_general/public_key_bad_pem.json", parsePublicFile, crypto.ErrBadPEM},
		{"public_key_bad_value", unitData + "kp_general/public_key_bad_value.json", parsePublicFile, crypto.ErrBadASN1},
		{"public_key_bad_version", unitData + "kp_general/public_key_bad_version.json", parsePublicFile, crypto.ErrBadVersion},
		{"wrong_password", unitData + "kp_general/pw_invalid.txt", func(t *testing.T, _ vectorIndex, file string) error {
			var c crypto.PrivateKeyContainer
			readJSON(t, unitKP2048, &c)
			_, err := crypto.Unlock(c, readPassword(t, file))
			return err
		}, crypto.ErrWrongPassword},
		{"enc_file_key_bad_version", unitData + "fk_general/enc_file_key_bad_version.json", unwrapFile, crypto.ErrBadVersion},
		{"enc_file_key_bad_key", unitData + "fk_general/enc_file_key_bad_key.json", unwrapFile, crypto.ErrUnwrap},
		{"enc_file_key_bad_iv", unitData + "fk_general/enc_file_key_bad_iv.json", unwrapAndDecrypt, crypto.ErrAuthentication},
		{"enc_file_key_bad_tag", unitData + "fk_general/enc_file_key_bad_tag.json", unwrapAndDecrypt, crypto.ErrAuthentication},
		{"plain_file_key_bad_version", unitData + "fk_general/plain_file_key_bad_version.json", parsePlainFile, crypto.ErrBadVersion},
		{"plain_file_key_bad_key", unitData + "fk_general/plain_file_key_bad_key.json", decryptWithPlainFile, crypto.ErrAuthentication},
		{"plain_file_key_bad_iv", unitData + "fk_general/plain_file_key_bad_iv.json", decryptWithPlainFile, crypto.ErrAuthentication},
		{"plain_file_key_bad_tag", unitData + "fk_general/plain_file_key_bad_tag.json", decryptWithPlainFile, crypto.ErrAuthentication},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.File] = true
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			err := tc.Run(t, idx, tc.File)
			if !errors.Is(err, tc.Want) {
				t.Fatalf("error = %v, want %v", err, tc.Want)
			}
			if !errclass.IsPermanent(err) {
				t.Errorf("error %v is %v, want permanent", err, errclass.Of(err))
			}
			t.Logf("refused: %v", err)
		})
	}
	// Every *_bad_* file shipped with the vectors must have a case above.
	err := filepath.WalkDir(vectorDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), "_bad_") {
			return err
		}
		rel, _ := filepath.Rel(vectorDir, p)
		if !covered[filepath.ToSlash(rel)] {
			t.Errorf("bad vector %s has no test case", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
