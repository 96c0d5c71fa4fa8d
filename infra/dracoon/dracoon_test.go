package dracoon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/messages"
)

// The classified errors of the client.
var (
	_ errclass.Classifier = (*APIError)(nil)
	_ errclass.Classifier = (*DecodeError)(nil)
)

func TestAuth_login_and_account(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	c := e.svc()
	ua, err := c.Account(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ua.ID != userSvc || ua.UserName != "svc" {
		t.Errorf("account = %+v", ua)
	}
	bad := e.client("svc", "wrong-pw", "")
	_, err = bad.Account(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || !errclass.IsPermanent(err) {
		t.Fatalf("wrong password: err = %v, want permanent APIError", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") || strings.Contains(err.Error(), testClientSecret) {
		t.Errorf("error reveals a secret: %v", err)
	}
}

func TestAuth_refresh_after_expiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, func(c *emulator.Config) { c.AccessTokenLifetime = 2 * time.Second })
	c := e.svc()
	ctx := context.Background()
	if _, err := c.Account(ctx); err != nil {
		t.Fatal(err)
	}
	c.auth.mu.Lock()
	gen, first := c.auth.gen, c.auth.access
	c.auth.mu.Unlock()
	time.Sleep(2100 * time.Millisecond)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := c.Account(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c.auth.mu.Lock()
	defer c.auth.mu.Unlock()
	if c.auth.gen != gen+1 || c.auth.access == first {
		t.Errorf("token generation %d -> %d, want one shared refresh", gen, c.auth.gen)
	}
}

func TestAuth_refresh_on_401(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	c := e.svc()
	ctx := context.Background()
	if _, err := c.Account(ctx); err != nil {
		t.Fatal(err)
	}
	c.auth.mu.Lock()
	tok, gen := c.auth.access, c.auth.gen
	c.auth.mu.Unlock()
	e.revoke(tok)
	if _, err := c.Account(ctx); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	c.auth.mu.Lock()
	defer c.auth.mu.Unlock()
	if c.auth.gen != gen+1 {
		t.Errorf("token generation %d -> %d, want a refresh", gen, c.auth.gen)
	}
}

func TestEnsureRoomPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	c := e.svc()
	ctx := context.Background()

	t.Run("creates_nested_then_finds_it", func(t *testing.T) {
		n, err := c.EnsureRoomPath(ctx, roomRecordings, "2026/Team A/Weekly")
		if err != nil {
			t.Fatal(err)
		}
		if n.Name != "Weekly" || !n.IsEncrypted || n.ParentPath != "/Recordings/2026/Team A/" {
			t.Errorf("room = %+v", n)
		}
		again, err := c.EnsureRoomPath(ctx, roomRecordings, "/2026//Team A/Weekly/")
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != n.ID {
			t.Errorf("second resolution gave room %d, want %d", again.ID, n.ID)
		}
	})
	t.Run("resolved_once_until_gone", func(t *testing.T) {
		c := e.svc()
		n, err := c.EnsureRoomPath(ctx, roomRecordings, "cached/room")
		if err != nil {
			t.Fatal(err)
		}
		before := e.Emu.Requests()
		again, err := c.EnsureRoomPath(ctx, roomRecordings, "cached/room/")
		if err != nil || again.ID != n.ID {
			t.Fatalf("second resolution: %+v, %v", again, err)
		}
		if found, ok, err := c.LookupRoomPath(ctx, roomRecordings, "cached/room"); err != nil || !ok || found.ID != n.ID {
			t.Fatalf("lookup: %+v, %t, %v", found, ok, err)
		}
		if d := e.Emu.Requests().Sub(before); d.Total != 0 {
			t.Errorf("a resolved path was asked for again:\n%s", d)
		}
		e.Emu.DeleteNode(n.ID)
		if _, err := c.FindFiles(ctx, n.ID, "x"); !errors.Is(err, ErrRoomNotFound) || errclass.IsPermanent(err) {
			t.Fatalf("listing a deleted room: %v, want ErrRoomNotFound (not permanent)", err)
		}
		if _, err := c.StartUpload(ctx, UploadSpec{ParentID: n.ID, Name: "x.bin", Size: 1}); !errors.Is(err, ErrRoomNotFound) {
			t.Fatalf("uploading into a deleted room: %v, want ErrRoomNotFound", err)
		}
		fresh, err := c.EnsureRoomPath(ctx, roomRecordings, "cached/room")
		if err != nil || fresh.ID == n.ID {
			t.Fatalf("after the 404: %+v, %v; want the path resolved again to a new room", fresh, err)
		}
	})
	t.Run("concurrent_callers_share_rooms", func(t *testing.T) {
		ids := make([]int64, 5)
		var wg sync.WaitGroup
		for i := range ids {
			c := e.svc() // separate clients, as separate workers would be
			wg.Go(func() {
				n, err := c.EnsureRoomPath(ctx, roomRecordings, "race/one/two")
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = n.ID
			})
		}
		wg.Wait()
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Fatalf("ids = %v, want one room", ids)
			}
		}
		for _, name := range []string{"race", "one", "two"} {
			var list nodeList
			err := c.call(ctx, &request{method: http.MethodGet, path: "/v4/nodes/search",
				query: map[string][]string{"search_string": {name}, "parent_id": {"0"}, "depth_level": {"-1"}, "filter": {"type:eq:room"}}}, &list)
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			for _, n := range list.Items {
				if n.Name == name {
					count++
				}
			}
			if count != 1 {
				t.Errorf("%d rooms named %q, want 1", count, name)
			}
		}
	})
	t.Run("refuses_unencrypted_room", func(t *testing.T) {
		_, err := c.EnsureRoomPath(ctx, roomPlain, "sub")
		if !errors.Is(err, ErrRoomNotEncrypted) || !strings.Contains(err.Error(), `"sub"`) {
			t.Fatalf("err = %v, want ErrRoomNotEncrypted naming the path", err)
		}
	})
	t.Run("refuses_room_without_create_permission", func(t *testing.T) {
		_, err := e.alice().EnsureRoomPath(ctx, roomRecordings, "")
		if !errors.Is(err, ErrNoCreatePermission) {
			t.Fatalf("err = %v, want ErrNoCreatePermission", err)
		}
	})
	t.Run("refuses_illegal_segment", func(t *testing.T) {
		_, err := c.EnsureRoomPath(ctx, roomRecordings, "a/b:c")
		if !errors.Is(err, ErrInvalidPath) {
			t.Fatalf("err = %v, want ErrInvalidPath", err)
		}
	})
}

func TestUpload_roundtrip(t *testing.T) {
	t.Parallel()
	const chunk = 64 << 10
	tests := []struct {
		name string
		s3   bool
		size int
	}{
		{"proxy_empty", false, 0},
		{"proxy_one_byte", false, 1},
		{"proxy_one_chunk", false, chunk},
		{"proxy_many_chunks", false, 5*chunk + 17},
		{"s3_empty", true, 0},
		{"s3_one_byte", true, 1},
		{"s3_many_parts", true, 2*MinS3PartSize + 1<<20 + 5},
	}
	envs := map[bool]*env{false: newEnv(t, false, nil), true: newEnv(t, true, nil)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := envs[tt.s3]
			c := e.svc()
			data, sum := randomData(t, tt.size)
			n := upload(t, c, roomRecordings, tt.name+".bin", data)
			if got := downloadSum(t, c, n.ID); got != sum {
				t.Fatalf("downloaded content differs")
			}
		})
	}
}

// TestUpload_resolution_fail_conflict: completing onto a taken name never
// makes a second file: a file of the same size is taken as the result (an
// earlier delivery's), one of another size is a permanent ErrNameConflict.
func TestUpload_resolution_fail_conflict(t *testing.T) {
	t.Parallel()
	for _, s3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("s3=%v", s3), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, s3, nil)
			c := e.svc()
			data, _ := randomData(t, 100)
			first := upload(t, c, roomRecordings, "dup.bin", data)
			again := upload(t, c, roomRecordings, "dup.bin", data)
			if again.ID != first.ID {
				t.Fatalf("second upload of the same name and size: node %d, want the first one %d", again.ID, first.ID)
			}
			_, err := uploadDefault(c, roomRecordings, "dup.bin", data[:99])
			if !errors.Is(err, ErrNameConflict) || !errclass.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent ErrNameConflict", err)
			}
			if n := countFiles(t, c, roomRecordings, "dup"); n != 1 {
				t.Fatalf("%d files named dup*, want 1", n)
			}
		})
	}
}

func TestMissingKeys_members_and_vector_after_restart(t *testing.T) {
	t.Parallel()
	for _, s3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("s3=%v", s3), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, s3, nil)
			ctx := context.Background()
			c := e.svc()
			room, err := c.EnsureRoomPath(ctx, roomRecordings, "keys")
			if err != nil {
				t.Fatal(err)
			}
			data, sum := randomData(t, 3*(64<<10)+3)
			n := upload(t, c, room.ID, "shared.bin", data)

			e.Restart()
			c = e.svc()
			st, err := c.DistributeMissingKeys(ctx, KeyScope{FileID: n.ID})
			if err != nil {
				t.Fatal(err)
			}
			// alice and vec get keys; carol has no key pair and is not listed.
			if st != (messages.KeyStats{Set: 2}) {
				t.Errorf("stats = %+v, want 2 set", st)
			}
			st, err = c.DistributeMissingKeys(ctx, KeyScope{RoomID: room.ID})
			if err != nil || st != (messages.KeyStats{}) {
				t.Errorf("second run: %+v, %v; want nothing to do", st, err)
			}
			for name, member := range map[string]*Client{"alice": e.alice(), "vector": e.vec()} {
				if got := downloadSum(t, member, n.ID); got != sum {
					t.Errorf("%s: decrypted content differs", name)
				}
			}
			// The vector's private key itself unwraps vec's key.
			vkp, pw := vectorKeyPair(t)
			priv, err := crypto.Unlock(vkp.PrivateKeyContainer, pw)
			if err != nil {
				t.Fatal(err)
			}
			fk, err := e.vec().UserFileKey(ctx, n.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := priv.UnwrapFileKey(fk); err != nil {
				t.Errorf("vector key cannot unwrap: %v", err)
			}
		})
	}
}

func TestMissingKeys_skips_what_it_cannot_serve(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	ctx := context.Background()
	c := e.svc()
	data, _ := randomData(t, 10)
	n := upload(t, c, roomRecordings, "a.bin", data)
	// alice holds no key for the file, so she cannot serve anyone: the
	// server lists nothing for her (it requires the caller's key).
	st, err := e.alice().DistributeMissingKeys(ctx, KeyScope{FileID: n.ID})
	if err != nil || st.Set != 0 {
		t.Fatalf("alice: %+v, %v", st, err)
	}
	if _, err := c.DistributeMissingKeys(ctx, KeyScope{}); err == nil {
		t.Error("empty scope accepted")
	}
}

func TestUpload_survives_faults(t *testing.T) {
	t.Parallel()
	// One rule per case: the emulator's InjectFault applies the wrong
	// rule when several are queued (see the report).
	tests := []struct {
		name string
		s3   bool
		rule emulator.FaultRule
	}{
		{"proxy_chunk_429", false, emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/", Status: http.StatusTooManyRequests, RetryAfter: time.Second}},
		{"proxy_chunk_500", false, emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/", Status: http.StatusInternalServerError, Times: 2}},
		{"proxy_chunk_reset", false, emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/uploads/", Reset: true, Times: 2}},
		{"channel_503", false, emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/uploads", Status: http.StatusServiceUnavailable}},
		{"oauth_502", false, emulator.FaultRule{PathPrefix: "/oauth/token", Status: http.StatusBadGateway}},
		{"keypair_reset", false, emulator.FaultRule{Method: http.MethodGet, PathPrefix: "/api/v4/user/account/keypair", Reset: true}},
		{"s3_part_503", true, emulator.FaultRule{Method: http.MethodPut, PathPrefix: emulator.S3PathPrefix, Status: http.StatusServiceUnavailable, Times: 2}},
		{"s3_part_reset", true, emulator.FaultRule{Method: http.MethodPut, PathPrefix: emulator.S3PathPrefix, Reset: true}},
		{"s3_urls_429", true, emulator.FaultRule{Method: http.MethodPost, PathPrefix: "/api/v4/nodes/files/uploads/", Status: http.StatusTooManyRequests, RetryAfter: time.Second}},
		{"s3_status_500", true, emulator.FaultRule{Method: http.MethodGet, PathPrefix: "/api/v4/nodes/files/uploads/", Status: http.StatusInternalServerError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.s3, nil)
			e.Emu.InjectFault(tt.rule)
			c := e.svc()
			size := 4*(64<<10) + 9
			if tt.s3 {
				size = MinS3PartSize + 100
			}
			data, sum := randomData(t, size)
			n := upload(t, c, roomRecordings, "faulty.bin", data)
			if got := downloadSum(t, c, n.ID); got != sum {
				t.Fatal("downloaded content differs")
			}
		})
	}
	t.Run("random_s3_faults", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, true, func(c *emulator.Config) {
			c.Faults = emulator.Faults{Seed: 7, StatusRates: map[int]float64{500: 0.2, 429: 0.1}, ResetRate: 0.1,
				PathPrefixes: []string{emulator.S3PathPrefix}}
		})
		c := e.svc(func(cfg *Config) { cfg.Retries = 8 })
		data, sum := randomData(t, 2*MinS3PartSize+10)
		n := upload(t, c, roomRecordings, "random.bin", data)
		if got := downloadSum(t, c, n.ID); got != sum {
			t.Fatal("downloaded content differs")
		}
	})
}

func TestUpload_failure_cancels_channel(t *testing.T) {
	t.Parallel()
	for _, s3 := range []bool{false, true} {
		t.Run(fmt.Sprintf("s3=%v", s3), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, s3, nil)
			c := e.svc(func(cfg *Config) { cfg.Retries = 1 })
			prefix := "/api/v4/uploads/"
			if s3 {
				prefix = emulator.S3PathPrefix
			}
			e.Emu.InjectFault(emulator.FaultRule{PathPrefix: prefix, Method: http.MethodPost, Status: http.StatusInternalServerError, Times: 100})
			e.Emu.InjectFault(emulator.FaultRule{PathPrefix: prefix, Method: http.MethodPut, Status: http.StatusInternalServerError, Times: 100})
			ctx := context.Background()
			u, err := c.StartUpload(ctx, UploadSpec{ParentID: roomRecordings, Name: "doomed.bin", Size: 100})
			if err != nil {
				t.Fatal(err)
			}
			err = u.WritePart(ctx, 1, 0, make([]byte, 100))
			if !IsStatus(err, http.StatusInternalServerError) {
				t.Fatalf("err = %v, want 500", err)
			}
			if !uploadGone(t, c, u.ID()) {
				t.Error("upload channel still exists after failure")
			}
			if err := u.WritePart(ctx, 1, 0, make([]byte, 100)); !errors.Is(err, ErrUploadClosed) {
				t.Errorf("write after failure: %v", err)
			}
		})
	}
	t.Run("bad_part", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false, nil)
		c := e.svc()
		ctx := context.Background()
		u, err := c.StartUpload(ctx, UploadSpec{ParentID: roomRecordings, Name: "bad.bin", Size: 100})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.WritePart(ctx, 1, 16, make([]byte, 100)); !errors.Is(err, ErrBadPart) {
			t.Fatalf("err = %v, want ErrBadPart", err)
		}
		if !uploadGone(t, c, u.ID()) {
			t.Error("upload channel still exists after failure")
		}
	})
}

// TestUpload_beyond_4GiB sends the last chunk of a 4 GiB + 100 byte proxy
// upload at its real 64-bit offset; the emulator's sparse preallocation
// stands in for the first 4 GiB.
func TestUpload_beyond_4GiB(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, nil)
	c := e.svc()
	ctx := context.Background()
	const size = 4<<30 + 100
	u, err := c.StartUpload(ctx, UploadSpec{ParentID: roomRecordings, Name: "huge.bin", Size: size})
	if err != nil {
		t.Fatal(err)
	}
	last := u.Parts()
	off, length := u.PartRange(last)
	if off <= 4<<30-64<<10 || off+length != size {
		t.Fatalf("last part %d at %d+%d", last, off, length)
	}
	if err := e.Emu.PreallocateUpload(u.ID(), off); err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	u.next = last // the earlier chunks are the preallocated hole
	u.mu.Unlock()
	if err := u.WritePart(ctx, last, off, make([]byte, length)); err != nil {
		t.Fatal(err)
	}
	key, _ := crypto.GenerateFileKey(nil)
	key.Tag = make([]byte, crypto.TagSize) // content is not checked by the server
	fk, err := c.WrapFileKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	n, err := u.Complete(ctx, fk)
	if err != nil {
		t.Fatal(err)
	}
	if n.Size != size {
		t.Errorf("node size %d, want %d", n.Size, int64(size))
	}
}

func TestPartLayout_64bit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		size      int64
		partSize  int64
		wantParts int
		wantLast  int64
		wantRange string // of the last part
	}{
		{"empty", 0, 64 << 10, 1, 0, ""},
		{"one_byte", 1, 64 << 10, 1, 1, "bytes 0-0/1"},
		{"exact", 128 << 10, 64 << 10, 2, 64 << 10, "bytes 65536-131071/131072"},
		{"beyond_4GiB", 5<<30 + 7, 32 << 20, 161, 7, "bytes 5368709120-5368709126/5368709127"},
		{"max_gcm", crypto.MaxFileSize, s3PartSize(crypto.MaxFileSize, 32<<20), 2048, 0, ""},
		{"many_s3_parts", crypto.MaxFileSize, s3PartSize(crypto.MaxFileSize, MinS3PartSize), 10000, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &Upload{spec: UploadSpec{Size: tt.size}, partSize: tt.partSize, parts: partCount(tt.size, tt.partSize)}
			if u.parts > MaxS3Parts || (tt.wantParts != 0 && u.parts != tt.wantParts) {
				t.Fatalf("parts = %d, want %d", u.parts, tt.wantParts)
			}
			off, length := u.PartRange(u.parts)
			if off+length != tt.size || off%crypto.SegmentAlign != 0 {
				t.Fatalf("last part %d+%d does not end the file", off, length)
			}
			if tt.wantRange != "" {
				if length != tt.wantLast {
					t.Errorf("last length %d, want %d", length, tt.wantLast)
				}
				if got := contentRange(off, length, tt.size); got != tt.wantRange {
					t.Errorf("Content-Range %q, want %q", got, tt.wantRange)
				}
			}
		})
	}
	if ps := s3PartSize(1, 0); ps != MinS3PartSize {
		t.Errorf("s3PartSize(1, 0) = %d", ps)
	}
}

// TestErrorClass covers every kind of error the client returns.
func TestErrorClass(t *testing.T) {
	t.Parallel()
	api := func(status int) error { return fmt.Errorf("x: %w", &APIError{Status: status, Op: "GET /v4/x"}) }
	tests := []struct {
		name string
		err  error
		want errclass.Class
	}{
		{"400", api(400), errclass.Permanent},
		{"401 api", api(401), errclass.Transient},
		{"403", api(403), errclass.Permanent},
		{"404", api(404), errclass.Permanent},
		{"406", api(406), errclass.Permanent},
		{"408", api(408), errclass.Transient},
		{"409", api(409), errclass.Transient},
		{"412 eula", api(412), errclass.Permanent},
		{"413", api(413), errclass.Permanent},
		{"422", api(422), errclass.Permanent},
		{"429", api(429), errclass.Transient},
		{"500", api(500), errclass.Transient},
		{"502", api(502), errclass.Transient},
		{"503", api(503), errclass.Transient},
		{"507", api(507), errclass.Transient},
		{"302 refused redirect", api(302), errclass.Permanent},
		{"token 400 invalid_grant", &APIError{Status: 400, Op: tokenRoute, Message: "invalid_grant"}, errclass.Permanent},
		{"token 401 invalid_client", &APIError{Status: 401, Op: tokenRoute, Message: "invalid_client"}, errclass.Permanent},
		{"token 503", &APIError{Status: 503, Op: tokenRoute}, errclass.Transient},
		{"presigned 403 expired", &APIError{Status: 403, Op: presignedRoute}, errclass.Transient},
		{"retry after", &retryAfterError{&APIError{Status: 429}, time.Second}, errclass.Transient},
		{"decode cut off", &DecodeError{Op: "GET /v4/nodes", Err: io.ErrUnexpectedEOF}, errclass.Transient},
		{"network", netError(&request{route: "GET /x"}, &net.OpError{Op: "read", Err: syscall.ECONNRESET}), errclass.Transient},
		{"context", context.DeadlineExceeded, errclass.Transient},
		{"room not encrypted", fmt.Errorf("x: %w", ErrRoomNotEncrypted), errclass.Permanent},
		{"no create permission", fmt.Errorf("x: %w", ErrNoCreatePermission), errclass.Permanent},
		{"invalid path", ErrInvalidPath, errclass.Permanent},
		{"invalid name", ErrInvalidName, errclass.Permanent},
		{"checksum", ErrChecksum, errclass.Transient},
		{"bad part", ErrBadPart, errclass.Permanent},
		{"size mismatch", ErrSizeMismatch, errclass.Permanent},
		{"no key pair", ErrNoKeyPair, errclass.Permanent},
		{"upload failed", ErrUploadFailed, errclass.Transient},
		{"name conflict", ErrNameConflict, errclass.Permanent},
		{"outcome unknown", fmt.Errorf("x: %w: %w", ErrOutcomeUnknown, api(502)), errclass.Unknown},
		{"incomplete", ErrIncomplete, errclass.Transient},
		{"closed after permanent", fmt.Errorf("%w: %w", ErrUploadClosed, ErrBadPart), errclass.Permanent},
		{"closed after transient", fmt.Errorf("%w: %w", ErrUploadClosed, api(503)), errclass.Transient},
		{"wrong encryption password", fmt.Errorf("x: %w", crypto.ErrWrongPassword), errclass.Permanent},
	}
	for _, tt := range tests {
		if got := errclass.Of(tt.err); got != tt.want {
			t.Errorf("%s: %v is %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestShouldRetry(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", Login: "l", Password: "p", ClientID: "i", ClientSecret: "s",
		MinBackoff: time.Millisecond, MaxBackoff: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		idempotent bool
		err        error
		want       bool
		minWait    time.Duration
	}{
		{"429_with_retry_after", context.Background(), false, &retryAfterError{&APIError{Status: 429}, 2 * time.Second}, true, 2 * time.Second},
		{"500_idempotent", context.Background(), true, fmt.Errorf("x: %w", &APIError{Status: 500}), true, 0},
		{"500_not_idempotent", context.Background(), false, fmt.Errorf("x: %w", &APIError{Status: 500}), false, 0},
		{"refused_not_idempotent", context.Background(), false, fmt.Errorf("x: %w", syscall.ECONNREFUSED), true, 0},
		{"presigned_403", context.Background(), true, &APIError{Status: 403, Op: presignedRoute}, false, 0},
		{"404", context.Background(), true, &APIError{Status: 404}, false, 0},
		{"network_idempotent", context.Background(), true, errors.New("connection reset"), true, 0},
		{"network_not_idempotent", context.Background(), false, errors.New("connection reset"), false, 0},
		{"decode_cut_off", context.Background(), true, &DecodeError{Err: io.ErrUnexpectedEOF}, true, 0},
		{"context", canceled, true, context.Canceled, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, wait := c.shouldRetry(tt.ctx, &request{idempotent: tt.idempotent}, tt.err, 0)
			if got != tt.want || wait < tt.minWait {
				t.Errorf("shouldRetry = %v after %s, want %v after >= %s", got, wait, tt.want, tt.minWait)
			}
		})
	}
}

// TestMissingKeys_user_with_two_key_pairs covers a user migrating from an
// "A" key pair to RSA-4096: the server lists the user once per public key, and
// each gets a file key of its own version.
func TestMissingKeys_user_with_two_key_pairs(t *testing.T) {
	t.Parallel()
	const userDave = 99
	legacy, err := crypto.GenerateKeyPair(crypto.KeyPairVersionA, encPassword, crypto.WithIterations(1000))
	if err != nil {
		t.Fatal(err)
	}
	current := generatedKeyPairs(t)[1]
	e := newEnv(t, false, func(c *emulator.Config) {
		c.Seed.Users = append(c.Seed.Users, emulator.SeedUser{ID: userDave, UserName: "dave", Password: "dave-pw",
			KeyPairs: []json.RawMessage{rawJSON(t, legacy), rawJSON(t, current)}})
		c.Seed.Rooms[0].Members = append(c.Seed.Rooms[0].Members, emulator.SeedMember{UserID: userDave, Permissions: emulator.SeedPermissions{Read: true}})
	})
	ctx := context.Background()
	c := e.svc()
	data, sum := randomData(t, 1000)
	n := upload(t, c, roomRecordings, "migrating.bin", data)
	st, err := c.DistributeMissingKeys(ctx, KeyScope{FileID: n.ID})
	if err != nil {
		t.Fatal(err)
	}
	// Stats count (user, file) pairs: alice, vec and dave, whose pair needs
	// a key for each of his public keys.
	if st != (messages.KeyStats{Set: 3}) {
		t.Errorf("stats = %+v, want 3 set", st)
	}
	// The server lists a user once per key version still lacking a key, so an
	// empty second run shows that both of dave's versions were served.
	if st, err := c.DistributeMissingKeys(ctx, KeyScope{FileID: n.ID}); err != nil || st != (messages.KeyStats{}) {
		t.Errorf("second run: %+v, %v; want nothing left", st, err)
	}
	if got := downloadSum(t, e.client("dave", "dave-pw", encPassword), n.ID); got != sum {
		t.Error("dave: decrypted content differs")
	}
}
