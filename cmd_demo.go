package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/configurator"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
)

// demoMember is a room member whose view of the upload the demo checks.
type demoMember struct {
	Login              string      `json:"login"`
	Password           conf.Secret `json:"password"`
	EncryptionPassword conf.Secret `json:"encryptionPassword"`
}

// runDemo implements "recording-storage demo": against the DRACOON emulator of
// the local stack, it encrypts and uploads a generated recording as the
// instance's service account into a new sub-room, hands the file key to the
// room members, and has each member download, decrypt and compare it.
func runDemo(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "demo", "demo [--size SIZE] [--instance DOMAIN,...] [--members FILE]",
		"Uploads, shares and reads back a generated recording on the local stack's DRACOON emulators.")
	configFile := fs.String("config", "", "configuration file (default: RS_CONFIG, else built-in defaults)")
	domains := fs.String("instance", "local.recording-storage.test,local-s3.recording-storage.test",
		"comma-separated instance domains whose DRACOON accounts upload (the defaults use proxy and S3 direct uploads)")
	membersFile := fs.String("members", "testdata/dracoon/members.json", "room members who download and check the file")
	size := conf.ByteSize(64 << 20)
	fs.TextVar(&size, "size", size, "size of the generated recording (e.g. 64MiB)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := demo(ctx, s.out, *configFile, strings.Split(*domains, ","), *membersFile, int64(size)); err != nil {
		fmt.Fprintf(s.err, "demo: %v\n", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, out io.Writer, configFile string, domains []string, membersFile string, size int64) error {
	cfg, err := conf.Load(configFile, nil)
	if err != nil {
		return err
	}
	if cfg.Instances.Source != "file" {
		return errors.New("the demo reads instances from a file (instances.source: file)")
	}
	instances, err := configurator.NewFile(cfg.Instances.File)
	if err != nil {
		return err
	}
	var members []demoMember
	data, err := os.ReadFile(membersFile)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &members); err != nil {
		return fmt.Errorf("cannot parse %s: %w", membersFile, err)
	}
	for _, domain := range domains {
		inst, err := instances.Instance(ctx, strings.TrimSpace(domain))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "instance  %s: DRACOON at %s\n", domain, inst.Dracoon.BaseURL)
		if err := demoInstance(ctx, out, inst.Dracoon, members, size); err != nil {
			return fmt.Errorf("instance %s: %w", domain, err)
		}
	}
	return nil
}

// demoInstance uploads one recording with acct and checks it as every member.
func demoInstance(ctx context.Context, out io.Writer, acct conf.DracoonAccount, members []demoMember, size int64) error {
	client := func(login string, password, encryption conf.Secret) (*dracoon.Client, error) {
		return dracoon.New(dracoon.Config{
			BaseURL: acct.BaseURL, Login: login, Password: password, EncryptionPassword: encryption,
			ClientID: acct.ClientID, ClientSecret: acct.ClientSecret,
		})
	}
	service, err := client(acct.Login, acct.Password, acct.EncryptionPassword)
	if err != nil {
		return err
	}
	info, err := service.SystemInfo(ctx)
	if err != nil {
		return fmt.Errorf("cannot reach DRACOON at %s (is the local stack up? `make stack-up`): %w", acct.BaseURL, err)
	}
	mode := "proxy chunks"
	if info.UseS3Storage {
		mode = "S3 direct parts"
	}

	start := time.Now()
	if _, err := service.PrivateKey(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "unlock    service key pair unlocked in %s (PBKDF2, once per client)\n", time.Since(start).Round(time.Millisecond))
	roomPath := "demo/run-" + start.UTC().Format("20060102-150405.000")
	room, err := service.EnsureRoomPath(ctx, acct.ParentRoomID, roomPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "room      %s (id %d) below parent room %d\n", roomPath, room.ID, acct.ParentRoomID)

	key, err := crypto.GenerateFileKey(nil)
	if err != nil {
		return err
	}
	src := newRecording(size)
	upStart := time.Now()
	node, err := service.UploadFile(ctx, dracoon.UploadSpec{
		ParentID: room.ID, Name: "meeting-demo.mp4", Size: size,
		ExpireAt: time.Now().AddDate(1, 0, 0), Notes: "recording-storage demo",
	}, src, key)
	if err != nil {
		return err
	}
	upTime := time.Since(upStart)
	want := src.Sum()
	fmt.Fprintf(out, "upload    %s encrypted as %s in %s (%s), file id %d\n",
		conf.ByteSize(size), mode, upTime.Round(time.Millisecond), rate(size, upTime), node.ID)

	stats, err := service.DistributeMissingKeys(ctx, dracoon.KeyScope{FileID: node.ID})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "share     file key handed to %d member(s), %d skipped, %d failed\n", stats.Set, stats.Skipped, stats.Failed)

	failed := 0
	for _, m := range members {
		mc, err := client(m.Login, m.Password, m.EncryptionPassword)
		if err != nil {
			return err
		}
		h := sha256.New()
		dlStart := time.Now()
		n, err := mc.DownloadDecrypted(ctx, node.ID, h)
		got := h.Sum(nil)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(out, "member    %-8s FAILED: %v\n", m.Login, err)
		case n != size || !bytes.Equal(got, want):
			failed++
			fmt.Fprintf(out, "member    %-8s FAILED: %d bytes, sha256 %x, want %d bytes, sha256 %x\n", m.Login, n, got, size, want)
		default:
			fmt.Fprintf(out, "member    %-8s downloaded and decrypted %s in %s, sha256 %x matches\n",
				m.Login, conf.ByteSize(n), time.Since(dlStart).Round(time.Millisecond), got[:8])
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d members could not read the recording", failed, len(members))
	}
	fmt.Fprintf(out, "ok        %d members read the recording end to end in %s\n", len(members), time.Since(start).Round(time.Millisecond))
	return nil
}

// recording is a generated stand-in for a meeting recording: size
// pseudo-random bytes, produced as read and hashed on the way, so that nothing
// is held in memory or written to disk.
type recording struct {
	rng  *rand.ChaCha8
	left int64
	sum  hash.Hash
}

func newRecording(size int64) *recording {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	return &recording{rng: rand.NewChaCha8(seed), left: size, sum: sha256.New()}
}

func (r *recording) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, _ := r.rng.Read(p)
	r.left -= int64(n)
	r.sum.Write(p[:n])
	return n, nil
}

// Sum returns the SHA-256 of everything read.
func (r *recording) Sum() []byte { return r.sum.Sum(nil) }

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB/s", float64(n)/(1<<20)/d.Seconds())
}
