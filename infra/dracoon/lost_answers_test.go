package dracoon

// Acceptance tests for lost answers: a request takes full effect on the
// server and its answer is then lost (TCP reset), spoiled (502) or late
// (beyond the client's Timeout). Whatever was lost, the client ends with one
// file (or room) and a success, never a duplicate "name (1).ext", and no
// upload channel is left open; where the truth cannot be learned it says so
// (ErrOutcomeUnknown) and a second delivery finds the file.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// Sizes of the lost-answer uploads: several proxy chunks (the test client's
// ChunkSize is 64 KiB); two S3 parts (a full one and a short last one).
const (
	lostProxySize = 3*(64<<10) + 17
	lostS3Size    = MinS3PartSize + 100
)

// Fault-injection settings of the lost-answer tests.
const (
	lostTimeout = 500 * time.Millisecond // the client's Timeout in the "late" cases
	lostDelay   = 2 * time.Second        // how long the emulator holds the answer back
)

func modeName(s3 bool) string {
	if s3 {
		return "s3"
	}
	return "proxy"
}

// completionRule matches the completion of an upload: PUT /v4/uploads/{token}
// (proxy) or PUT /v4/nodes/files/uploads/{upload_id}/s3 (S3 direct, the only
// PUT below that prefix in S3 mode).
func completionRule(s3 bool) emulator.FaultRule {
	if s3 {
		return emulator.FaultRule{Method: http.MethodPut, PathPrefix: "/api/v4/nodes/files/uploads/"}
	}
	return emulator.FaultRule{Method: http.MethodPut, PathPrefix: "/api/v4/uploads/"}
}

// lostFault is one way to lose an answer after the request took effect.
type lostFault struct {
	name   string
	after  emulator.AfterFault
	status int
	logged string // the emulator's name of the fault (faultLog)
}

var (
	lostReset = lostFault{"reset", emulator.AfterReset, 0, "after-reset"}
	lost502   = lostFault{"502", emulator.AfterStatus, http.StatusBadGateway, "after-status-502"}
	lostLate  = lostFault{"late", emulator.AfterDelay, 0, "after-delay"}
	// notActed is the control: a 502 before the handler, so the request had
	// no effect and must be repeated.
	notActed = lostFault{"502_not_acted", emulator.AfterNone, http.StatusBadGateway, "status-502"}
)

// apply sets the fault on rule.
func (f lostFault) apply(rule emulator.FaultRule) emulator.FaultRule {
	rule.After, rule.Status = f.after, f.status
	if f.after == emulator.AfterDelay {
		rule.Delay = lostDelay
	}
	return rule
}

// client returns the uploading client for f: for a late answer one whose
// Timeout (its own transport's response-header timeout) gives up before the
// answer arrives.
func (f lostFault) client(e *env, mod ...func(*Config)) *Client {
	if f.after == emulator.AfterDelay {
		mod = append(mod, func(c *Config) { c.Timeout, c.HTTPClient = lostTimeout, nil })
	}
	return e.svc(mod...)
}

// uploadDefault uploads data as name with a fresh key and the default
// resolution strategy (what callers get without choosing one).
func uploadDefault(c *Client, room int64, name string, data []byte) (Node, error) {
	return putFile(context.Background(), c, UploadSpec{ParentID: room, Name: name, Size: int64(len(data))}, data,
		testPartsInFlight, nil)
}

// uploadParts uploads data as name through the Upload API one part after
// another (as the transfer engine drives it), calling before(n, parts) ahead
// of part n of parts, and completes it.
func uploadParts(t *testing.T, c *Client, room int64, name string, data []byte, before func(n, parts int)) (Node, error) {
	t.Helper()
	return sealedUpload(t, c, room, name, data, func(u *Upload, n int, off int64, part []byte) error {
		before(n, u.Parts())
		return u.WritePart(context.Background(), n, off, part)
	})
}

// checkOneFile checks the end state after an upload of name that returned
// n: exactly one file of the name (no "name (1).ext"), it is n, its content
// decrypts to sum, and no upload channel is open.
func checkOneFile(t *testing.T, e *env, room int64, name string, n Node, sum [32]byte) {
	t.Helper()
	v := e.svc() // a client with the default timeout and retries
	if got := countNodes(t, v, room, NodeTypeFile, name); got != 1 {
		t.Errorf("%d files named %q or its autorenamed forms, want 1", got, name)
	}
	f, found, err := v.FindFile(context.Background(), room, name)
	if err != nil || !found || f.ID != n.ID || f.Size != n.Size {
		t.Errorf("FindFile = %+v, %v, %v; want the returned node %d of %d bytes", f, found, err, n.ID, n.Size)
	}
	if got := downloadSum(t, v, n.ID); got != sum {
		t.Error("downloaded content differs")
	}
	if open := e.Emu.OpenUploads(); open != 0 {
		t.Errorf("%d upload channels left open", open)
	}
}

// checkHit checks that the emulator injected fault into method requests
// exactly want times.
func checkHit(t *testing.T, fl *faultLog, method, fault string, want int) {
	t.Helper()
	if got := fl.count(method, fault); got != want {
		t.Errorf("fault %s %s injected %d times, want %d", method, fault, got, want)
	}
}

// TestLostAnswer_completion: the completion took effect and its answer was
// lost; the client learns the truth (S3: the upload's status; proxy: the
// file looked up by name) instead of failing or completing a second time.
// The control case, a 502 from a completion that had no effect, is
// completed again.
func TestLostAnswer_completion(t *testing.T) {
	t.Parallel()
	for _, s3 := range []bool{false, true} {
		for _, f := range []lostFault{lostReset, lost502, lostLate, notActed} {
			t.Run(modeName(s3)+"_"+f.name, func(t *testing.T) {
				t.Parallel()
				e, fl := newFaultEnv(t, s3)
				e.Emu.InjectFault(f.apply(completionRule(s3)))
				c := f.client(e)
				data, sum := randomData(t, 1000)
				n, err := uploadDefault(c, roomRecordings, "lost-completion.bin", data)
				if err != nil {
					t.Fatalf("upload: %v", err)
				}
				checkHit(t, fl, http.MethodPut, f.logged, 1)
				checkOneFile(t, e, roomRecordings, "lost-completion.bin", n, sum)
			})
		}
	}
}

// TestLostAnswer_part: a proxy chunk or an S3 part was stored and its answer
// lost; it is sent again at the same range or part number, which the server
// overwrites, and the file decrypts byte-exact.
func TestLostAnswer_part(t *testing.T) {
	t.Parallel()
	for _, s3 := range []bool{false, true} {
		size, rule, method := lostProxySize, emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/"}, http.MethodPost
		if s3 {
			size, rule, method = lostS3Size, emulator.FaultRule{Method: http.MethodPut, PathPrefix: emulator.S3PathPrefix}, http.MethodPut
		}
		for _, f := range []lostFault{lostReset, lost502} {
			for _, which := range []string{"first", "last"} {
				t.Run(modeName(s3)+"_"+f.name+"_"+which, func(t *testing.T) {
					t.Parallel()
					e, fl := newFaultEnv(t, s3)
					c := e.svc()
					data, sum := randomData(t, size)
					n, err := uploadParts(t, c, roomRecordings, "lost-part.bin", data, func(n, parts int) {
						if (which == "first" && n == 1) || (which == "last" && n == parts && parts > 1) {
							e.Emu.InjectFault(f.apply(rule))
						}
					})
					if err != nil {
						t.Fatalf("upload: %v", err)
					}
					checkHit(t, fl, method, f.logged, 1)
					checkOneFile(t, e, roomRecordings, "lost-part.bin", n, sum)
				})
			}
		}
	}
}

// TestLostAnswer_room_creation: a room was created and the answer lost; the
// repeated creation meets 409 and the room is looked up again.
func TestLostAnswer_room_creation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f     lostFault
		times int
	}{{lostReset, 1}, {lost502, 1}, {lostReset, 2}} // twice: the repeat's 409 is lost too
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_x%d", tt.f.name, tt.times), func(t *testing.T) {
			t.Parallel()
			e, fl := newFaultEnv(t, false)
			rule := tt.f.apply(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/rooms"})
			rule.Times = tt.times
			e.Emu.InjectFault(rule)
			ctx := context.Background()
			c := e.svc()
			room, err := c.EnsureRoomPath(ctx, roomRecordings, "lost-room/inner")
			if err != nil {
				t.Fatalf("EnsureRoomPath: %v", err)
			}
			checkHit(t, fl, http.MethodPost, tt.f.logged, tt.times)
			v := e.svc()
			outer, found, err := v.findChild(ctx, roomRecordings, NodeTypeRoom, "lost-room")
			if err != nil || !found {
				t.Fatalf("room lost-room: found=%v err=%v", found, err)
			}
			inner, found, err := v.findChild(ctx, outer.ID, NodeTypeRoom, "inner")
			if err != nil || !found || inner.ID != room.ID || !room.IsEncrypted {
				t.Fatalf("EnsureRoomPath gave %+v; listed inner %+v found=%v err=%v", room, inner, found, err)
			}
			if got := countNodes(t, v, roomRecordings, NodeTypeRoom, "lost-room"); got != 1 {
				t.Errorf("%d rooms lost-room, want 1", got)
			}
			if got := countNodes(t, v, outer.ID, NodeTypeRoom, "inner"); got != 1 {
				t.Errorf("%d rooms inner, want 1", got)
			}
		})
	}
}

// TestLostAnswer_channel_creation: the upload channel was created and the
// answer lost. The client repeats the creation (StartUpload documents it)
// and uploads through the second channel; it cannot know the first one's id,
// so that one stays open, unused, until the server expires it. Nothing else
// is left: one file, at most that one orphan channel.
func TestLostAnswer_channel_creation(t *testing.T) {
	t.Parallel()
	for _, s3 := range []bool{false, true} {
		t.Run(modeName(s3), func(t *testing.T) {
			t.Parallel()
			e, fl := newFaultEnv(t, s3)
			// The first POST below this prefix is the channel creation (the
			// s3_urls requests come after it).
			e.Emu.InjectFault(lostReset.apply(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/uploads"}))
			c := e.svc()
			data, sum := randomData(t, 1000)
			n, err := uploadDefault(c, roomRecordings, "lost-channel.bin", data)
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			checkHit(t, fl, http.MethodPost, "after-reset", 1)
			open := e.Emu.OpenUploads()
			if open > 1 {
				t.Errorf("%d upload channels open, want at most the orphan of the lost creation", open)
			}
			t.Logf("upload channels open after success: %d (the orphan of the lost creation)", open)
			v := e.svc()
			if got := countNodes(t, v, roomRecordings, NodeTypeFile, "lost-channel.bin"); got != 1 {
				t.Errorf("%d files, want 1", got)
			}
			if got := downloadSum(t, v, n.ID); got != sum {
				t.Error("downloaded content differs")
			}
		})
	}
}

// TestLostAnswer_key_upload: a batch of file keys was stored and the answer
// lost; storing it again is harmless, the members decrypt, and a second run
// has nothing to do.
func TestLostAnswer_key_upload(t *testing.T) {
	t.Parallel()
	for _, f := range []lostFault{lostReset, lost502} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			e, fl := newFaultEnv(t, false)
			ctx := context.Background()
			c := e.svc()
			room, err := c.EnsureRoomPath(ctx, roomRecordings, "lost-keys")
			if err != nil {
				t.Fatal(err)
			}
			data, sum := randomData(t, 2*(64<<10)+5)
			n := upload(t, c, room.ID, "shared.bin", data)
			e.Emu.InjectFault(f.apply(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/keys"}))
			st, err := c.DistributeMissingKeys(ctx, KeyScope{FileID: n.ID})
			if err != nil || st != (messages.KeyStats{Set: 2}) {
				t.Fatalf("stats %+v, err %v; want 2 set (alice and vec)", st, err)
			}
			checkHit(t, fl, http.MethodPost, f.logged, 1)
			st, err = c.DistributeMissingKeys(ctx, KeyScope{RoomID: room.ID})
			if err != nil || st != (messages.KeyStats{}) {
				t.Errorf("second run: %+v, %v; want nothing to do", st, err)
			}
			for name, member := range map[string]*Client{"alice": e.alice(), "vec": e.vec()} {
				if got := downloadSum(t, member, n.ID); got != sum {
					t.Errorf("%s: decrypted content differs", name)
				}
			}
		})
	}
}

// TestLostAnswer_name_conflict: a file of the name but another size exists.
// Completing is a permanent ErrNameConflict, also when the 409 itself is
// lost; the existing file is untouched and the channel is cancelled.
func TestLostAnswer_name_conflict(t *testing.T) {
	t.Parallel()
	for _, s3 := range []bool{false, true} {
		for _, lose := range []bool{false, true} {
			name := modeName(s3) + "_409"
			if lose {
				name += "_answer_lost"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e, fl := newFaultEnv(t, s3)
				c := e.svc()
				data, sum := randomData(t, 100)
				first := upload(t, c, roomRecordings, "taken.bin", data)
				if lose {
					e.Emu.InjectFault(lostReset.apply(completionRule(s3)))
				}
				other, _ := randomData(t, 99)
				_, err := uploadDefault(c, roomRecordings, "taken.bin", other)
				if !errors.Is(err, ErrNameConflict) || !errclass.IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent ErrNameConflict", err)
				}
				if lose {
					checkHit(t, fl, http.MethodPut, "after-reset", 1)
				}
				checkOneFile(t, e, roomRecordings, "taken.bin", first, sum)
			})
		}
	}
}

// TestLostAnswer_outcome_unknown: the completion's answer is lost and the
// lookup that would tell the truth fails as well. The error says the outcome
// is unknown (class Unknown) and leaves the channel alone; once the server
// answers again, a second delivery of the same file finds the first one.
func TestLostAnswer_outcome_unknown(t *testing.T) {
	t.Parallel()
	const retries = 2
	for _, s3 := range []bool{false, true} {
		t.Run(modeName(s3), func(t *testing.T) {
			t.Parallel()
			e, fl := newFaultEnv(t, s3)
			ctx := context.Background()
			// Nothing GETs below /api/v4/nodes before the completion: the
			// lookup after it (the file list, or the S3 upload's status) is
			// the first to meet the 503s.
			e.Emu.InjectFault(lostReset.apply(completionRule(s3)))
			const outage = 50
			e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodGet, PathPrefix: "/api/v4/nodes",
				Status: http.StatusServiceUnavailable, RetryAfter: time.Millisecond, Times: outage})
			c := e.svc(func(cfg *Config) { cfg.Retries, cfg.MaxBackoff = retries, 20*time.Millisecond })
			data, sum := randomData(t, 1000)
			_, err := uploadDefault(c, roomRecordings, "unknown.bin", data)
			if !errors.Is(err, ErrOutcomeUnknown) || !errclass.IsUnknown(err) {
				t.Fatalf("err = %v (class %v), want ErrOutcomeUnknown of class unknown", err, errclass.Of(err))
			}
			checkHit(t, fl, http.MethodPut, "after-reset", 1)
			checkHit(t, fl, http.MethodGet, "status-503", retries+1)

			// The outage ends: use up the rest of the 503s.
			probe := e.svc(func(cfg *Config) { cfg.Retries = NoRetries })
			for i := 0; ; i++ {
				if _, err := probe.Node(ctx, roomRecordings); err == nil {
					break
				} else if i > outage || !IsStatus(err, http.StatusServiceUnavailable) {
					t.Fatalf("outage does not end: %v", err)
				}
			}
			n, err := uploadDefault(c, roomRecordings, "unknown.bin", data)
			if err != nil {
				t.Fatalf("second delivery: %v", err)
			}
			checkOneFile(t, e, roomRecordings, "unknown.bin", n, sum)
		})
	}
}
