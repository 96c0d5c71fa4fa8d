package emulator_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// TestRequests_counts_by_route: the emulator counts every request by its
// route (tokens and ids left out), the counter endpoint answers the same
// counts as Requests and does not count itself, and RouteClass sorts the
// routes into their classes.
func TestRequests_counts_by_route(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Config{})
	c := e.svc() // one token request
	c.call(http.MethodGet, "/api/v4/nodes/10", nil, http.StatusOK, nil)
	c.call(http.MethodGet, "/api/v4/nodes/10", nil, http.StatusOK, nil)
	c.call(http.MethodGet, "/api/v4/nodes?parent_id=10", nil, http.StatusOK, nil)
	c.call(http.MethodGet, "/api/v4/nodes/files/uploads/no-such-upload", nil, http.StatusNotFound, nil)

	resp, err := http.Get(e.URL + emulator.RequestsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got emulator.RequestCounts
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"POST /oauth/token":                           1,
		"GET /api/v4/nodes/{node_id}":                 2,
		"GET /api/v4/nodes":                           1,
		"GET /api/v4/nodes/files/uploads/{upload_id}": 1,
	}
	if got.Total != 5 || len(got.Routes) != len(want) {
		t.Fatalf("counts %s; want 5 requests: %v", got, want)
	}
	for r, n := range want {
		if got.Routes[r] != n {
			t.Errorf("%s: %d, want %d", r, got.Routes[r], n)
		}
	}
	if again := e.Emu.Requests(); again.Total != got.Total {
		t.Errorf("Requests() total %d, the endpoint said %d (it must not count itself)", again.Total, got.Total)
	}
	classes := got.Classes()
	for class, n := range map[string]int64{emulator.ClassLogin: 1, emulator.ClassNodeRead: 2,
		emulator.ClassNodeList: 1, emulator.ClassStatusPoll: 1} {
		if classes[class] != n {
			t.Errorf("class %s: %d, want %d (%v)", class, classes[class], n, classes)
		}
	}
	if d := e.Emu.Requests().Sub(got); d.Total != 0 || len(d.Routes) != 0 {
		t.Errorf("Sub of equal counts: %s", d)
	}
}

func TestRouteClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		route, want string
	}{
		{"POST /oauth/token", emulator.ClassLogin},
		{"GET /api/v4/user/account/keypair", emulator.ClassKeyPair},
		{"POST /api/v4/nodes/files/uploads", emulator.ClassUploadChannel},
		{"POST /api/v4/nodes/files/uploads/{upload_id}/s3_urls", emulator.ClassPartURLs},
		{"PUT " + emulator.S3PathPrefix + "{upload_id}/{part}", emulator.ClassPartPut},
		{"POST /api/v4/uploads/{token}", emulator.ClassPartPut},
		{"PUT /api/v4/uploads/{token}", emulator.ClassCompletion},
		{"PUT /api/v4/nodes/files/uploads/{upload_id}/s3", emulator.ClassCompletion},
		{"GET /api/v4/nodes/missingFileKeys", emulator.ClassMissingKeys},
		{"POST /api/v4/nodes/files/keys", emulator.ClassKeyUpload},
		{"GET /api/v4/public/system/info", emulator.ClassOther},
	}
	for _, tt := range tests {
		if got := emulator.RouteClass(tt.route); got != tt.want {
			t.Errorf("RouteClass(%q) = %q, want %q", tt.route, got, tt.want)
		}
	}
}
