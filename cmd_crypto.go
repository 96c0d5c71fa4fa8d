package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
)

// Read limits for the small files the crypto commands take.
const (
	cryptoMaxKeyFile      = 1 << 20
	cryptoMaxPasswordFile = 64 << 10
)

// runCrypto implements "recording-storage crypto unlock|decrypt [flags]".
func runCrypto(ctx context.Context, args []string, s stdio) int {
	if len(args) == 0 {
		cryptoUsage(s.err)
		return 2
	}
	switch args[0] {
	case "unlock":
		return runCryptoUnlock(ctx, args[1:], s)
	case "decrypt":
		return runCryptoDecrypt(ctx, args[1:], s)
	case "help", "-h", "-help", "--help":
		cryptoUsage(s.out)
		return 0
	}
	fmt.Fprintf(s.err, "crypto: unknown subcommand %q\n", args[0])
	cryptoUsage(s.err)
	return 2
}

// cryptoUsage writes the synopsis of the crypto subcommands.
func cryptoUsage(w io.Writer) {
	fmt.Fprintln(w, `usage: recording-storage crypto unlock --private-key FILE --password-file FILE [--public-key FILE]
       recording-storage crypto decrypt (--private-key FILE --password-file FILE --file-key FILE | --plain-file-key FILE)
                                        [--in FILE --out FILE]
Checks DRACOON key pairs and decrypts downloaded recordings. Run a subcommand with -h for its flags.`)
}

// runCryptoUnlock implements "crypto unlock": it unlocks a private key and,
// when given, checks it against a public key.
func runCryptoUnlock(_ context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "crypto unlock", "crypto unlock --private-key FILE --password-file FILE [--public-key FILE]", "Unlocks a DRACOON private key, prints its version and size, and checks it against the public key.")
	privFile := fs.String("private-key", "", "private key container JSON (or a user key pair container)")
	pwFile := fs.String("password-file", "", "file holding the key pair password as UTF-8 text")
	pubFile := fs.String("public-key", "", "public key container JSON to check the private key against")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 0 || *privFile == "" || *pwFile == "" {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(s.err, "crypto unlock: %v\n", err)
		return 1
	}
	privC, pubC, err := readKeyContainers(*privFile)
	if err != nil {
		return fail(err)
	}
	if *pubFile != "" {
		var c crypto.PublicKeyContainer
		if err := readJSONFile(*pubFile, &c); err != nil {
			return fail(err)
		}
		pubC = &c
	}
	// Parse the public key first: unlocking takes a while.
	var pub *crypto.PublicKey
	if pubC != nil {
		if pub, err = crypto.ParsePublicKey(*pubC); err != nil {
			return fail(err)
		}
	}
	priv, err := unlockFromFiles(privC, *pwFile)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(s.out, "private key unlocked: version %s, RSA %d bits\n", priv.Version(), priv.Size())
	if pub != nil {
		if !priv.Matches(pub) {
			return fail(fmt.Errorf("%s: %w", *pubFile, crypto.ErrKeyMismatch))
		}
		fmt.Fprintln(s.out, "public key matches")
	}
	return 0
}

// runCryptoDecrypt implements "crypto decrypt": it unwraps a file key and
// prints it, or decrypts and verifies a downloaded file.
func runCryptoDecrypt(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "crypto decrypt", "crypto decrypt (--private-key FILE --password-file FILE --file-key FILE | --plain-file-key FILE) [--in FILE --out FILE]", "Without --in, prints the plain file key as JSON. With --in and --out, decrypts the content and verifies its tag.")
	privFile := fs.String("private-key", "", "private key container JSON (or a user key pair container)")
	pwFile := fs.String("password-file", "", "file holding the key pair password as UTF-8 text")
	fkFile := fs.String("file-key", "", "encrypted file key JSON as the DRACOON API returns it")
	plainFile := fs.String("plain-file-key", "", "plain file key JSON; replaces --private-key, --password-file and --file-key")
	in := fs.String("in", "", "encrypted content to decrypt")
	out := fs.String("out", "", "where to write the plaintext; written only when the tag verifies")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	viaPrivate := *privFile != "" || *pwFile != "" || *fkFile != ""
	switch {
	case fs.NArg() != 0,
		*plainFile != "" && viaPrivate,
		*plainFile == "" && (*privFile == "" || *pwFile == "" || *fkFile == ""),
		(*in == "") != (*out == ""):
		fs.Usage()
		return 2
	}
	if *in != "" && filepath.Clean(*in) == filepath.Clean(*out) {
		fmt.Fprintln(s.err, "crypto decrypt: --in and --out must differ")
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(s.err, "crypto decrypt: %v\n", err)
		return 1
	}

	var key crypto.PlainFileKey
	if *plainFile != "" {
		b, err := readSmallFile(*plainFile, cryptoMaxKeyFile)
		if err != nil {
			return fail(err)
		}
		if key, err = crypto.ImportPlainFileKeyJSON(b); err != nil {
			return fail(fmt.Errorf("%s: %w", *plainFile, err))
		}
	} else {
		privC, _, err := readKeyContainers(*privFile)
		if err != nil {
			return fail(err)
		}
		var fk crypto.FileKey
		if err := readJSONFile(*fkFile, &fk); err != nil {
			return fail(err)
		}
		priv, err := unlockFromFiles(privC, *pwFile)
		if err != nil {
			return fail(err)
		}
		if key, err = priv.UnwrapFileKey(fk); err != nil {
			return fail(err)
		}
	}

	if *in == "" {
		// The one place that prints a plain file key, on request: export it
		// explicitly (its MarshalJSON redacts the key).
		raw, err := key.ExportJSON()
		if err != nil {
			return fail(err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return fail(err)
		}
		out.WriteByte('\n')
		if _, err := s.out.Write(out.Bytes()); err != nil {
			return fail(err)
		}
		return 0
	}
	n, err := decryptFile(ctx, key, *in, *out)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(s.out, "decrypted %d bytes to %s, tag verified\n", n, *out)
	return 0
}

// decryptFile decrypts in into a temporary file beside out and renames it
// to out only when the tag verifies; on any failure it removes the
// temporary file, so out never holds unauthenticated plaintext.
func decryptFile(ctx context.Context, key crypto.PlainFileKey, in, out string) (n int64, err error) {
	src, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	if fi, err := src.Stat(); err == nil && fi.Mode().IsRegular() {
		if err := crypto.CheckSize(fi.Size()); err != nil {
			return 0, fmt.Errorf("%s: %w", in, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.part")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if n, err = crypto.DecryptStream(key, tmp, ctxReader{ctx, src}); err != nil {
		return n, fmt.Errorf("%s: %w", in, err)
	}
	if err = tmp.Sync(); err != nil {
		return n, err
	}
	if err = tmp.Close(); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), out)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readKeyContainers reads a private key container, or a user key pair
// container and then also returns its public key container.
func readKeyContainers(name string) (crypto.PrivateKeyContainer, *crypto.PublicKeyContainer, error) {
	var raw struct {
		crypto.PrivateKeyContainer
		Pair *crypto.PrivateKeyContainer `json:"privateKeyContainer"`
		Pub  *crypto.PublicKeyContainer  `json:"publicKeyContainer"`
	}
	if err := readJSONFile(name, &raw); err != nil {
		return crypto.PrivateKeyContainer{}, nil, err
	}
	if raw.Pair != nil {
		return *raw.Pair, raw.Pub, nil
	}
	return raw.PrivateKeyContainer, nil, nil
}

// unlockFromFiles unlocks c with the password read from pwFile.
func unlockFromFiles(c crypto.PrivateKeyContainer, pwFile string) (*crypto.PrivateKey, error) {
	pw, err := readPasswordFile(pwFile)
	if err != nil {
		return nil, err
	}
	return crypto.Unlock(c, pw)
}

// readPasswordFile reads a UTF-8 password; one trailing newline (LF or
// CRLF) is not part of it.
func readPasswordFile(name string) (string, error) {
	b, err := readSmallFile(name, cryptoMaxPasswordFile)
	if err != nil {
		return "", err
	}
	pw := string(b)
	if strings.HasSuffix(pw, "\n") {
		pw = strings.TrimSuffix(strings.TrimSuffix(pw, "\n"), "\r")
	}
	if pw == "" {
		return "", fmt.Errorf("%s: empty password", name)
	}
	return pw, nil
}

// readJSONFile decodes the JSON file name into v.
func readJSONFile(name string, v any) error {
	b, err := readSmallFile(name, cryptoMaxKeyFile)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w", name, errors.New("file too large"))
	}
	return b, nil
}
