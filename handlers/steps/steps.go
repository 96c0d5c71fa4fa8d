// Package steps holds what each stage of a job does, apart from how the
// job travels: resolve its instance configuration, targets and source
// objects, ensure its rooms, transfer its recordings, share its file keys.
// The pipeline's handlers and the one-shot commands call the same steps.
package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/logging"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/messages"
)

// Instances gives the configuration of an instance domain
// (implemented by the configurator package).
type Instances interface {
	Instance(ctx context.Context, domain string) (conf.Instance, error)
}

// Objects reads, looks up and removes source objects (implemented by
// *s3source.Source).
type Objects interface {
	transfer.Source
	Head(ctx context.Context, bucket, key string) (s3source.Object, error)
}

// Service runs the steps of jobs. It is safe for concurrent use.
type Service struct {
	cfg       conf.Config
	instances Instances
	objects   Objects
	accounts  *accounts
	engine    transfer.Options
	log       logrus.FieldLogger
}

// New returns a Service with the settings of cfg.
func New(cfg conf.Config, instances Instances, objects Objects, metrics *transfer.Metrics, log logrus.FieldLogger) *Service {
	return &Service{
		cfg: cfg, instances: instances, objects: objects, log: log,
		accounts: newAccounts(cfg.Dracoon, cfg.TLS, int64(cfg.S3.ChunkSize), log),
		engine: transfer.Options{ReadAhead: cfg.S3.Parallel, PartsInFlight: cfg.S3.PartsInFlight,
			Logger: log, Metrics: metrics},
	}
}

// account returns the instance's configuration and DRACOON client.
func (s *Service) account(ctx context.Context, domain string) (conf.Instance, *dracoon.Client, error) {
	inst, err := s.instances.Instance(ctx, domain)
	if err != nil {
		return inst, nil, err
	}
	c, err := s.accounts.client(inst.Dracoon)
	if err != nil {
		return inst, nil, errclass.AsPermanent(fmt.Errorf("instance %q: %w", domain, err))
	}
	return inst, c, nil
}

// ResolveOptions says where a job's targets come from.
type ResolveOptions struct {
	// InstanceRules adds the targets of the instance's rules for the
	// meeting's type to the job's own (the pipeline does; the one-shot
	// transfer command names its targets itself).
	InstanceRules bool
}

// Resolve applies the instance configuration to job: the targets of its
// rules (by meeting type id or "any", with $instance and $meetingType and
// expirations counted from the job's arrival) merged with the job's own,
// and every source object looked up, its size and ETag kept so that the
// transfer reads exactly that version. A missing source is a permanent
// error, unless its file is already in every target (an earlier delivery
// transferred and removed it): then it is marked gone. Resolve creates no
// room.
func (s *Service) Resolve(ctx context.Context, job *messages.Job, opts ResolveOptions) (messages.ResolvedJob, error) {
	inst, client, err := s.account(ctx, job.Instance)
	if err != nil {
		return messages.ResolvedJob{}, err
	}
	targets := job.Targets
	if opts.InstanceRules {
		var rules []messages.Target
		var errs []error
		for _, r := range inst.Dracoon.Targets {
			if !r.MeetingTypeID.Matches(job.Meeting.Type.ID) {
				continue
			}
			for _, spec := range r.CopyTo {
				t, err := messages.NewTarget(spec.Path, spec.Expiration, job.Instance, job.Meeting.Type.Name, job.ReceivedAt)
				if err != nil {
					errs = append(errs, fmt.Errorf("instance %q rule for meeting type %s, path %q: %w", job.Instance, r.MeetingTypeID, spec.Path, err))
					continue
				}
				rules = append(rules, t)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return messages.ResolvedJob{}, errclass.AsPermanent(err)
		}
		targets = messages.MergeTargets(targets, rules)
	}
	if len(targets) == 0 {
		return messages.ResolvedJob{}, errclass.AsPermanent(fmt.Errorf("job %s has no target room: the message names none and no rule of instance %q matches meeting type %s",
			job.ID, job.Instance, meetingType(job)))
	}
	var refused []string
	for _, key := range job.Source.Keys {
		if !inst.AllowsSource(job.Source.Bucket, key) {
			refused = append(refused, "s3://"+job.Source.Bucket+"/"+key)
		}
	}
	if len(refused) > 0 {
		return messages.ResolvedJob{}, errclass.AsPermanent(fmt.Errorf("source: instance %q does not take recordings from %s: its sources are %s",
			job.Instance, strings.Join(refused, ", "), sourceList(inst.Sources)))
	}
	if len(inst.Sources) == 0 {
		s.log.WithFields(logrus.Fields{logging.FieldJobID: job.ID, "instance": job.Instance, "bucket": job.Source.Bucket}).
			Warn("the instance names no sources: any bucket the service can read is taken")
	}
	rj := messages.ResolvedJob{Version: messages.ResolvedJobVersion, Job: *job, ParentRoomID: inst.Dracoon.ParentRoomID, Targets: targets}
	names := messages.FileNames(job)
	for _, key := range job.Source.Keys {
		src := messages.SourceObject{Key: key, Name: names[key]}
		obj, err := s.objects.Head(ctx, job.Source.Bucket, key)
		switch {
		case err == nil:
			src.Size, src.ETag, src.VersionID = obj.Size, obj.ETag, obj.VersionID
		case errors.Is(err, s3source.ErrNoSuchKey):
			lacking, derr := s.lackingCopies(ctx, client, rj.ParentRoomID, targets, job.Source.Bucket, key, src.Name)
			if derr != nil {
				// The lookup's class decides: a transient failure to learn
				// the truth is retried, not poisoned as a missing source.
				return messages.ResolvedJob{}, errclass.Mark(fmt.Errorf("%w (and cannot tell whether an earlier delivery transferred it: %w)", err, derr), errclass.Of(derr))
			}
			if len(lacking) > 0 {
				return messages.ResolvedJob{}, fmt.Errorf("%w; rooms %s hold no copy of it", err, strings.Join(lacking, ", "))
			}
			src.Gone = true
			s.log.WithFields(logrus.Fields{logging.FieldJobID: job.ID, "key": key}).
				Info("source already transferred to every target and removed")
		default:
			return messages.ResolvedJob{}, err
		}
		rj.Sources = append(rj.Sources, src)
	}
	return rj, nil
}

// sourceList describes the source rules of an instance.
func sourceList(rules []conf.SourceRule) string {
	var out []string
	for _, r := range rules {
		out = append(out, "s3://"+r.Bucket+"/"+r.Prefix+"*")
	}
	return strings.Join(out, ", ")
}

func meetingType(job *messages.Job) string {
	if job.Meeting.Type.ID == nil {
		return "(none)"
	}
	return fmt.Sprint(*job.Meeting.Type.ID)
}

// lackingCopies returns the paths, quoted, of the target rooms that hold no
// copy of the object bucket/key (by its stamp, of any version), without
// creating any room.
func (s *Service) lackingCopies(ctx context.Context, c *dracoon.Client, parent int64, targets []messages.Target, bucket, key, name string) ([]string, error) {
	var lacking []string
	for _, t := range targets {
		room, found, err := c.LookupRoomPath(ctx, parent, t.Path)
		if err != nil {
			return nil, err
		}
		if found {
			_, found, err = sourceCopy(ctx, c, room.ID, bucket, key, name)
			if err != nil {
				return nil, err
			}
		}
		if !found {
			lacking = append(lacking, strconv.Quote(t.Path))
		}
	}
	return lacking, nil
}

// sourceCopy returns a file in the room stamped as a copy of bucket/key, of
// any version (see transfer.FindCopy).
func sourceCopy(ctx context.Context, c *dracoon.Client, roomID int64, bucket, key, name string) (dracoon.Node, bool, error) {
	return transfer.FindCopy(ctx, c, roomID, name, messages.StampOf(bucket, key, "", ""), true)
}

// EnsureRooms finds or creates every target room of rj below the
// instance's parent room.
func (s *Service) EnsureRooms(ctx context.Context, rj messages.ResolvedJob) (messages.RoomsReady, error) {
	_, client, err := s.account(ctx, rj.Job.Instance)
	if err != nil {
		return messages.RoomsReady{}, err
	}
	rr := messages.RoomsReady{Version: messages.RoomsReadyVersion, Job: rj.Job, Sources: rj.Sources}
	for _, t := range rj.Targets {
		room, err := client.EnsureRoomPath(ctx, rj.ParentRoomID, t.Path)
		if err != nil {
			return messages.RoomsReady{}, err
		}
		rr.Rooms = append(rr.Rooms, messages.TargetRoom{Target: t, RoomID: room.ID})
	}
	return rr, nil
}

// Transfer brings every source of rr into every room and removes the
// sources afterwards when removeSource is set. Sources already gone are
// reported with the files found in the rooms.
func (s *Service) Transfer(ctx context.Context, rr messages.RoomsReady, removeSource bool) (messages.Transferred, error) {
	return s.transfer(ctx, &rr, removeSource, nil)
}

// transfer is Transfer reporting the progress of each file to progress
// (nil: none). Rooms it had to resolve again have their new ids in rr.
func (s *Service) transfer(ctx context.Context, rr *messages.RoomsReady, removeSource bool, progress transfer.ProgressFunc) (messages.Transferred, error) {
	inst, client, err := s.account(ctx, rr.Job.Instance)
	if err != nil {
		return messages.Transferred{}, err
	}
	out := messages.Transferred{Version: messages.TransferredVersion, JobID: rr.Job.ID, Instance: rr.Job.Instance,
		MeetingID: rr.Job.Meeting.ID}
	job := transfer.Job{ID: rr.Job.ID, RemoveSource: removeSource}
	for _, r := range rr.Rooms {
		job.Targets = append(job.Targets, transfer.Target{RoomID: r.RoomID, Path: r.Path, ExpireAt: r.ExpireAt})
	}
	var gone []messages.SourceObject
	for _, src := range rr.Sources {
		if src.Gone {
			gone = append(gone, src)
			continue
		}
		job.Files = append(job.Files, transfer.File{Name: src.Name, Object: s3source.Object{
			Bucket: rr.Job.Source.Bucket, Key: src.Key, Size: src.Size, ETag: src.ETag, VersionID: src.VersionID}})
	}
	if len(job.Files) > 0 {
		opts := s.engine
		opts.Progress = progress
		engine := transfer.New(s.objects, transfer.Client(client), opts)
		res, err := engine.Transfer(ctx, job)
		if errors.Is(err, dracoon.ErrRoomNotFound) {
			// A room resolved earlier (its id reused from the client's
			// cache or from the rooms stage) is gone: resolve the paths
			// again and transfer once more; files already complete are
			// found by their provenance.
			s.log.WithError(err).WithField(logging.FieldJobID, rr.Job.ID).Warn("a target room is gone; resolving the rooms again")
			if err := s.reresolve(ctx, client, inst.Dracoon.ParentRoomID, rr, &job); err != nil {
				return messages.Transferred{}, err
			}
			res, err = engine.Transfer(ctx, job)
		}
		if err != nil {
			return messages.Transferred{}, err
		}
		for _, f := range res.Files {
			tf := messages.TransferredFile{Key: f.Key, Size: f.Size, SourceRemoved: f.SourceRemoved()}
			if f.Removal == s3source.Changed {
				tf.SourceKept = "the object was replaced after it was copied; only the version copied may be removed"
			}
			for _, u := range f.Uploads {
				tf.Uploads = append(tf.Uploads, messages.UploadedFile{RoomID: u.RoomID, NodeID: u.NodeID, Name: u.Name,
					Existed: u.Existed, NameTaken: u.NameTaken})
			}
			out.Files = append(out.Files, tf)
		}
	}
	for _, src := range gone {
		tf := messages.TransferredFile{Key: src.Key, Size: src.Size, SourceRemoved: true}
		for _, r := range rr.Rooms {
			n, found, err := sourceCopy(ctx, client, r.RoomID, rr.Job.Source.Bucket, src.Key, src.Name)
			if err != nil {
				return messages.Transferred{}, err
			}
			if !found {
				return messages.Transferred{}, errclass.AsPermanent(fmt.Errorf("source s3://%s/%s is gone and room %q holds no copy of it (no file named like %q stamped with its bucket and key)",
					rr.Job.Source.Bucket, src.Key, r.Path, src.Name))
			}
			tf.Size = n.Size
			tf.Uploads = append(tf.Uploads, messages.UploadedFile{RoomID: r.RoomID, NodeID: n.ID, Name: n.Name, Existed: true})
		}
		out.Files = append(out.Files, tf)
	}
	out.SourceDeleted = len(out.Files) > 0
	for _, f := range out.Files {
		out.SourceDeleted = out.SourceDeleted && f.SourceRemoved
	}
	out.CompletedAt = time.Now().UTC()
	return out, nil
}

// reresolve finds or creates every room of rr again below parent and
// updates the room ids of rr and job.
func (s *Service) reresolve(ctx context.Context, c *dracoon.Client, parent int64, rr *messages.RoomsReady, job *transfer.Job) error {
	rooms := slices.Clone(rr.Rooms)
	for i, r := range rooms {
		room, err := c.EnsureRoomPath(ctx, parent, r.Path)
		if err != nil {
			return err
		}
		rooms[i].RoomID = room.ID
		job.Targets[i].RoomID = room.ID
	}
	rr.Rooms = rooms
	return nil
}

// ShareRequest returns the share request for the files of t.
func ShareRequest(t messages.Transferred) messages.ShareRequest {
	req := messages.ShareRequest{Version: messages.ShareRequestVersion, JobID: t.JobID, Instance: t.Instance}
	for _, f := range t.Files {
		for _, u := range f.Uploads {
			req.FileIDs = append(req.FileIDs, u.NodeID)
		}
	}
	return req
}

// Share hands the file keys of the files and rooms of req to every user who
// lacks them: the files' keys in one run (each file's listing asked once
// when nothing more is missing, the keys of all of them stored together),
// then each room's. It goes on after a file or room fails and returns the
// counts with the joined errors (a key pair that does not unlock fails
// once: the client remembers).
//
// A sweep (req.Sweep) asks for everything the instance's account can hand
// out, account-wide and page by page (see README, "The sweep"). Keys that
// could not be stored are logged and counted, and the sweep succeeds: the
// next sweep lists them again. Only a failure to list or a key pair that
// does not unlock fails it.
func (s *Service) Share(ctx context.Context, req messages.ShareRequest) (dracoon.KeyStats, error) {
	_, client, err := s.account(ctx, req.Instance)
	if err != nil {
		return dracoon.KeyStats{}, err
	}
	var (
		total dracoon.KeyStats
		errs  []error
	)
	if len(req.FileIDs) > 0 {
		scopes := make([]dracoon.KeyScope, len(req.FileIDs))
		for i, id := range req.FileIDs {
			scopes[i] = dracoon.KeyScope{FileID: id}
		}
		st, err := client.DistributeMissingKeys(ctx, scopes...)
		total.Add(st)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, id := range req.RoomIDs {
		st, err := client.DistributeMissingKeys(ctx, dracoon.KeyScope{RoomID: id})
		total.Add(st)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if req.Sweep {
		st, err := client.DistributeMissingKeys(ctx, dracoon.KeyScope{Account: true})
		total.Add(st)
		if errors.Is(err, dracoon.ErrIncomplete) {
			logging.WithCode(s.log, logging.CodeSharerError).WithError(err).WithFields(logrus.Fields{
				"instance": req.Instance, "set": st.Set, "skipped": st.Skipped, "failed": st.Failed}).
				Warn("sweep: some file keys could not be stored; the next sweep tries them again")
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot sweep instance %q: %w", req.Instance, err))
		}
	}
	return total, errors.Join(errs...)
}
