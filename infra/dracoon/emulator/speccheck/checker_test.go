package speccheck_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator/speccheck"
)

// fakeTB records errors instead of failing.
type fakeTB struct{ errs []string }

func (f *fakeTB) Helper()                           {}
func (f *fakeTB) Errorf(format string, args ...any) { f.errs = append(f.errs, format) }

func TestChecker_flags_nonconforming_traffic(t *testing.T) {
	spec, err := speccheck.Load()
	if err != nil {
		t.Fatal(err)
	}
	node := `{"id":5,"type":"room","name":"x","parentPath":"/","permissions":{"manage":true,"read":true,"create":true,"change":true,"delete":true,"manageDownloadShare":false,"manageUploadShare":false,"readRecycleBin":false,"restoreRecycleBin":false,"deleteRecycleBin":false}}`
	tests := []struct {
		name       string
		method     string
		path       string
		reqBody    string
		reqType    string
		status     int
		respBody   string
		respHeader map[string]string
		wantPhase  string // "" means: no violation
	}{
		{name: "valid_room_create", method: "POST", path: "/api/v4/nodes/rooms", reqBody: `{"name":"x","parentId":null}`, reqType: "application/json",
			status: 201, respBody: node},
		{name: "unknown_response_field", method: "POST", path: "/api/v4/nodes/rooms", reqBody: `{"name":"x"}`, reqType: "application/json",
			status: 201, respBody: strings.Replace(node, `"id":5`, `"id":5,"bogusField":0`, 1), wantPhase: "response"},
		{name: "renamed_request_field", method: "POST", path: "/api/v4/nodes/rooms", reqBody: `{"name":"x","parentID":3}`, reqType: "application/json",
			status: 201, respBody: node, wantPhase: "request"},
		{name: "undocumented_status", method: "POST", path: "/api/v4/nodes/rooms", reqBody: `{"name":"x"}`, reqType: "application/json",
			status: 202, respBody: node, wantPhase: "response"},
		{name: "error_code_absent_allowed", method: "POST", path: "/api/v4/nodes/rooms", reqBody: `{"name":"x"}`, reqType: "application/json",
			status: 409, respBody: `{"code":409,"message":"Conflict","debugInfo":"x"}`},
		{name: "error_code_null_rejected", method: "POST", path: "/api/v4/nodes/rooms", reqBody: `{"name":"x"}`, reqType: "application/json",
			status: 409, respBody: `{"code":409,"message":"Conflict","debugInfo":"x","errorCode":null}`, wantPhase: "response"},
		{name: "error_shape_wrong", method: "GET", path: "/api/v4/nodes", status: 400, respBody: `{"status":400}`, wantPhase: "response"},
		{name: "raw_chunk_without_content_type", method: "POST", path: "/api/v4/uploads/tok", reqBody: "rawbytes",
			status: 201, respBody: `{"size":8,"hash":"00"}`},
		{name: "chunk_response_missing_hash", method: "POST", path: "/api/v4/uploads/tok", reqBody: "rawbytes",
			status: 201, respBody: `{"size":8}`, wantPhase: "response"},
		{name: "unknown_route", method: "GET", path: "/api/v4/nope", status: 404, respBody: `{}`, wantPhase: "route"},
		{name: "oauth_skipped", method: "POST", path: "/oauth/token", status: 200, respBody: `{"anything":1}`},
		{name: "fault_skipped", method: "GET", path: "/api/v4/nodes", status: 429, respBody: `{}`,
			respHeader: map[string]string{"X-Emulator-Fault": "status-429"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checker := speccheck.NewChecker(spec, nil)
			h := checker.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.respHeader {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.respBody))
			}))
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.reqBody))
			if tc.reqType != "" {
				req.Header.Set("Content-Type", tc.reqType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			vs := checker.Violations()
			switch {
			case tc.wantPhase == "" && len(vs) > 0:
				t.Fatalf("unexpected violations: %v", vs)
			case tc.wantPhase != "" && (len(vs) == 0 || vs[0].Phase != tc.wantPhase):
				t.Fatalf("violations %v, want one in phase %q", vs, tc.wantPhase)
			}
			f := &fakeTB{}
			checker.Verify(f)
			if len(f.errs) != len(vs) {
				t.Fatalf("Verify reported %d errors for %d violations", len(f.errs), len(vs))
			}
		})
	}
}
