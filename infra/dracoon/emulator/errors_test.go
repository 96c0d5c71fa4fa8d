package emulator_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// TestErrorBodies_errorCode checks the raw error bodies: errorCode is an
// integer when the emulator has a code, and absent (never null) otherwise,
// including injected faults, which the spec checker skips.
func TestErrorBodies_errorCode(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	alice := e.alice()
	tests := []struct {
		name   string
		fault  *emulator.FaultRule
		req    *http.Request
		status int
		code   *int
	}{
		{name: "coded", req: svc.request(http.MethodPost, "/api/v4/nodes/files/uploads", map[string]any{"parentId": 424242, "name": "x"}),
			status: http.StatusNotFound, code: code(-40000)},
		{name: "forbidden_no_code", req: alice.request(http.MethodPost, "/api/v4/nodes/files/uploads", map[string]any{"parentId": roomRecordings, "name": "x"}),
			status: http.StatusForbidden},
		{name: "conflict_no_code", req: svc.request(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "Recordings", "adminIds": []int{userSvc}}),
			status: http.StatusConflict},
		{name: "injected_status", fault: &emulator.FaultRule{PathPrefix: "/api/v4/user/account", Status: http.StatusInternalServerError},
			req: svc.request(http.MethodGet, "/api/v4/user/account", nil), status: http.StatusInternalServerError},
		{name: "injected_after_status", fault: &emulator.FaultRule{PathPrefix: "/api/v4/user/account", After: emulator.AfterStatus, Status: http.StatusServiceUnavailable},
			req: svc.request(http.MethodGet, "/api/v4/user/account", nil), status: http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				e.Emu.InjectFault(*tc.fault)
			}
			got := send(oneShot(5*time.Second), tc.req)
			var raw map[string]json.RawMessage
			if got.err != nil || got.status != tc.status || json.Unmarshal(got.body, &raw) != nil {
				t.Fatalf("got %d %s %v, want a %d JSON error", got.status, got.body, got.err, tc.status)
			}
			ec, present := raw["errorCode"]
			switch {
			case tc.code == nil && present:
				t.Fatalf("errorCode %s present in %s, want it absent", ec, got.body)
			case tc.code != nil && string(ec) != jsonInt(*tc.code):
				t.Fatalf("errorCode %s in %s, want %d", ec, got.body, *tc.code)
			}
		})
	}
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
