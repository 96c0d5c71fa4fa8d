package crypto

import (
	"bytes"
	stdcrypto "crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

func TestGF_field_laws(t *testing.T) {
	t.Parallel()
	var b [16]byte
	for i := range 20 {
		_, _ = rand.Read(b[:])
		x := gfLoad(b[:])
		_, _ = rand.Read(b[:])
		y := gfLoad(b[:])
		if gfMul(x, gfOne()) != x || gfMul(x, y) != gfMul(y, x) {
			t.Fatal("identity or commutativity fails")
		}
		if gfMul(x, gfInv(x)) != gfOne() {
			t.Fatal("x·x^-1 != 1")
		}
		p := gfOne()
		for range i {
			p = gfMul(p, x)
		}
		if gfPow(x, uint64(i)) != p {
			t.Fatalf("x^%d differs from repeated multiplication", i)
		}
	}
	// H·X from the GCM specification's test case 2 (AES-128, zero key).
	h := gfElement{0x66e94bd4ef8a2c3b, 0x884cfa59ca342b2e}
	c := gfElement{0x0388dace60b6a392, 0xf328c2b971b2fe78}
	l := lengthBlock(0, 16)
	if got := gfMul(gfMul(c, h).xor(l), h); got != (gfElement{0xf38cbb1ad69223dc, 0xc3457ae5b6b0f885}) {
		t.Errorf("GHASH = %016x%016x", got.hi, got.lo)
	}
}

func TestPasswordEncodings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		Password string
		Want     [][]byte
	}{
		{"Qwer1234!", [][]byte{[]byte("Qwer1234!")}},
		{"Qwer1234!ä", [][]byte{[]byte("Qwer1234!ä"), []byte("Qwer1234!\xe4")}},
		// U+20AC keeps its low byte; U+1F41B is the surrogates D83D DC1B.
		{"Qwer1234!€", [][]byte{[]byte("Qwer1234!€"), []byte("Qwer1234!\xac")}},
		{"Qwer1234!🐛", [][]byte{[]byte("Qwer1234!🐛"), []byte("Qwer1234!\x3d\x1b")}},
		{"ä€🐛\uffff\U00010000", [][]byte{[]byte("ä€🐛\uffff\U00010000"), {0xe4, 0xac, 0x3d, 0x1b, 0xff, 0x00, 0x00}}},
		{"\ufffd", [][]byte{[]byte("\ufffd"), {0xfd}}}, // a real U+FFFD, not an encoding error
		// Not UTF-8: tried as it is only.
		{"\xe4", [][]byte{[]byte("\xe4")}},
		{"a\xe4€", [][]byte{[]byte("a\xe4€")}},
	}
	for _, tc := range cases {
		got := passwordEncodings(tc.Password)
		if len(got) != len(tc.Want) {
			t.Errorf("%q: %q, want %q", tc.Password, got, tc.Want)
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], tc.Want[i]) {
				t.Errorf("%q: %q, want %q", tc.Password, got, tc.Want)
			}
		}
	}
}

// testPKCS8 returns a small key's PKCS#8 encoding.
func testPKCS8(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, der
}

func TestEncryptPBES2_writes_the_SDK_parameters(t *testing.T) {
	t.Parallel()
	_, plain := testPKCS8(t)
	der, err := encryptPBES2(rand.Reader, plain, "pw", 1234)
	if err != nil {
		t.Fatal(err)
	}
	var info encryptedPrivateKeyInfo
	var params pbes2Params
	var kdf pbkdf2Params
	if err := unmarshalExact(der, &info, "info"); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalExact(info.Algorithm.Parameters.FullBytes, &params, "params"); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalExact(params.KeyDerivationFunc.Parameters.FullBytes, &kdf, "kdf"); err != nil {
		t.Fatal(err)
	}
	if len(kdf.PRF.Algorithm) != 0 || kdf.KeyLength != 0 || len(kdf.Salt) != 20 || kdf.Iterations != 1234 {
		t.Errorf("PBKDF2 parameters %+v, want salt 20 bytes, 1234 iterations, no key length, PRF omitted", kdf)
	}
	if !params.EncryptionScheme.Algorithm.Equal(oidAESCBC(42)) {
		t.Errorf("encryption scheme %v, want aes256-CBC", params.EncryptionScheme.Algorithm)
	}
	k, err := parsePBES2(der)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := k.decrypt([]byte("pw"))
	if !ok || !bytes.Equal(got, plain) {
		t.Error("round trip failed")
	}
}

func TestGenerateKeyPair_defaults_to_SDK_iteration_count(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("1,300,000 PBKDF2 iterations skipped in -short mode")
	}
	kp, err := GenerateKeyPair(KeyPairVersionA, "pw")
	if err != nil {
		t.Fatal(err)
	}
	der, err := decodePEM(kp.PrivateKeyContainer.PrivateKey, pemPrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parsePBES2(der)
	if err != nil {
		t.Fatal(err)
	}
	if k.iterations != DefaultIterations || k.keyLen != 32 || len(k.salt) != 20 {
		t.Errorf("iterations %d, key %d bytes, salt %d bytes", k.iterations, k.keyLen, len(k.salt))
	}
}

func TestUnlock_falls_back_to_ISO_8859_1(t *testing.T) {
	t.Parallel()
	_, plain := testPKCS8(t)
	der, err := encryptPBES2(rand.Reader, plain, "Qwer1234!\xe4", 100) // ISO-8859-1 bytes of "Qwer1234!ä"
	if err != nil {
		t.Fatal(err)
	}
	c := PrivateKeyContainer{Version: KeyPairVersionA, PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}))}
	if _, err := Unlock(c, "Qwer1234!ä"); err != nil {
		t.Fatal(err)
	}
	if _, err := Unlock(c, "Qwer1234!a"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("error = %v, want ErrWrongPassword", err)
	}
}

// TestUnlock_legacy_password_bytes_like_the_Java_SDK builds a key the way
// the Java SDK did before its UTF-8 fix: PBKDF2 over the low byte of each
// UTF-16 code unit of the password.
func TestUnlock_legacy_password_bytes_like_the_Java_SDK(t *testing.T) {
	t.Parallel()
	const password = "Qwer1234!ä€🐛"
	// ä U+00E4 -> E4; € U+20AC -> AC; 🐛 U+1F41B = D83D DC1B -> 3D 1B.
	const legacy = "Qwer1234!\xe4\xac\x3d\x1b"
	_, plain := testPKCS8(t)
	der, err := encryptPBES2(rand.Reader, plain, legacy, 100)
	if err != nil {
		t.Fatal(err)
	}
	c := PrivateKeyContainer{Version: KeyPairVersionA, PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}))}
	k, err := Unlock(c, password)
	if err != nil {
		t.Fatalf("Unlock with the Unicode password: %v", err)
	}
	if k.Size() != 2048 {
		t.Errorf("unlocked a %d-bit key", k.Size())
	}
	for _, wrong := range []string{"Qwer1234!ä€", "Qwer1234!ä€🐜", "Qwer1234!a€🐛"} {
		_, err := Unlock(c, wrong)
		if !errors.Is(err, ErrWrongPassword) || !errclass.IsPermanent(err) {
			t.Errorf("Unlock(%q): error = %v (%v), want a permanent ErrWrongPassword", wrong, err, errclass.Of(err))
		}
	}

	// The UTF-8 bytes still come first: a key made by a current SDK unlocks.
	der, err = encryptPBES2(rand.Reader, plain, password, 100)
	if err != nil {
		t.Fatal(err)
	}
	c.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}))
	if _, err := Unlock(c, password); err != nil {
		t.Fatalf("Unlock of a UTF-8 key: %v", err)
	}
}

func TestParsePBES2_refuses_unsupported_parameters(t *testing.T) {
	t.Parallel()
	_, plain := testPKCS8(t)
	good, err := encryptPBES2(rand.Reader, plain, "pw", 100)
	if err != nil {
		t.Fatal(err)
	}
	// rebuild re-encodes good with its PBKDF2 parameters changed by edit.
	rebuild := func(edit func(*pbkdf2Params)) []byte {
		var info encryptedPrivateKeyInfo
		var params pbes2Params
		var kdf pbkdf2Params
		_ = unmarshalExact(good, &info, "")
		_ = unmarshalExact(info.Algorithm.Parameters.FullBytes, &params, "")
		_ = unmarshalExact(params.KeyDerivationFunc.Parameters.FullBytes, &kdf, "")
		edit(&kdf)
		b, _ := asn1.Marshal(kdf)
		params.KeyDerivationFunc.Parameters.FullBytes = b
		b, _ = asn1.Marshal(params)
		info.Algorithm.Parameters.FullBytes = b
		b, _ = asn1.Marshal(info)
		return b
	}
	cases := []struct {
		Name string
		DER  []byte
		Want error
	}{
		{"too_many_iterations", rebuild(func(p *pbkdf2Params) { p.Iterations = maxIterations + 1 }), ErrUnsupportedAlgorithm},
		{"zero_iterations", rebuild(func(p *pbkdf2Params) { p.Iterations = 0 }), ErrUnsupportedAlgorithm},
		{"unknown_prf", rebuild(func(p *pbkdf2Params) { p.PRF.Algorithm = asn1.ObjectIdentifier{1, 2, 3} }), ErrUnsupportedAlgorithm},
		{"wrong_key_length", rebuild(func(p *pbkdf2Params) { p.KeyLength = 16 }), ErrUnsupportedAlgorithm},
		{"trailing_data", append(bytes.Clone(good), 0), ErrBadASN1},
		{"truncated", good[:len(good)-1], ErrBadASN1},
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if _, err := parsePBES2(tc.DER); !errors.Is(err, tc.Want) {
				t.Fatalf("error = %v, want %v", err, tc.Want)
			}
		})
	}
}

func TestWrapFileKey_uses_the_OAEP_variant_of_the_version(t *testing.T) {
	t.Parallel()
	priv, _ := testPKCS8(t)
	pub := &PublicKey{version: keyVersion{name: KeyPairVersionA, bits: 2048, fileKey: FileKeyVersionA, mgf1: stdcrypto.SHA1}, key: &priv.PublicKey}
	k := PlainFileKey{Key: make([]byte, 32), IV: make([]byte, 12), Tag: make([]byte, 16), Version: PlainFileKeyVersion}
	fk, err := pub.WrapFileKey(k)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _ := unb64(fk.Key, "key")
	if _, err := priv.Decrypt(nil, wrapped, &rsa.OAEPOptions{Hash: stdcrypto.SHA256, MGFHash: stdcrypto.SHA1}); err != nil {
		t.Errorf("not SHA-256 with MGF1-SHA-1: %v", err)
	}
	if _, err := priv.Decrypt(nil, wrapped, &rsa.OAEPOptions{Hash: stdcrypto.SHA256}); err == nil {
		t.Error("version A decrypts with MGF1-SHA-256")
	}
}
