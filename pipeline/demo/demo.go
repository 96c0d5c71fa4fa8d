// Package demo runs the main job end to end on the local stack: the
// service's stages in this process over SQS/SNS, a generated recording in
// S3, the original service's example message on the inbound queue, and
// every room member downloading and decrypting the result.
package demo

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

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/infra/awsclient"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/messages"
	"github.com/recording-storage/recording-storage/pipeline"
)

// Settings of a demo run.
type Settings struct {
	Config    conf.Config
	Domains   []string // instances whose DRACOON accounts receive the recording
	Members   []Member // room members who download and check it
	Size      int64    // bytes of the generated recording
	Example   string   // the original service's example message (testdata/messages/original-example.json)
	Bucket    string   // S3 bucket of the recording; created if missing
	Timeout   time.Duration
	Logger    logrus.FieldLogger
	Steps     *steps.Service
	Instances steps.Instances
}

// Member is a room member whose view of the recording the demo checks.
type Member struct {
	Login              string      `json:"login"`
	Password           conf.Secret `json:"password"`
	EncryptionPassword conf.Secret `json:"encryptionPassword"`
}

// partSize is the part size of the generated recording's multipart upload.
const partSize = 16 << 20

// Run runs the demo and writes its progress and summary to out.
func Run(ctx context.Context, out io.Writer, s Settings) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	svc, err := pipeline.New(ctx, pipeline.Options{Config: s.Config, Steps: s.Steps, Logger: s.Logger,
		Instances: func(context.Context) ([]string, error) { return s.Domains, nil }})
	if err != nil {
		return fmt.Errorf("cannot start the service (is the local stack up? `make stack-up`): %w", err)
	}
	stopped := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { stopped <- svc.Run(runCtx) }()
	defer func() {
		stop()
		<-stopped
	}()
	select {
	case <-svc.Running():
	case err := <-stopped:
		return err
	}
	fmt.Fprintf(out, "service   stages %s running over SQS/SNS (queue %s)\n", strings.Join(svc.Stages(), ","), s.Config.Stages.Parse.Queue)

	awsCfg, err := awsclient.Config(ctx, s.Config.AWS)
	if err != nil {
		return err
	}
	client := awsclient.S3(awsCfg, s.Config.AWS)
	watch, err := svc.Transport().Subscriber("demo", 1)
	if err != nil {
		return err
	}
	defer watch.Close()
	base := time.Now().Unix() // meeting ids of this run, so that file names are new
	for i, domain := range s.Domains {
		if err := s.one(ctx, out, svc, watch, client, domain, base+int64(i)); err != nil {
			return fmt.Errorf("instance %s: %w", domain, err)
		}
	}
	return nil
}

// one sends one recording through the service for domain and checks it.
func (s Settings) one(ctx context.Context, out io.Writer, svc *pipeline.Service, watch message.Subscriber, client *s3.Client, domain string, meetingID int64) error {
	inst, err := s.Instances.Instance(ctx, domain)
	if err != nil {
		return err
	}
	key := fmt.Sprintf("sandbox/demo-%d.mp4", time.Now().UnixNano())
	start := time.Now()
	sum, err := putRecording(ctx, client, s.Bucket, key, s.Size)
	if err != nil {
		return fmt.Errorf("cannot put the recording into S3: %w", err)
	}
	fmt.Fprintf(out, "s3        %s generated into s3://%s/%s in %s\n", conf.ByteSize(s.Size), s.Bucket, key, time.Since(start).Round(time.Millisecond))

	body, err := exampleMessage(s.Example, s.Bucket, key, domain, meetingID)
	if err != nil {
		return err
	}
	st := s.Config.Stages
	stages := []struct{ name, topic string }{{"parsed", st.Resolve.Topic}, {"resolved", st.Rooms.Topic},
		{"rooms ready", st.Transfer.Topic}, {"transferred", st.Transferred}, {"POISONED", st.Poison}}
	events := make(chan string, 16)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	for _, sg := range stages {
		ch, err := watch.Subscribe(wctx, sg.topic)
		if err != nil {
			return err
		}
		go func() {
			for m := range ch {
				m.Ack()
				// The watch queues may hold other jobs' messages: only this one counts.
				if m.Metadata.Get(messages.MetaMeetingID) == fmt.Sprint(meetingID) {
					reason := m.Metadata.Get(pipeline.MetaPoisonReason)
					events <- strings.TrimSpace(sg.name + " " + reason)
				}
			}
		}()
	}
	if err := send(ctx, svc, body); err != nil {
		return err
	}
	sent := time.Now()
	fmt.Fprintf(out, "submit    the original example message for meeting %d to the inbound queue\n", meetingID)
	var transferTime time.Duration
	for transferTime == 0 {
		select {
		case ev := <-events:
			fmt.Fprintf(out, "stage     %-12s after %s\n", ev, time.Since(sent).Round(time.Millisecond))
			if strings.HasPrefix(ev, "POISONED") {
				return errors.New("the job went to the poison queue: " + ev)
			}
			if ev == "transferred" {
				transferTime = time.Since(sent)
			}
		case <-ctx.Done():
			return fmt.Errorf("no transfer within the demo's time: %w", ctx.Err())
		}
	}
	return s.check(ctx, out, inst.Dracoon, domain, key, body, sum, transferTime, client)
}

// check has every member download and decrypt the file in every room and
// prints the summary.
func (s Settings) check(ctx context.Context, out io.Writer, acct conf.DracoonAccount, domain, key string, body, sum []byte, took time.Duration, client *s3.Client) error {
	job, err := messages.ParseJob(body, time.Now())
	if err != nil {
		return err
	}
	name := messages.FileNames(job)[key]
	svcClient, err := dracoon.New(dracoon.NewConfig(s.Config.Dracoon, acct, int64(s.Config.S3.ChunkSize), nil))
	if err != nil {
		return err
	}
	// One client per member for every room: each logs in and unlocks its key
	// pair (PBKDF2) once.
	members := make([]*dracoon.Client, len(s.Members))
	for i, m := range s.Members {
		a := acct
		a.Login, a.Password, a.EncryptionPassword = m.Login, m.Password, m.EncryptionPassword
		if members[i], err = dracoon.New(dracoon.NewConfig(s.Config.Dracoon, a, int64(s.Config.S3.ChunkSize), nil)); err != nil {
			return err
		}
	}
	rooms := exampleRooms(domain)
	failed := map[string]bool{}
	for _, path := range rooms {
		room, found, err := svcClient.LookupRoomPath(ctx, acct.ParentRoomID, path)
		if err != nil || !found {
			return fmt.Errorf("room %q is missing (%v)", path, err)
		}
		node, found, err := svcClient.FindFile(ctx, room.ID, name)
		if err != nil || !found {
			return fmt.Errorf("file %q is missing in room %q (%v)", name, path, err)
		}
		fmt.Fprintf(out, "room      %s (id %d): file %d %q, %s\n", path, room.ID, node.ID, name, conf.ByteSize(node.Size))
		for i, m := range s.Members {
			got, n, err := decryptWhenShared(ctx, members[i], node.ID)
			switch {
			case err != nil:
				failed[m.Login] = true
				fmt.Fprintf(out, "member    %-8s FAILED: %v\n", m.Login, err)
			case n != s.Size || !bytes.Equal(got, sum):
				failed[m.Login] = true
				fmt.Fprintf(out, "member    %-8s FAILED: %d bytes, sha256 %x\n", m.Login, n, got[:8])
			default:
				fmt.Fprintf(out, "member    %-8s decrypted it, sha256 %x matches\n", m.Login, got[:8])
			}
		}
	}
	source := "kept"
	if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key}); err != nil {
		source = "removed"
	}
	var can []string
	for _, m := range s.Members {
		if !failed[m.Login] {
			can = append(can, m.Login)
		}
	}
	fmt.Fprintf(out, "summary   %s into %d rooms in %s from submit to transferred (%.0f MB/s), decrypted by %s, S3 source %s\n",
		conf.ByteSize(s.Size), len(rooms), took.Round(time.Millisecond), float64(s.Size)/1e6/took.Seconds(),
		strings.Join(can, ", "), source)
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d members could not read the recording", len(failed), len(s.Members))
	}
	return nil
}

// decryptWhenShared downloads and decrypts a file, waiting for the share
// stage to hand the member its key.
func decryptWhenShared(ctx context.Context, c *dracoon.Client, fileID int64) ([]byte, int64, error) {
	for {
		h := sha256.New()
		n, err := c.DownloadDecrypted(ctx, fileID, h)
		if err == nil {
			return h.Sum(nil), n, nil
		}
		if !dracoon.IsStatus(err, 404) {
			return nil, 0, err
		}
		select { // no key yet (404 on the user's file key)
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("no file key within the demo's time: %w", err)
		}
	}
}

// exampleRooms are the rooms the example message reaches on the local
// instances: its own target and the instances' rule for any meeting type.
func exampleRooms(domain string) []string {
	return []string{"some room/sub-room", domain + "/live now"}
}

// exampleMessage adapts the original example message to the local bucket,
// key, instance and a meeting id of its own.
func exampleMessage(path, bucket, key, domain string, meetingID int64) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", path, err)
	}
	storage, _ := m["storage"].(map[string]any)
	extra, _ := storage["extra"].(map[string]any)
	meeting, _ := m["meeting"].(map[string]any)
	if extra == nil || meeting == nil {
		return nil, fmt.Errorf("%s is not the original example message", path)
	}
	extra["aws.s3"] = map[string]any{"bucket": bucket, "keys": []string{key}}
	meeting["id"] = meetingID
	m["instance"] = map[string]any{"domain": domain}
	return json.Marshal(m)
}

// send puts body on the inbound queue, as a producer does.
func send(ctx context.Context, svc *pipeline.Service, body []byte) error {
	pub, err := svc.Transport().InboundPublisher()
	if err != nil {
		return err
	}
	defer pub.Close()
	queue := svc.Transport().InboundQueue()
	msg := message.NewMessage(watermill.NewUUID(), body)
	msg.SetContext(ctx)
	return pub.Publish(queue, msg)
}

// putRecording streams size pseudo-random bytes into bucket/key as a
// multipart upload (one part in memory at a time) and returns their SHA-256.
func putRecording(ctx context.Context, client *s3.Client, bucket, key string, size int64) ([]byte, error) {
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		if !errors.As(err, &owned) && !errors.As(err, &exists) {
			return nil, err
		}
	}
	up, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	abort := func() {
		_, _ = client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId})
	}
	src := newRecording(size)
	buf := make([]byte, partSize)
	var parts []s3types.CompletedPart
	for n := int32(1); size == 0 || src.left > 0; n++ {
		m, err := io.ReadFull(src, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !(errors.Is(err, io.EOF) && size == 0) {
			abort()
			return nil, err
		}
		res, err := client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(buf[:m]), ContentLength: aws.Int64(int64(m))})
		if err != nil {
			abort()
			return nil, err
		}
		parts = append(parts, s3types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(n)})
		if size == 0 {
			break
		}
	}
	if _, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		abort()
		return nil, err
	}
	return src.sum.Sum(nil), nil
}

// recording is a generated stand-in for a meeting recording: size
// pseudo-random bytes, produced as read and hashed on the way.
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
