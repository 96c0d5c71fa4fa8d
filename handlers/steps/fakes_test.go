package steps_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/messages"
)

// The fakes below stand in for S3 and DRACOON where no wire matters: the
// steps' own decisions (which targets, which sources, what is gone, what
// is shared) are tested against them; the wire is tested with the real
// servers in steps_test.go and cost_test.go.

// fakeObjects is an S3 bucket of objects by key; a key in failHead fails
// its lookup with that error.
type fakeObjects struct {
	objects  map[string]s3source.Object
	failHead map[string]error
}

func (f fakeObjects) Head(_ context.Context, bucket, key string) (s3source.Object, error) {
	if err := f.failHead[key]; err != nil {
		return s3source.Object{}, err
	}
	o, ok := f.objects[key]
	if !ok {
		return s3source.Object{}, fmt.Errorf("s3://%s/%s: %w", bucket, key, s3source.ErrNoSuchKey)
	}
	return o, nil
}

func (f fakeObjects) ReadChunk(context.Context, s3source.Object, int64, []byte) (int, error) {
	return 0, errors.New("fakeObjects: no reads")
}

func (f fakeObjects) Remove(context.Context, s3source.Object) (s3source.Removal, error) {
	return 0, errors.New("fakeObjects: no removal")
}

// fakeAccount is a DRACOON account with rooms by path below the parent
// room and files by room; its calls are recorded. err, if set, fails the
// room lookups and the key distribution.
type fakeAccount struct {
	mu      sync.Mutex
	rooms   map[string]int64         // path → room id
	files   map[int64][]dracoon.Node // room id → files
	err     error
	ensured []string
	scopes  [][]dracoon.KeyScope
	stats   messages.KeyStats
	keysErr error
}

func (a *fakeAccount) LookupRoomPath(_ context.Context, _ int64, p string) (dracoon.Node, bool, error) {
	if a.err != nil {
		return dracoon.Node{}, false, a.err
	}
	id, ok := a.rooms[p]
	return dracoon.Node{ID: id, Name: path.Base(p), Type: dracoon.NodeTypeRoom}, ok, nil
}

func (a *fakeAccount) EnsureRoomPath(_ context.Context, _ int64, p string) (dracoon.Node, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return dracoon.Node{}, a.err
	}
	a.ensured = append(a.ensured, p)
	if _, ok := a.rooms[p]; !ok {
		a.rooms[p] = int64(100 + len(a.rooms))
	}
	return dracoon.Node{ID: a.rooms[p], Name: path.Base(p), Type: dracoon.NodeTypeRoom}, nil
}

func (a *fakeAccount) FindFiles(_ context.Context, roomID int64, text string) ([]dracoon.Node, error) {
	if a.err != nil {
		return nil, a.err
	}
	var out []dracoon.Node
	for _, n := range a.files[roomID] {
		if strings.Contains(n.Name, text) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (a *fakeAccount) DistributeMissingKeys(_ context.Context, scopes ...dracoon.KeyScope) (messages.KeyStats, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.scopes = append(a.scopes, slices.Clone(scopes))
	return a.stats, a.keysErr
}

func (a *fakeAccount) StartUpload(context.Context, dracoon.UploadSpec) (transfer.Upload, error) {
	return nil, errors.New("fakeAccount: no uploads")
}

func (a *fakeAccount) WrapFileKey(context.Context, crypto.PlainFileKey) (crypto.FileKey, error) {
	return crypto.FileKey{}, errors.New("fakeAccount: no keys")
}

func (a *fakeAccount) PrivateKey(context.Context) (*crypto.PrivateKey, error) {
	return nil, errors.New("fakeAccount: no key pair")
}

func (a *fakeAccount) Account(context.Context) (dracoon.UserAccount, error) {
	return dracoon.UserAccount{}, a.err
}

func (a *fakeAccount) Node(_ context.Context, id int64) (dracoon.Node, error) {
	return dracoon.Node{ID: id, Type: dracoon.NodeTypeRoom, IsEncrypted: true}, a.err
}

// fakeAccounts gives one account for every configuration.
type fakeAccounts struct{ account *fakeAccount }

func (f fakeAccounts) Account(conf.DracoonAccount) (steps.Account, error) { return f.account, nil }

// stamped returns a file of the room named name that is a copy of
// bucket/key by its stamp.
func stamped(id int64, name, bucket, key string) dracoon.Node {
	return dracoon.Node{ID: id, Name: name, Type: dracoon.NodeTypeFile,
		Notes: messages.StampOf(bucket, key, `"etag"`, "").Notes()}
}

// newFakeService returns steps over the fakes, for instance fake.example.
func newFakeService(inst conf.Instance, objects fakeObjects, acct *fakeAccount) *steps.Service {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return steps.New(conf.Default(), instances{"fake.example": inst}, objects, fakeAccounts{acct}, nil, log)
}

// fakeJob is a job of instance fake.example with keys in bucket b.
func fakeJob(t *testing.T, typeID int64, targets []string, keys ...string) *messages.Job {
	t.Helper()
	job := &messages.Job{Version: messages.JobVersion, ID: "job-1", Instance: "fake.example",
		Source:  messages.Source{Bucket: "b", Keys: keys},
		Meeting: messages.Meeting{ID: 9, Type: messages.MeetingType{ID: &typeID, Name: "Consult"}}}
	for _, p := range targets {
		tg, err := messages.NewTarget(p, nil, job.Instance, "Consult", job.ReceivedAt)
		if err != nil {
			t.Fatal(err)
		}
		job.Targets = append(job.Targets, tg)
	}
	return job
}

// errorClass names the class of err, "" for none.
func errorClass(err error) string {
	if err == nil {
		return ""
	}
	return errclass.Of(err).String()
}
