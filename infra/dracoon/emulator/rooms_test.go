package emulator_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func TestRooms_create_list_filter(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()

	var sub node
	svc.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "2026", "parentId": roomRecordings}, http.StatusCreated, &sub)
	if sub.ParentID == nil || *sub.ParentID != roomRecordings || !sub.IsEncrypted || sub.InheritPermissions == nil ||
		!*sub.InheritPermissions || sub.ParentPath != "/Recordings/" || !sub.Permissions.Manage {
		t.Fatalf("sub-room = %+v", sub)
	}
	svc.expectError(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "2026", "parentId": roomRecordings}, http.StatusConflict, nil)
	for _, name := range []string{"March", "Mars", "april"} {
		svc.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": name, "parentId": sub.ID, "inheritPermissions": true}, http.StatusCreated, nil)
	}

	tests := []struct {
		name   string
		query  string
		want   []string
		total  int64
		status int
	}{
		{name: "top_level", query: "parent_id=0", want: []string{"Plain", "Recordings"}, total: 2},
		{name: "type_and_name_eq", query: fmt.Sprintf("parent_id=%d&filter=%s", sub.ID, url.QueryEscape("type:eq:room|name:eq:March")), want: []string{"March"}, total: 1},
		{name: "name_eq_is_case_sensitive", query: fmt.Sprintf("parent_id=%d&filter=%s", sub.ID, url.QueryEscape("name:eq:march")), want: nil, total: 0},
		{name: "name_cn", query: fmt.Sprintf("parent_id=%d&filter=%s", sub.ID, url.QueryEscape("name:cn:MAR")), want: []string{"March", "Mars"}, total: 2},
		{name: "values_or", query: fmt.Sprintf("parent_id=%d&filter=%s", sub.ID, url.QueryEscape("name:eq:March:april")), want: []string{"March", "april"}, total: 2},
		{name: "type_file_none", query: fmt.Sprintf("parent_id=%d&filter=type:eq:file", sub.ID), want: nil, total: 0},
		{name: "paging", query: fmt.Sprintf("parent_id=%d&offset=1&limit=1", sub.ID), want: []string{"Mars"}, total: 3},
		{name: "limit_above_500", query: "limit=501", status: http.StatusBadRequest},
		{name: "negative_offset", query: "offset=-1", status: http.StatusBadRequest},
		{name: "unknown_parent", query: "parent_id=999999", status: http.StatusNotFound},
		{name: "unsupported_filter", query: "filter=" + url.QueryEscape("size:ge:3"), status: http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status != 0 {
				want := map[int]int{http.StatusBadRequest: -80024, http.StatusNotFound: -41000}[tc.status]
				if tc.name == "unsupported_filter" {
					want = -92001
				}
				svc.expectError(http.MethodGet, "/api/v4/nodes?"+tc.query, nil, tc.status, code(want))
				return
			}
			var list nodeList
			svc.call(http.MethodGet, "/api/v4/nodes?"+tc.query, nil, http.StatusOK, &list)
			var got []string
			for _, n := range list.Items {
				got = append(got, n.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || list.Range.Total != tc.total {
				t.Fatalf("got %v (total %d), want %v (total %d)", got, list.Range.Total, tc.want, tc.total)
			}
		})
	}

	var found nodeList
	svc.call(http.MethodGet, "/api/v4/nodes/search?search_string=mar*&depth_level=-1", nil, http.StatusOK, &found)
	if found.Range.Total != 2 {
		t.Errorf("search mar*: %d hits, want 2", found.Range.Total)
	}
	var got node
	svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/%d", sub.ID), nil, http.StatusOK, &got)
	if got.EncryptionInfo == nil || got.EncryptionInfo.UserKeyState != "available" {
		t.Errorf("single node GET lacks encryptionInfo: %+v", got)
	}
}

func TestRooms_names_and_permissions(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc, alice := e.svc(), e.alice()
	for _, name := range []string{"a/b", "COM1", "lpt9.txt", "-lead", "trail.", "x|y", strings.Repeat("n", 151), "what?"} {
		t.Run(fmt.Sprintf("bad_name_%q", name), func(t *testing.T) {
			svc.expectError(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": name, "parentId": roomRecordings}, http.StatusBadRequest, code(-40755))
		})
	}
	alice.expectError(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "x", "parentId": roomRecordings}, http.StatusForbidden, nil)
	alice.expectError(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "top", "parentId": nil, "adminIds": []int{userAlice}}, http.StatusForbidden, nil)
	svc.expectError(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "top", "parentId": nil}, http.StatusBadRequest, code(-40006))
	svc.expectError(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "top", "inheritPermissions": true}, http.StatusBadRequest, code(-40017))
	var top node
	svc.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "Top", "parentId": nil, "adminIds": []int{userSvc}}, http.StatusCreated, &top)
	if top.ParentID != nil || top.ParentPath != "/" || top.IsEncrypted {
		t.Fatalf("top-level room = %+v", top)
	}

	// Encrypt: empty top-level room 200; again is a no-op; room with children 400 -40008.
	svc.call(http.MethodPut, fmt.Sprintf("/api/v4/nodes/rooms/%d/encrypt", top.ID), map[string]any{"isEncrypted": true}, http.StatusOK, &top)
	if !top.IsEncrypted {
		t.Fatal("room not encrypted")
	}
	svc.call(http.MethodPut, fmt.Sprintf("/api/v4/nodes/rooms/%d/encrypt", top.ID), map[string]any{"isEncrypted": true}, http.StatusOK, nil)
	var sub node
	svc.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "child", "parentId": roomPlain}, http.StatusCreated, &sub)
	svc.expectError(http.MethodPut, fmt.Sprintf("/api/v4/nodes/rooms/%d/encrypt", roomPlain), map[string]any{"isEncrypted": true}, http.StatusBadRequest, code(-40008))
	svc.expectError(http.MethodPut, fmt.Sprintf("/api/v4/nodes/rooms/%d/encrypt", sub.ID), map[string]any{"isEncrypted": true}, http.StatusBadRequest, nil)

	// Room users: inherited members show up; PUT grants; alice then creates.
	var users struct {
		Items []struct {
			UserInfo           struct{ ID int64 } `json:"userInfo"`
			PublicKeyContainer *struct{ Version string }
			Permissions        perms
		} `json:"items"`
	}
	svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/rooms/%d/users", roomRecordings), nil, http.StatusOK, &users)
	if len(users.Items) != 4 {
		t.Fatalf("room users: %d, want 4", len(users.Items))
	}
	var sub2 node
	svc.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "inherits", "parentId": roomRecordings}, http.StatusCreated, &sub2)
	alice.expectError(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "x", "parentId": sub2.ID}, http.StatusForbidden, nil)
	alice.expectError(http.MethodPut, fmt.Sprintf("/api/v4/nodes/rooms/%d/users", sub2.ID),
		map[string]any{"items": []any{map[string]any{"id": userAlice, "permissions": allPerms(true)}}}, http.StatusForbidden, nil)
	svc.call(http.MethodPut, fmt.Sprintf("/api/v4/nodes/rooms/%d/users", sub2.ID),
		map[string]any{"items": []any{map[string]any{"id": userAlice, "permissions": allPerms(true)}}}, http.StatusNoContent, nil)
	alice.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "x", "parentId": sub2.ID}, http.StatusCreated, nil)
	svc.expectError(http.MethodPut, fmt.Sprintf("/api/v4/nodes/rooms/%d/users", sub2.ID),
		map[string]any{"items": []any{map[string]any{"id": 4242, "permissions": allPerms(true)}}}, http.StatusNotFound, code(-70501))

	// Dave sees no rooms at all.
	var list nodeList
	e.login("dave", "dave-pw").call(http.MethodGet, "/api/v4/nodes", nil, http.StatusOK, &list)
	if list.Range.Total != 0 {
		t.Errorf("dave sees %d rooms", list.Range.Total)
	}
}

func allPerms(v bool) map[string]bool {
	out := map[string]bool{}
	for _, k := range []string{"manage", "read", "create", "change", "delete", "manageDownloadShare", "manageUploadShare",
		"readRecycleBin", "restoreRecycleBin", "deleteRecycleBin"} {
		out[k] = v
	}
	return out
}

func TestRooms_concurrent_create_same_name(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	const n = 12
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v4/nodes/rooms",
				strings.NewReader(fmt.Sprintf(`{"name":"same","parentId":%d}`, roomRecordings)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+svc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusConflict] != n-1 {
		t.Fatalf("statuses %v, want one 201 and %d 409", count, n-1)
	}
}
