package crypto

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// PEM block types of DRACOON key containers.
const (
	pemPrivateKey = "ENCRYPTED PRIVATE KEY"
	pemPublicKey  = "PUBLIC KEY"
)

// PrivateKeyContainer is a user's encrypted private key as the DRACOON API
// stores it. PrivateKey is a PEM "ENCRYPTED PRIVATE KEY" (PKCS#8, PBES2).
type PrivateKeyContainer struct {
	Version    string     `json:"version"`
	PrivateKey string     `json:"privateKey"`
	CreatedAt  *time.Time `json:"createdAt,omitempty"`
	CreatedBy  *int64     `json:"createdBy,omitempty"`
	ExpireAt   *time.Time `json:"expireAt,omitempty"`
}

// PublicKeyContainer is a user's public key as the DRACOON API stores it.
// PublicKey is a PEM "PUBLIC KEY" (X.509 SubjectPublicKeyInfo).
type PublicKeyContainer struct {
	Version   string     `json:"version"`
	PublicKey string     `json:"publicKey"`
	CreatedAt *time.Time `json:"createdAt,omitempty"`
	CreatedBy *int64     `json:"createdBy,omitempty"`
}

// UserKeyPairContainer is a user's (or a rescue) key pair as the DRACOON API
// stores it.
type UserKeyPairContainer struct {
	PrivateKeyContainer PrivateKeyContainer `json:"privateKeyContainer"`
	PublicKeyContainer  PublicKeyContainer  `json:"publicKeyContainer"`
}

// PublicKey is a parsed public key of a known version. It wraps file keys
// for its owner and is safe for concurrent use.
type PublicKey struct {
	version keyVersion
	key     *rsa.PublicKey
}

// PrivateKey is an unlocked private key of a known version. It unwraps file
// keys and is safe for concurrent use. Unlocking is slow by design; keep the
// PrivateKey instead of unlocking again.
type PrivateKey struct {
	version keyVersion
	key     *rsa.PrivateKey
}

// decodePEM returns the DER content of the single PEM block of type typ in s.
func decodePEM(s, typ string) ([]byte, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, fmt.Errorf("%w: no %q block", ErrBadPEM, typ)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("%w: got %q block, want %q", ErrBadPEM, block.Type, typ)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: unexpected PEM headers", ErrBadPEM)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("%w: data after the %q block", ErrBadPEM, typ)
	}
	return block.Bytes, nil
}

// checkSize checks that an RSA modulus has the size version v implies.
func checkSize(v keyVersion, bits int) error {
	if bits != v.bits {
		return fmt.Errorf("%w: %d-bit RSA key with version %q (want %d bits)", ErrBadVersion, bits, v.name, v.bits)
	}
	return nil
}

// ParsePublicKey parses a public key container. It refuses unknown
// versions, and keys whose size does not match their version.
func ParsePublicKey(c PublicKeyContainer) (*PublicKey, error) {
	v, err := lookupKeyVersion(c.Version)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	der, err := decodePEM(c.PublicKey, pemPublicKey)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		// x509 errors dump Go struct tags; the shape is enough.
		return nil, fmt.Errorf("parse public key: %w: not a valid X.509 SubjectPublicKeyInfo", ErrBadASN1)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("parse public key: %w: %T is not RSA", ErrUnsupportedAlgorithm, pub)
	}
	if err := checkSize(v, rsaPub.N.BitLen()); err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return &PublicKey{version: v, key: rsaPub}, nil
}

// Version returns the key pair version, KeyPairVersionA or KeyPairVersionRSA4096.
func (p *PublicKey) Version() string { return p.version.name }

// Size returns the RSA modulus size in bits.
func (p *PublicKey) Size() int { return p.key.N.BitLen() }

// Equal reports whether p and q are the same key of the same version.
func (p *PublicKey) Equal(q *PublicKey) bool {
	return p != nil && q != nil && p.version.name == q.version.name && p.key.Equal(q.key)
}

// String describes the key without its value.
func (p *PublicKey) String() string {
	return fmt.Sprintf("crypto.PublicKey{version: %s, bits: %d}", p.version.name, p.Size())
}

// Unlock decrypts a private key container with password, trying the
// password's UTF-8 bytes first and, for a password that is not ASCII, its
// legacy bytes second, as the Java SDK does: the low byte of each UTF-16 code
// unit, which is ISO-8859-1 for the characters ISO-8859-1 has. The PBKDF2
// parameters are read from the key. It refuses unknown versions and keys
// whose size does not match their version. A password that fits neither
// way gives an error wrapping ErrWrongPassword.
//
// Unlock is deliberately slow (PBKDF2, up to 1,300,000 iterations, twice for
// a password that is not ASCII): call it once and reuse the PrivateKey.
func Unlock(c PrivateKeyContainer, password string) (*PrivateKey, error) {
	v, err := lookupKeyVersion(c.Version)
	if err != nil {
		return nil, fmt.Errorf("unlock private key: %w", err)
	}
	der, err := decodePEM(c.PrivateKey, pemPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("unlock private key: %w", err)
	}
	enc, err := parsePBES2(der)
	if err != nil {
		return nil, fmt.Errorf("unlock private key: %w", err)
	}
	var plain []byte
	for _, pw := range passwordEncodings(password) {
		var ok bool
		if plain, ok = enc.decrypt(pw); ok {
			break
		}
	}
	if plain == nil {
		return nil, fmt.Errorf("unlock private key: %w", ErrWrongPassword)
	}
	defer clear(plain)
	priv, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, fmt.Errorf("unlock private key: decrypted key: %w: %v", ErrBadASN1, err)
	}
	rsaPriv, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("unlock private key: %w: %T is not RSA", ErrUnsupportedAlgorithm, priv)
	}
	if err := checkSize(v, rsaPriv.N.BitLen()); err != nil {
		return nil, fmt.Errorf("unlock private key: %w", err)
	}
	return &PrivateKey{version: v, key: rsaPriv}, nil
}

// Version returns the key pair version, KeyPairVersionA or KeyPairVersionRSA4096.
func (k *PrivateKey) Version() string { return k.version.name }

// Size returns the RSA modulus size in bits.
func (k *PrivateKey) Size() int { return k.key.N.BitLen() }

// Public returns the public half of the key.
func (k *PrivateKey) Public() *PublicKey {
	return &PublicKey{version: k.version, key: &k.key.PublicKey}
}

// Matches reports whether pub is the public half of k, with the same version.
func (k *PrivateKey) Matches(pub *PublicKey) bool { return k.Public().Equal(pub) }

// CheckPair parses c and checks that it is the public half of k. It returns
// an error wrapping ErrKeyMismatch when it is not.
func (k *PrivateKey) CheckPair(c PublicKeyContainer) error {
	pub, err := ParsePublicKey(c)
	if err != nil {
		return err
	}
	if !k.Matches(pub) {
		return fmt.Errorf("check key pair: %w", ErrKeyMismatch)
	}
	return nil
}

// String describes the key without revealing it. The printing and
// marshalling methods have value receivers so that a copied PrivateKey is
// redacted too.
func (k PrivateKey) String() string {
	bits := 0
	if k.key != nil {
		bits = k.key.N.BitLen()
	}
	return fmt.Sprintf("crypto.PrivateKey{version: %s, bits: %d, key: [REDACTED]}", k.version.name, bits)
}

// GoString describes the key without revealing it.
func (k PrivateKey) GoString() string { return k.String() }

// Format writes the redacted description for every verb, so that no fmt
// verb prints the key material.
func (k PrivateKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// MarshalJSON writes the redacted description as a JSON string, so that a
// PrivateKey in a JSON log field shows no key material.
func (k PrivateKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// MarshalText writes the redacted description, for YAML, log/slog and other
// encoders that use encoding.TextMarshaler.
func (k PrivateKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// KeyPairOption configures GenerateKeyPair.
type KeyPairOption func(*keyPairOptions)

type keyPairOptions struct {
	iterations int
	random     io.Reader
}

// WithIterations sets the PBKDF2 iteration count of the encrypted private
// key. Zero or less means DefaultIterations; tests use a small count to run
// fast.
func WithIterations(n int) KeyPairOption {
	return func(o *keyPairOptions) { o.iterations = n }
}

// WithRandom sets the source of the salt and IV. nil means crypto/rand.
// Since Go 1.26 the RSA key itself always comes from crypto/rand.
func WithRandom(r io.Reader) KeyPairOption {
	return func(o *keyPairOptions) { o.random = r }
}

// GenerateKeyPair creates a key pair of the given version (empty means
// KeyPairVersionRSA4096) with the private key encrypted under password the
// way the official SDKs do it (PBKDF2-HMAC-SHA1 with DefaultIterations, a
// 20-byte salt, AES-256-CBC). Unlock the private key to use it.
func GenerateKeyPair(version, password string, opts ...KeyPairOption) (UserKeyPairContainer, error) {
	o := keyPairOptions{iterations: DefaultIterations, random: rand.Reader}
	for _, opt := range opts {
		opt(&o)
	}
	if o.iterations <= 0 {
		o.iterations = DefaultIterations
	}
	if o.random == nil {
		o.random = rand.Reader
	}
	if version == "" {
		version = KeyPairVersionRSA4096
	}
	v, err := lookupKeyVersion(version)
	if err != nil {
		return UserKeyPairContainer{}, fmt.Errorf("generate key pair: %w", err)
	}
	if password == "" {
		return UserKeyPairContainer{}, errclass.AsPermanent(errors.New("generate key pair: empty password"))
	}
	priv, err := rsa.GenerateKey(rand.Reader, v.bits)
	if err != nil {
		return UserKeyPairContainer{}, fmt.Errorf("generate key pair: %w", err)
	}
	plain, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return UserKeyPairContainer{}, fmt.Errorf("generate key pair: %w", err)
	}
	defer clear(plain)
	enc, err := encryptPBES2(o.random, plain, password, o.iterations)
	if err != nil {
		return UserKeyPairContainer{}, fmt.Errorf("generate key pair: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return UserKeyPairContainer{}, fmt.Errorf("generate key pair: %w", err)
	}
	return UserKeyPairContainer{
		PrivateKeyContainer: PrivateKeyContainer{
			Version:    v.name,
			PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: enc})),
		},
		PublicKeyContainer: PublicKeyContainer{
			Version:   v.name,
			PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: pub})),
		},
	}, nil
}
