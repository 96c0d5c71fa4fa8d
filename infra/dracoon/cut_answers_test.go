package dracoon

// Acceptance tests for answers whose body is cut off midway (the emulator's
// "cut" fault: the real status and headers, half the body, then the
// connection closes), on every route whose answer has a body. The request
// took effect; the client ends with one room or one file that decrypts,
// never a duplicate.

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// TestCutAnswer_writes cuts the answer of each writing route (and of the
// token and a listing) once during a whole upload and shows that the
// upload, or the room path, ends as if nothing had happened.
func TestCutAnswer_writes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		s3     bool
		rule   emulator.FaultRule
		orphan bool // a cut channel creation leaves that channel open
	}{
		{name: "token", rule: emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/oauth/token"}},
		{name: "proxy_channel", rule: emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/uploads"}, orphan: true},
		{name: "proxy_chunk", rule: emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/"}},
		{name: "proxy_completion", rule: completionRule(false)},
		{name: "s3_channel", s3: true, rule: emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/uploads"}, orphan: true},
		{name: "s3_part_urls", s3: true, rule: emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/uploads/"}},
		{name: "s3_status", s3: true, rule: emulator.FaultRule{Method: http.MethodGet, PathPrefix: "/api/v4/nodes/files/uploads/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, fl := newFaultEnv(t, tc.s3)
			ctx := context.Background()
			c := e.svc()
			room, err := c.EnsureRoomPath(ctx, roomRecordings, "cut")
			if err != nil {
				t.Fatal(err)
			}
			rule := tc.rule
			rule.After = emulator.AfterCut
			e.Emu.InjectFault(rule)
			c = e.svc() // a new client logs in again: the token request comes after the rule
			data, sum := randomData(t, lostProxySize)
			n, err := uploadParts(t, c, room.ID, "cut.bin", data, func(int, int) {})
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			checkHit(t, fl, tc.rule.Method, "cut", 1)
			v := e.svc()
			if got := countNodes(t, v, room.ID, NodeTypeFile, "cut.bin"); got != 1 {
				t.Errorf("%d files named cut.bin or its autorenamed forms, want 1", got)
			}
			if got := downloadSum(t, v, n.ID); got != sum {
				t.Error("downloaded content differs")
			}
			if open := e.Emu.OpenUploads(); open > 0 && !tc.orphan || open > 1 {
				t.Errorf("%d upload channels left open", open)
			}
		})
	}
	for _, rule := range []emulator.FaultRule{
		{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/rooms"}, // the creation
		{Method: http.MethodGet, PathPrefix: "/api/v4/nodes"},        // the reads before it
	} {
		t.Run("room_"+rule.Method, func(t *testing.T) {
			t.Parallel()
			e, fl := newFaultEnv(t, false)
			rule.After = emulator.AfterCut
			e.Emu.InjectFault(rule)
			room, err := e.svc().EnsureRoomPath(context.Background(), roomRecordings, "cut-room")
			if err != nil {
				t.Fatalf("EnsureRoomPath: %v", err)
			}
			checkHit(t, fl, rule.Method, "cut", 1)
			if got := countNodes(t, e.svc(), roomRecordings, NodeTypeRoom, "cut-room"); got != 1 || !room.IsEncrypted {
				t.Errorf("%d rooms cut-room (got %+v), want 1", got, room)
			}
		})
	}
}

// TestCutAnswer_class: a cut answer is transient and repeated for a request
// that is safe to repeat; for a write that is not, the server acted and the
// error is of class Unknown, not repeated.
func TestCutAnswer_class(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		idempotent bool
		retries    int
		wantErr    bool
		wantClass  errclass.Class
		wantRooms  int
	}{
		{name: "idempotent_retried", idempotent: true, wantRooms: 1},
		{name: "idempotent_no_retries", idempotent: true, retries: NoRetries, wantErr: true, wantClass: errclass.Transient, wantRooms: 1},
		{name: "not_idempotent", wantErr: true, wantClass: errclass.Unknown, wantRooms: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, fl := newFaultEnv(t, false)
			c := e.svc(func(cfg *Config) { cfg.Retries = tc.retries })
			e.Emu.InjectFault(emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/rooms", After: emulator.AfterCut})
			var n Node
			err := c.call(context.Background(), &request{method: http.MethodPost, path: "/v4/nodes/rooms",
				body: createRoomRequest{Name: "class-" + tc.name, ParentID: roomRecordings, InheritPermissions: true},
				ok:   []int{http.StatusCreated}, idempotent: tc.idempotent}, &n)
			var de *DecodeError
			switch {
			case !tc.wantErr && err != nil && !IsStatus(err, http.StatusConflict):
				t.Fatalf("err = %v, want success or the repeat's 409", err)
			case tc.wantErr && (!errors.As(err, &de) || errclass.Of(err) != tc.wantClass):
				t.Fatalf("err = %v (class %v), want a DecodeError of class %v", err, errclass.Of(err), tc.wantClass)
			}
			checkHit(t, fl, http.MethodPost, "cut", 1)
			if got := countNodes(t, e.svc(), roomRecordings, NodeTypeRoom, "class-"+tc.name); got != tc.wantRooms {
				t.Errorf("%d rooms, want %d", got, tc.wantRooms)
			}
		})
	}
}
