package dracoon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// endlessServer is a DRACOON whose listings never end: every page of
// GET /v4/nodes and of GET /v4/nodes/missingFileKeys is full (or holds
// one item, with short), whatever the offset, and its range.total always
// promises more. It counts the listing requests.
func endlessServer(t *testing.T, short bool, listed *atomic.Int64) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "t", "token_type": "bearer", "expires_in": 3600})
	})
	page := func(r *http.Request, limit int) (offset, n int) {
		offset, _ = strconv.Atoi(r.URL.Query().Get("offset"))
		if short {
			return offset, 1
		}
		return offset, limit
	}
	mux.HandleFunc("GET /api/v4/nodes", func(w http.ResponseWriter, r *http.Request) {
		listed.Add(1)
		offset, n := page(r, maxListLimit)
		items := make([]map[string]any, n)
		for i := range items {
			// Neither the room nor the file a caller looks for.
			items[i] = map[string]any{"id": offset + i + 100, "type": "folder", "name": "other-" + strconv.Itoa(offset+i)}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"range": map[string]any{"offset": offset, "limit": n, "total": offset + 10*n + 1}, "items": items})
	})
	mux.HandleFunc("GET /api/v4/nodes/missingFileKeys", func(w http.ResponseWriter, r *http.Request) {
		listed.Add(1)
		offset, n := page(r, maxMissingKeysLimit)
		items := make([]map[string]any, n)
		for i := range items {
			// Pairs this account cannot serve (no file key listed): stepped over.
			items[i] = map[string]any{"userId": offset + i + 1, "fileId": 7}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"range": map[string]any{"offset": offset, "limit": n, "total": offset + 10*n + 1},
			"items": items, "users": []any{}, "files": []any{}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestListings_end: every paged listing of the client stops after a bounded
// number of pages on a server that never ends it, with a permanent error
// wrapping ErrListingEndless that names the listing.
func TestListings_end(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		short     bool // one item per page instead of full pages
		list      func(ctx context.Context, c *Client) error
		wantPages int64
		wantName  string
	}{
		{name: "room_lookup", list: func(ctx context.Context, c *Client) error {
			_, _, err := c.findChild(ctx, 1, NodeTypeRoom, "wanted")
			return err
		}, wantPages: maxListPages, wantName: "GET /v4/nodes"},
		{name: "room_lookup_one_per_page", short: true, list: func(ctx context.Context, c *Client) error {
			_, _, err := c.FindFile(ctx, 1, "wanted.mp4")
			return err
		}, wantPages: maxListPages, wantName: "GET /v4/nodes"},
		{name: "files_by_name", list: func(ctx context.Context, c *Client) error {
			_, err := c.FindFiles(ctx, 1, "wanted")
			return err
		}, wantPages: maxListPages, wantName: "GET /v4/nodes"},
		{name: "missing_keys", list: func(ctx context.Context, c *Client) error {
			_, err := c.DistributeMissingKeys(ctx, KeyScope{Account: true})
			return err
		}, wantPages: maxMissingKeyPages, wantName: "GET /v4/nodes/missingFileKeys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var listed atomic.Int64
			c, err := New(Config{BaseURL: endlessServer(t, tc.short, &listed), Login: "svc", Password: conf.Secret("pw"),
				ClientID: "id", ClientSecret: conf.Secret("secret"), MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = tc.list(ctx, c)
			if !errors.Is(err, ErrListingEndless) || !errclass.IsPermanent(err) || !strings.Contains(err.Error(), tc.wantName) {
				t.Fatalf("err = %v (class %v), want a permanent ErrListingEndless naming %s", err, errclass.Of(err), tc.wantName)
			}
			if got := listed.Load(); got != tc.wantPages {
				t.Errorf("%d pages asked for, want %d", got, tc.wantPages)
			}
		})
	}
}
