package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// Key versions (reference §1.1). Key pair "A" wraps file keys of version "A";
// key pair "RSA-4096" wraps file keys of version "RSA-4096/AES-256-GCM".
const (
	keyVersionA           = "A"
	keyPairVersionRSA4096 = "RSA-4096"
	fileKeyVersionRSA4096 = "RSA-4096/AES-256-GCM"
)

// maxMissingKeysLimit is the enforced limit of GET /v4/nodes/missingFileKeys.
// The document's limit parameter says "Maximum 500" but the operation's
// description (and the reference) says "enforced limit of 100"; the emulator
// refuses a larger limit with 400 -80024 so that clients page by 100.
const maxMissingKeysLimit = 100

// fileKeyVersionFor maps a key pair version to the version of the file keys
// it wraps; unknown versions map to themselves.
func fileKeyVersionFor(pairVersion string) string {
	if pairVersion == keyPairVersionRSA4096 {
		return fileKeyVersionRSA4096
	}
	return pairVersion
}

// keyPairInput is the part of UserKeyPairContainer the emulator checks.
type keyPairInput struct {
	PrivateKeyContainer *privateKeyContainer `json:"privateKeyContainer"`
	PublicKeyContainer  *publicKeyContainer  `json:"publicKeyContainer"`
}

// parseKeyPair checks a UserKeyPairContainer and keeps it verbatim. It only
// looks at versions and PEM labels; the private key stays opaque.
func parseKeyPair(raw json.RawMessage) (keyPairRec, error) {
	var in keyPairInput
	if err := json.Unmarshal(raw, &in); err != nil {
		return keyPairRec{}, apiErrNull(http.StatusBadRequest, "invalid key pair container: "+err.Error())
	}
	pub, priv := in.PublicKeyContainer, in.PrivateKeyContainer
	if pub == nil || pub.Version == "" || !strings.Contains(pub.PublicKey, "BEGIN PUBLIC KEY") {
		return keyPairRec{}, apiErr(http.StatusBadRequest, codeInvalidPublicKey, "Invalid public key format")
	}
	if priv == nil || priv.Version != pub.Version || !strings.Contains(priv.PrivateKey, "PRIVATE KEY") {
		return keyPairRec{}, apiErr(http.StatusBadRequest, codeInvalidPrivateKey, "Invalid private key format")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return keyPairRec{}, apiErrNull(http.StatusBadRequest, "invalid key pair container")
	}
	return keyPairRec{Version: pub.Version, Container: compact.Bytes(), Public: *pub}, nil
}

// preferredKeyPair returns the key pair of this version, or without a version
// the first the user owns in the order of keyPairAlgorithms (RSA-4096, then
// A, then any other).
func preferredKeyPair(u *userRec, version string) *keyPairRec {
	if version != "" {
		for i := range u.KeyPairs {
			if u.KeyPairs[i].Version == version {
				return &u.KeyPairs[i]
			}
		}
		return nil
	}
	for _, v := range []string{keyPairVersionRSA4096, keyVersionA} {
		if kp := preferredKeyPair(u, v); kp != nil {
			return kp
		}
	}
	if len(u.KeyPairs) > 0 {
		return &u.KeyPairs[0]
	}
	return nil
}

// writeRaw writes a stored JSON document.
func writeRaw(w http.ResponseWriter, status int, raw []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

func errNoKeyPair(status int) error {
	return apiErr(status, codeNoKeyPair, "User does not have a keypair")
}

// handleGetKeyPair is GET /v4/user/account/keypair[?version=] → 200
// UserKeyPairContainer or 404 -70020.
func (s *Server) handleGetKeyPair(w http.ResponseWriter, r *http.Request, uid int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	kp := preferredKeyPair(s.st.Users[uid], r.URL.Query().Get("version"))
	if kp == nil {
		return errNoKeyPair(http.StatusNotFound)
	}
	writeRaw(w, http.StatusOK, kp.Container)
	return nil
}

// handleGetKeyPairs is GET /v4/user/account/keypairs → 200 [UserKeyPairContainer].
func (s *Server) handleGetKeyPairs(w http.ResponseWriter, r *http.Request, uid int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[uid]
	if len(u.KeyPairs) == 0 {
		return errNoKeyPair(http.StatusNotFound)
	}
	parts := make([][]byte, 0, len(u.KeyPairs))
	for _, kp := range u.KeyPairs {
		parts = append(parts, kp.Container)
	}
	writeRaw(w, http.StatusOK, append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']'))
	return nil
}

// handleSetKeyPair is POST /v4/user/account/keypair → 204; 409 -70021 when the
// user already has a key pair (reference: delete it first). The document lists
// -70021 under both 400 and 409 for this operation; the emulator follows the
// reference and answers 409.
func (s *Server) handleSetKeyPair(w http.ResponseWriter, r *http.Request, uid int64) error {
	var raw json.RawMessage
	if err := decodeJSON(r, &raw); err != nil {
		return err
	}
	kp, err := parseKeyPair(raw)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[uid]
	if len(u.KeyPairs) > 0 {
		return apiErr(http.StatusConflict, codeKeyPairExists, "User does already have a keypair")
	}
	u.KeyPairs = append(u.KeyPairs, kp)
	if err := s.commitLocked(); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleDeleteKeyPair is DELETE /v4/user/account/keypair[?version=] → 204. The
// user's file keys wrapped for that key pair are dropped with it, since
// nobody can unwrap them any more.
func (s *Server) handleDeleteKeyPair(w http.ResponseWriter, r *http.Request, uid int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[uid]
	kp := preferredKeyPair(u, r.URL.Query().Get("version"))
	if kp == nil {
		return errNoKeyPair(http.StatusNotFound)
	}
	version := kp.Version
	kept := u.KeyPairs[:0]
	for _, p := range u.KeyPairs {
		if p.Version != version {
			kept = append(kept, p)
		}
	}
	u.KeyPairs = kept
	for _, byUser := range s.st.FileKeys {
		delete(byUser[uid], fileKeyVersionFor(version))
		if len(byUser[uid]) == 0 {
			delete(byUser, uid)
		}
	}
	if err := s.commitLocked(); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// missingKeysResponse is MissingKeysResponse.
type missingKeysResponse struct {
	Range rangeJSON         `json:"range"`
	Items []userFileItem    `json:"items"`
	Users []userPublicKey   `json:"users"`
	Files []fileFileKeyItem `json:"files"`
}

type userFileItem struct {
	UserID int64 `json:"userId"`
	FileID int64 `json:"fileId"`
}

type userPublicKey struct {
	ID                 int64              `json:"id"`
	PublicKeyContainer publicKeyContainer `json:"publicKeyContainer"`
}

type fileFileKeyItem struct {
	ID               int64   `json:"id"`
	FileKeyContainer fileKey `json:"fileKeyContainer"`
}

// optionalID reads an optional positive id query parameter.
func optionalID(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	return parseID(v)
}

// handleMissingFileKeys is GET /v4/nodes/missingFileKeys. A (user, file) pair
// is missing when the file lies in an encrypted room, the user has manage,
// read or manageDownloadShare there and owns a key pair whose file key
// version has no stored key for that file, and the caller holds a key for the
// file (and may access it). One item per pair; users lists each missing
// public key (a user with two key pairs may appear twice), files the caller's
// file keys. Ordered by file id, then user id.
func (s *Server) handleMissingFileKeys(w http.ResponseWriter, r *http.Request, uid int64) error {
	offset, limit, err := parseRange(r, maxMissingKeysLimit, maxMissingKeysLimit)
	if err != nil {
		return err
	}
	roomID, err := optionalID(r, "room_id")
	if err != nil {
		return err
	}
	fileID, err := optionalID(r, "file_id")
	if err != nil {
		return err
	}
	userID, err := optionalID(r, "user_id")
	if err != nil {
		return err
	}
	useKey := r.URL.Query().Get("use_key")
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.st.Users[uid].KeyPairs) == 0 {
		return errNoKeyPair(http.StatusForbidden)
	}
	if roomID != 0 {
		room := s.st.Nodes[roomID]
		if room == nil || room.Type != nodeTypeRoom {
			return apiErr(http.StatusNotFound, codeContainerNotFound, "Container not found")
		}
		if !room.Encrypted {
			return apiErr(http.StatusBadRequest, codeRoomNotEncrypted, "(Target) room is not encrypted")
		}
	}
	if fileID != 0 {
		if f := s.st.Nodes[fileID]; f == nil || f.Type != nodeTypeFile {
			return apiErr(http.StatusNotFound, codeFileNotFound, "File not found")
		}
	}
	if userID != 0 && s.st.Users[userID] == nil {
		return apiErr(http.StatusNotFound, codeUserNotFound, "User not found")
	}
	switch useKey {
	case "":
	case "room_rescue_key":
		// The emulator keeps no room rescue keys.
		return apiErr(http.StatusBadRequest, codeNoRoomRescueKey, "Room is not configured with Room Rescue Key")
	default:
		// No rescue or previous keys exist in the emulator: nothing is missing for them.
		writeJSON(w, http.StatusOK, missingKeysResponse{Range: rangeJSON{Offset: offset, Limit: limit},
			Items: []userFileItem{}, Users: []userPublicKey{}, Files: []fileFileKeyItem{}})
		return nil
	}

	type missing struct {
		item userFileItem
		pub  publicKeyContainer
	}
	var all []missing
	for _, f := range s.st.sortedFiles() {
		room := s.st.Nodes[f.ParentID]
		if room == nil || !room.Encrypted || (roomID != 0 && room.ID != roomID) || (fileID != 0 && f.ID != fileID) {
			continue
		}
		if len(s.st.FileKeys[f.ID][uid]) == 0 || !s.st.perms(uid, f).canHoldKey() {
			continue
		}
		for _, mid := range s.st.roomMembers(room) {
			if (userID != 0 && mid != userID) || !s.st.perms(mid, room).canHoldKey() {
				continue
			}
			for _, kp := range s.st.Users[mid].KeyPairs {
				if _, ok := s.st.FileKeys[f.ID][mid][fileKeyVersionFor(kp.Version)]; !ok {
					all = append(all, missing{userFileItem{UserID: mid, FileID: f.ID}, kp.Public})
				}
			}
		}
	}
	var items []userFileItem
	seen := map[userFileItem]bool{}
	for _, m := range all {
		if !seen[m.item] {
			seen[m.item] = true
			items = append(items, m.item)
		}
	}
	lo, hi := page(len(items), offset, limit)
	resp := missingKeysResponse{Range: rangeJSON{Offset: offset, Limit: limit, Total: int64(len(items))},
		Items: append([]userFileItem{}, items[lo:hi]...), Users: []userPublicKey{}, Files: []fileFileKeyItem{}}
	inPage := map[userFileItem]bool{}
	files := map[int64]bool{}
	for _, it := range resp.Items {
		inPage[it] = true
		files[it.FileID] = true
	}
	type userVersion struct {
		id      int64
		version string
	}
	listed := map[userVersion]bool{}
	for _, m := range all {
		uv := userVersion{m.item.UserID, m.pub.Version}
		if inPage[m.item] && !listed[uv] {
			listed[uv] = true
			resp.Users = append(resp.Users, userPublicKey{ID: m.item.UserID, PublicKeyContainer: m.pub})
		}
	}
	fileIDs := make([]int64, 0, len(files))
	for id := range files {
		fileIDs = append(fileIDs, id)
	}
	sort.Slice(fileIDs, func(i, j int) bool { return fileIDs[i] < fileIDs[j] })
	for _, id := range fileIDs {
		for _, k := range sortedKeys(s.st.FileKeys[id][uid]) {
			resp.Files = append(resp.Files, fileFileKeyItem{ID: id, FileKeyContainer: k})
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// sortedFiles lists the file nodes by id. Call with mu held.
func (st *state) sortedFiles() []*nodeRec {
	var out []*nodeRec
	for _, n := range st.Nodes {
		if n.Type == nodeTypeFile {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// sortedKeys lists a user's file keys by version.
func sortedKeys(byVersion map[string]fileKey) []fileKey {
	out := make([]fileKey, 0, len(byVersion))
	for _, k := range byVersion {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// setFileKeysRequest is UserFileKeySetBatchRequest.
type setFileKeysRequest struct {
	Items []struct {
		FileID  int64    `json:"fileId"`
		UserID  int64    `json:"userId"`
		FileKey *fileKey `json:"fileKey"`
	} `json:"items"`
}

// handleSetFileKeys is POST /v4/nodes/files/keys → 204. The whole batch is
// checked before anything is stored. A user that already has a key of that
// version keeps it. The caller needs a key pair (403 -70020), a key for each
// file (403 -40761) and manage, read, manageDownloadShare or change in its room.
func (s *Server) handleSetFileKeys(w http.ResponseWriter, r *http.Request, uid int64) error {
	var req setFileKeysRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.st.Users[uid].KeyPairs) == 0 {
		return errNoKeyPair(http.StatusForbidden)
	}
	for _, it := range req.Items {
		if !it.FileKey.valid() {
			return apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: fileKey")
		}
		f := s.st.Nodes[it.FileID]
		if f == nil || f.Type != nodeTypeFile || !s.st.visible(uid, f) {
			return apiErr(http.StatusNotFound, codeFileNotFound, "File not found")
		}
		if !f.Encrypted {
			return apiErr(http.StatusBadRequest, codeRoomNotEncrypted, "(Target) room is not encrypted")
		}
		if s.st.Users[it.UserID] == nil {
			return apiErr(http.StatusNotFound, codeUserNotFound, "User not found")
		}
		if len(s.st.FileKeys[f.ID][uid]) == 0 {
			return apiErr(http.StatusForbidden, codeFileKeyNotFound, "File key not found")
		}
		if p := s.st.perms(uid, f); !p.canHoldKey() && !p.Change {
			return errForbidden("insufficient rights to distribute file keys")
		}
	}
	for _, it := range req.Items {
		s.st.putFileKey(it.FileID, it.UserID, *it.FileKey)
	}
	if err := s.commitLocked(); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// putFileKey stores a key unless the user already has one of that version.
func (st *state) putFileKey(file, user int64, k fileKey) {
	if st.FileKeys[file] == nil {
		st.FileKeys[file] = map[int64]map[string]fileKey{}
	}
	if st.FileKeys[file][user] == nil {
		st.FileKeys[file][user] = map[string]fileKey{}
	}
	if _, ok := st.FileKeys[file][user][k.Version]; !ok {
		st.FileKeys[file][user][k.Version] = k
	}
}

// handleUserFileKey is GET /v4/nodes/files/{file_id}/user_file_key[?version=]
// → 200 FileKey. Without a version it returns the key matching the caller's
// preferred key pair, else any. No key is 404 -40761 as the reference says;
// the document's 404 examples for this operation list only -40751 and -41000.
func (s *Server) handleUserFileKey(w http.ResponseWriter, r *http.Request, uid int64, rawID string) error {
	id, err := parseID(rawID)
	if err != nil {
		return err
	}
	version := r.URL.Query().Get("version")
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.st.Nodes[id]
	if f == nil || f.Type != nodeTypeFile || !s.st.visible(uid, f) {
		return apiErr(http.StatusNotFound, codeFileNotFound, "File not found")
	}
	keys := s.st.FileKeys[id][uid]
	if version == "" {
		if kp := preferredKeyPair(s.st.Users[uid], ""); kp != nil {
			if _, ok := keys[fileKeyVersionFor(kp.Version)]; ok {
				version = fileKeyVersionFor(kp.Version)
			}
		}
	}
	if version == "" {
		if all := sortedKeys(keys); len(all) > 0 {
			version = all[0].Version
		}
	}
	k, ok := keys[version]
	if !ok {
		return apiErr(http.StatusNotFound, codeFileKeyNotFound, "File key not found")
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}
