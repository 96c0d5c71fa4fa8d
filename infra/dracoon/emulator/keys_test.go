package emulator_test

import (
	"fmt"
	"net/http"
	"sort"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

type missingKeys struct {
	Range struct{ Offset, Limit, Total int64 } `json:"range"`
	Items []struct {
		UserID int64 `json:"userId"`
		FileID int64 `json:"fileId"`
	} `json:"items"`
	Users []struct {
		ID                 int64 `json:"id"`
		PublicKeyContainer struct {
			Version   string `json:"version"`
			PublicKey string `json:"publicKey"`
		} `json:"publicKeyContainer"`
	} `json:"users"`
	Files []struct {
		ID               int64   `json:"id"`
		FileKeyContainer fileKey `json:"fileKeyContainer"`
	} `json:"files"`
}

func TestMissingFileKeys_and_distribution(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	svc, alice, bob, carol := e.svc(), e.alice(), e.bob(), e.carol()
	svcKey := testKey("RSA-4096/AES-256-GCM", "svc")
	f := svc.uploadFile(roomRecordings, "rec.mp4", pattern(100, 1), 64, &svcKey)
	path := fmt.Sprintf("/api/v4/nodes/missingFileKeys?file_id=%d&limit=100", f.ID)

	var mk missingKeys
	svc.call(http.MethodGet, path, nil, http.StatusOK, &mk)
	// Alice (RSA-4096) and Bob (A and RSA-4096) lack keys; Carol has no key
	// pair, Dave is no member, svc holds its key.
	var items []string
	for _, it := range mk.Items {
		if it.FileID != f.ID {
			t.Errorf("item for file %d", it.FileID)
		}
		items = append(items, fmt.Sprint(it.UserID))
	}
	var users []string
	for _, u := range mk.Users {
		users = append(users, fmt.Sprintf("%d/%s", u.ID, u.PublicKeyContainer.Version))
	}
	sort.Strings(users)
	if fmt.Sprint(items) != "[2 3]" || fmt.Sprint(users) != "[2/RSA-4096 3/A 3/RSA-4096]" || mk.Range.Total != 2 {
		t.Fatalf("items %v users %v total %d", items, users, mk.Range.Total)
	}
	if len(mk.Files) != 1 || mk.Files[0].ID != f.ID || mk.Files[0].FileKeyContainer != svcKey {
		t.Fatalf("files %+v", mk.Files)
	}

	// Paging and limits.
	svc.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/missingFileKeys?room_id=%d&offset=1&limit=1", roomRecordings), nil, http.StatusOK, &mk)
	if len(mk.Items) != 1 || mk.Items[0].UserID != userBob || mk.Range.Total != 2 || len(mk.Users) != 2 {
		t.Fatalf("page 2: %+v", mk)
	}
	svc.expectError(http.MethodGet, "/api/v4/nodes/missingFileKeys?limit=101", nil, http.StatusBadRequest, code(-80024))
	svc.expectError(http.MethodGet, fmt.Sprintf("/api/v4/nodes/missingFileKeys?room_id=%d", roomPlain), nil, http.StatusBadRequest, code(-40001))
	svc.expectError(http.MethodGet, "/api/v4/nodes/missingFileKeys?file_id=9999999", nil, http.StatusNotFound, code(-40751))
	carol.expectError(http.MethodGet, path, nil, http.StatusForbidden, code(-70020))
	// Alice has no key for the file yet: nothing she could serve.
	alice.call(http.MethodGet, path, nil, http.StatusOK, &mk)
	if len(mk.Items) != 0 {
		t.Fatalf("alice sees %d items", len(mk.Items))
	}
	alice.expectError(http.MethodPost, "/api/v4/nodes/files/keys", map[string]any{"items": []any{
		map[string]any{"fileId": f.ID, "userId": userBob, "fileKey": testKey("A", "bob")}}}, http.StatusForbidden, code(-40761))
	alice.expectError(http.MethodGet, fmt.Sprintf("/api/v4/nodes/files/%d/user_file_key", f.ID), nil, http.StatusNotFound, code(-40761))

	// svc distributes; a second key for Alice does not replace the first.
	aliceKey := testKey("RSA-4096/AES-256-GCM", "alice")
	svc.call(http.MethodPost, "/api/v4/nodes/files/keys", map[string]any{"items": []any{
		map[string]any{"fileId": f.ID, "userId": userAlice, "fileKey": aliceKey},
		map[string]any{"fileId": f.ID, "userId": userBob, "fileKey": testKey("A", "bob")},
	}}, http.StatusNoContent, nil)
	svc.call(http.MethodPost, "/api/v4/nodes/files/keys", map[string]any{"items": []any{
		map[string]any{"fileId": f.ID, "userId": userAlice, "fileKey": testKey("RSA-4096/AES-256-GCM", "mallory")},
	}}, http.StatusNoContent, nil)
	var k fileKey
	alice.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/files/%d/user_file_key", f.ID), nil, http.StatusOK, &k)
	if k != aliceKey {
		t.Fatalf("alice's key was replaced: %+v", k)
	}
	var got node
	alice.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/%d", f.ID), nil, http.StatusOK, &got)
	if got.EncryptionInfo == nil || got.EncryptionInfo.UserKeyState != "available" {
		t.Errorf("alice's encryptionInfo %+v", got.EncryptionInfo)
	}

	// Bob still lacks his RSA-4096 key: one item, one public key.
	svc.call(http.MethodGet, path, nil, http.StatusOK, &mk)
	if len(mk.Items) != 1 || mk.Items[0].UserID != userBob || len(mk.Users) != 1 || mk.Users[0].PublicKeyContainer.Version != "RSA-4096" {
		t.Fatalf("after first batch: %+v", mk)
	}
	// Alice may serve Bob now that she holds a key.
	alice.call(http.MethodPost, "/api/v4/nodes/files/keys", map[string]any{"items": []any{
		map[string]any{"fileId": f.ID, "userId": userBob, "fileKey": testKey("RSA-4096/AES-256-GCM", "bob")}}}, http.StatusNoContent, nil)
	svc.call(http.MethodGet, path, nil, http.StatusOK, &mk)
	if len(mk.Items) != 0 || mk.Range.Total != 0 {
		t.Fatalf("still missing: %+v", mk)
	}
	bob.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/files/%d/user_file_key?version=A", f.ID), nil, http.StatusOK, &k)
	if k.Version != "A" {
		t.Fatalf("bob's A key %+v", k)
	}
	bob.call(http.MethodGet, fmt.Sprintf("/api/v4/nodes/files/%d/user_file_key", f.ID), nil, http.StatusOK, &k)
	if k.Version != "RSA-4096/AES-256-GCM" {
		t.Fatalf("bob's preferred key %+v", k)
	}

	// Carol gets a key pair: she becomes missing.
	carol.call(http.MethodPost, "/api/v4/user/account/keypair", keyPairJSON("RSA-4096", userCarol), http.StatusNoContent, nil)
	svc.call(http.MethodGet, path, nil, http.StatusOK, &mk)
	if len(mk.Items) != 1 || mk.Items[0].UserID != userCarol {
		t.Fatalf("carol not missing: %+v", mk)
	}

	// Validation of the batch.
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/keys", map[string]any{"items": []any{
		map[string]any{"fileId": f.ID, "userId": 4242, "fileKey": aliceKey}}}, http.StatusNotFound, code(-70501))
	svc.expectError(http.MethodPost, "/api/v4/nodes/files/keys", map[string]any{"items": []any{
		map[string]any{"fileId": 4242, "userId": userAlice, "fileKey": aliceKey}}}, http.StatusNotFound, code(-40751))
}

// TestMissingFileKeys_account_wide: without room_id and file_id the listing
// covers every file the caller holds a key for, in every encrypted room,
// ordered by file then user and paged with offset and limit; each page
// names only its own files and users.
func TestMissingFileKeys_account_wide(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Config{})
	svc := e.svc()
	svcKey := testKey("RSA-4096/AES-256-GCM", "svc")
	var sub node
	svc.call(http.MethodPost, "/api/v4/nodes/rooms", map[string]any{"name": "sub", "parentId": roomRecordings,
		"inheritPermissions": true}, http.StatusCreated, &sub)
	f1 := svc.uploadFile(roomRecordings, "one.mp4", pattern(100, 1), 64, &svcKey)
	f2 := svc.uploadFile(sub.ID, "two.mp4", pattern(100, 2), 64, &svcKey)

	var all missingKeys
	svc.call(http.MethodGet, "/api/v4/nodes/missingFileKeys", nil, http.StatusOK, &all)
	var items []string
	for _, it := range all.Items {
		items = append(items, fmt.Sprintf("%d/%d", it.FileID, it.UserID))
	}
	want := fmt.Sprint([]string{fmt.Sprintf("%d/2", f1.ID), fmt.Sprintf("%d/3", f1.ID), fmt.Sprintf("%d/2", f2.ID), fmt.Sprintf("%d/3", f2.ID)})
	if fmt.Sprint(items) != want || all.Range.Total != 4 || all.Range.Limit != 100 {
		t.Fatalf("items %v (total %d, limit %d), want %s", items, all.Range.Total, all.Range.Limit, want)
	}

	var first, second missingKeys
	svc.call(http.MethodGet, "/api/v4/nodes/missingFileKeys?offset=0&limit=3", nil, http.StatusOK, &first)
	svc.call(http.MethodGet, "/api/v4/nodes/missingFileKeys?offset=3&limit=3", nil, http.StatusOK, &second)
	if len(first.Items) != 3 || len(second.Items) != 1 || first.Range.Total != 4 || second.Range.Total != 4 {
		t.Fatalf("pages of 3: %d and %d items (totals %d, %d)", len(first.Items), len(second.Items), first.Range.Total, second.Range.Total)
	}
	// Bob has two key pairs: he is named once per public key.
	if len(second.Files) != 1 || second.Files[0].ID != f2.ID || len(second.Users) != 2 ||
		second.Users[0].ID != userBob || second.Users[1].ID != userBob {
		t.Fatalf("page 2 names files %+v and users %+v, want file %d and bob's two public keys only", second.Files, second.Users, f2.ID)
	}
}
