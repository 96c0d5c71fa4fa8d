package crypto_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// packageErrors lists every exported error of the package with its class
// and message. TestErrors_table_is_complete keeps it complete.
var packageErrors = []struct {
	Name  string
	Err   error
	Class errclass.Class
	Msg   string
}{
	{"ErrBadVersion", crypto.ErrBadVersion, errclass.Permanent, "unsupported version"},
	{"ErrBadPEM", crypto.ErrBadPEM, errclass.Permanent, "bad PEM"},
	{"ErrBadASN1", crypto.ErrBadASN1, errclass.Permanent, "bad ASN.1"},
	{"ErrUnsupportedAlgorithm", crypto.ErrUnsupportedAlgorithm, errclass.Permanent, "unsupported algorithm"},
	{"ErrWrongPassword", crypto.ErrWrongPassword, errclass.Permanent, "wrong password"},
	{"ErrKeyMismatch", crypto.ErrKeyMismatch, errclass.Permanent, "private key does not match public key"},
	{"ErrBadFileKey", crypto.ErrBadFileKey, errclass.Permanent, "bad file key"},
	{"ErrKeyUsed", crypto.ErrKeyUsed, errclass.Permanent, "file key already used: it carries a tag"},
	{"ErrUnwrap", crypto.ErrUnwrap, errclass.Permanent, "cannot decrypt file key"},
	{"ErrAuthentication", crypto.ErrAuthentication, errclass.Permanent, "message authentication failed"},
	{"ErrBadSegment", crypto.ErrBadSegment, errclass.Permanent, "bad segment"},
	{"ErrFileTooLarge", crypto.ErrFileTooLarge, errclass.Permanent, "file too large for AES-GCM"},
}

func TestErrors_are_classified(t *testing.T) {
	t.Parallel()
	for _, tc := range packageErrors {
		t.Run(tc.Name, func(t *testing.T) {
			if got := errclass.Of(tc.Err); got != tc.Class {
				t.Errorf("class %v, want %v", got, tc.Class)
			}
			if tc.Err.Error() != tc.Msg {
				t.Errorf("message %q, want %q", tc.Err.Error(), tc.Msg)
			}
			// Wrapped with context, as the package returns them.
			wrapped := fmt.Errorf("unlock private key: %w", tc.Err)
			if got := errclass.Of(wrapped); got != tc.Class || !errors.Is(wrapped, tc.Err) {
				t.Errorf("wrapped: class %v, errors.Is %v", got, errors.Is(wrapped, tc.Err))
			}
			for _, other := range packageErrors {
				if other.Name != tc.Name && errors.Is(tc.Err, other.Err) {
					t.Errorf("errors.Is(%s, %s)", tc.Name, other.Name)
				}
			}
		})
	}
}

// TestErrors_table_is_complete finds every exported Err* variable in the
// package's source, so that a new sentinel cannot miss its class.
func TestErrors_table_is_complete(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tc := range packageErrors {
		listed[tc.Name] = true
	}
	found := 0
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.VAR {
				continue
			}
			for _, spec := range gen.Specs {
				for _, name := range spec.(*ast.ValueSpec).Names {
					if name.IsExported() && strings.HasPrefix(name.Name, "Err") {
						found++
						if !listed[name.Name] {
							t.Errorf("exported error %s is missing from packageErrors", name.Name)
						}
					}
				}
			}
		}
	}
	if found != len(packageErrors) {
		t.Errorf("found %d exported errors in the source, the table lists %d", found, len(packageErrors))
	}
}

func TestErrors_from_calls_are_permanent(t *testing.T) {
	t.Parallel()
	var c crypto.PrivateKeyContainer
	readJSON(t, unitKP2048, &c)
	_, err := crypto.Unlock(c, "not the password")
	if !errors.Is(err, crypto.ErrWrongPassword) || !errclass.IsPermanent(err) {
		t.Errorf("wrong password: %v is %v, want a permanent ErrWrongPassword", err, errclass.Of(err))
	}
	_, err = crypto.GenerateKeyPair(crypto.KeyPairVersionA, "", crypto.WithIterations(1))
	if err == nil || !errclass.IsPermanent(err) {
		t.Errorf("empty password: %v is %v, want permanent", err, errclass.Of(err))
	}
	if err := crypto.CheckSize(crypto.MaxFileSize + 1); !errors.Is(err, crypto.ErrFileTooLarge) || !errclass.IsPermanent(err) {
		t.Errorf("too large: %v is %v", err, errclass.Of(err))
	}
}
