package emulator

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxNotesLength is the longest notes text.
const maxNotesLength = 255

// createRoomRequest is CreateRoomRequest.
type createRoomRequest struct {
	Name                      string     `json:"name"`
	ParentID                  *int64     `json:"parentId"`
	InheritPermissions        *bool      `json:"inheritPermissions"`
	AdminIDs                  []int64    `json:"adminIds"`
	AdminGroupIDs             []int64    `json:"adminGroupIds"`
	Quota                     *int64     `json:"quota"`
	RecycleBinRetentionPeriod *int       `json:"recycleBinRetentionPeriod"`
	Classification            *int       `json:"classification"`
	Notes                     *string    `json:"notes"`
	HasActivitiesLog          *bool      `json:"hasActivitiesLog"`
	TimestampCreation         *time.Time `json:"timestampCreation"`
	TimestampModification     *time.Time `json:"timestampModification"`
	NewGroupMemberAcceptance  string     `json:"newGroupMemberAcceptance"`
}

// checkCommon validates name, notes and classification shared by rooms and uploads.
func checkCommon(name string, notes *string, classification *int) error {
	if name == "" {
		return apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: name")
	}
	if err := checkNodeName(name); err != nil {
		return errBadName(err)
	}
	if notes != nil && utf8.RuneCountInString(*notes) > maxNotesLength {
		return apiErr(http.StatusBadRequest, codeMaxLengthExceeded, "Maximum allowed length is exceeded: notes")
	}
	if classification != nil && (*classification < 1 || *classification > 4) {
		return apiErr(http.StatusBadRequest, codeInvalidClassification, "Invalid classification code")
	}
	return nil
}

// handleCreateRoom is POST /v4/nodes/rooms → 201 Node. parentId null (or 0)
// creates a top-level room, which needs the emulator's roomManager flag;
// below a room the caller needs manage there. Rooms are only created below
// rooms. A sub-room of an encrypted room is encrypted.
func (s *Server) handleCreateRoom(w http.ResponseWriter, r *http.Request, uid int64) error {
	var req createRoomRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkCommon(req.Name, req.Notes, req.Classification); err != nil {
		return err
	}
	if p := req.RecycleBinRetentionPeriod; p != nil && (*p < 0 || *p > 9999) {
		return apiErr(http.StatusBadRequest, codeNotBetween0And9999, "Not between 0 and 9999")
	}
	if len(req.AdminGroupIDs) > 0 {
		return apiErr(http.StatusNotFound, codeGroupNotFound, "Group not found: the emulator has no groups")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var parentID int64
	if req.ParentID != nil {
		parentID = *req.ParentID
	}
	var parent *nodeRec
	if parentID != 0 {
		parent = s.st.Nodes[parentID]
		if parent == nil || parent.Type != nodeTypeRoom || !s.st.visible(uid, parent) {
			return apiErr(http.StatusNotFound, codeContainerNotFound, "Container not found")
		}
		if !s.st.perms(uid, parent).Manage {
			return errForbidden("manage permission in the parent room is required")
		}
	} else if !s.st.Users[uid].RoomManager {
		return errForbidden("only room managers may create top-level rooms")
	}
	inherit := parent != nil
	if req.InheritPermissions != nil {
		inherit = *req.InheritPermissions
	}
	if inherit && parent == nil {
		return apiErr(http.StatusBadRequest, codeInheritTopLevel, "Inheritance of permissions cannot be enabled for top level rooms")
	}
	if !inherit && len(req.AdminIDs) == 0 {
		return apiErr(http.StatusBadRequest, codeAdminRequired, "At least one non-expiring admin user / group required")
	}
	for _, id := range req.AdminIDs {
		if s.st.Users[id] == nil {
			return apiErr(http.StatusNotFound, codeUserNotFound, "User not found")
		}
	}
	if s.st.childByName(parentID, req.Name) != nil {
		// The document's example for this 409 has "errorCode": null; sent without errorCode.
		return apiErrNull(http.StatusConflict, "Node with specified name already exists")
	}
	now := time.Now().UTC()
	n := &nodeRec{ID: s.st.NextNodeID, Type: nodeTypeRoom, Name: req.Name, ParentID: parentID,
		InheritPermissions: inherit, Classification: 2, HasActivitiesLog: true,
		CreatedAt: now, CreatedBy: uid, UpdatedAt: now, UpdatedBy: uid,
		TimestampCreation: req.TimestampCreation, TimestampModification: req.TimestampModification}
	s.st.NextNodeID++
	if parent != nil && parent.Encrypted {
		n.Encrypted = true
	}
	if req.Classification != nil {
		n.Classification = *req.Classification
	}
	if req.Notes != nil {
		n.Notes = *req.Notes
	}
	if req.Quota != nil {
		n.Quota = *req.Quota
	}
	if req.RecycleBinRetentionPeriod != nil {
		n.RecycleBinRetention = *req.RecycleBinRetentionPeriod
	}
	if req.HasActivitiesLog != nil {
		n.HasActivitiesLog = *req.HasActivitiesLog
	}
	s.st.Nodes[n.ID] = n
	for _, id := range req.AdminIDs {
		s.st.setMember(n.ID, id, allPermissions())
	}
	if err := s.commitLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.st.nodeForUser(uid, n, true))
	return nil
}

// encryptRoomRequest is EncryptRoomRequest; a room rescue key is accepted
// and ignored.
type encryptRoomRequest struct {
	IsEncrypted           *bool `json:"isEncrypted"`
	UseDataSpaceRescueKey bool  `json:"useDataSpaceRescueKey"`
}

// handleEncryptRoom is PUT /v4/nodes/rooms/{room_id}/encrypt → 200 Node.
// Setting the current state again is a no-op. Otherwise the room must be a
// top-level room without children: a room with children is refused with 400
// -40008 (encrypt) or -40003 (decrypt), the document's codes for rooms with
// files; a sub-room with 400 and no errorCode (the document names no code
// for it; reference §6).
func (s *Server) handleEncryptRoom(w http.ResponseWriter, r *http.Request, uid int64) error {
	id, err := parseID(r.PathValue("room_id"))
	if err != nil {
		return err
	}
	var req encryptRoomRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.IsEncrypted == nil {
		return apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: isEncrypted")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.st.roomFor(uid, id)
	if err != nil {
		return err
	}
	if !s.st.perms(uid, n).Manage {
		return errForbidden("room administrator rights are required")
	}
	if n.Encrypted == *req.IsEncrypted {
		writeJSON(w, http.StatusOK, s.st.nodeForUser(uid, n, true))
		return nil
	}
	if n.ParentID != 0 {
		return apiErrNull(http.StatusBadRequest, "Only empty rooms at the top level may be encrypted")
	}
	if len(s.st.children(n.ID)) > 0 {
		if *req.IsEncrypted {
			return apiErr(http.StatusBadRequest, codeRoomWithFilesEncrypt, "Room with files cannot be encrypted")
		}
		return apiErr(http.StatusBadRequest, codeRoomWithFilesDecrypt, "Room with files cannot be unencrypted")
	}
	n.Encrypted = *req.IsEncrypted
	n.UpdatedAt, n.UpdatedBy = time.Now().UTC(), uid
	if err := s.commitLocked(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.st.nodeForUser(uid, n, true))
	return nil
}

// roomFor returns room id if it exists and uid can see it, else 404 -40000.
func (st *state) roomFor(uid, id int64) (*nodeRec, error) {
	n := st.Nodes[id]
	if n == nil || n.Type != nodeTypeRoom || !st.visible(uid, n) {
		return nil, apiErr(http.StatusNotFound, codeContainerNotFound, "Container not found")
	}
	return n, nil
}

// roomUser is RoomUser (the deprecated id/login/displayName/email are still
// required by the 4.26.7 schema).
type roomUser struct {
	UserInfo           *userInfo           `json:"userInfo"`
	IsGranted          bool                `json:"isGranted"`
	Permissions        permissions         `json:"permissions"`
	PublicKeyContainer *publicKeyContainer `json:"publicKeyContainer,omitempty"`
	ID                 int64               `json:"id"`
	Login              string              `json:"login"`
	DisplayName        string              `json:"displayName"`
	Email              string              `json:"email"`
}

// roomUserFilters are the implemented filters of GET .../users.
func roomUserFilters() map[string][]string {
	return map[string][]string{"userId": {"eq"}, "user": {"cn"}, "isGranted": {"eq"}, "permissionsManage": {"eq"}, "effectivePerm": {"eq"}}
}

// handleRoomUsers is GET /v4/nodes/rooms/{room_id}/users: the users with
// effective permissions (explicit or inherited) in the room.
func (s *Server) handleRoomUsers(w http.ResponseWriter, r *http.Request, uid int64) error {
	id, err := parseID(r.PathValue("room_id"))
	if err != nil {
		return err
	}
	offset, limit, err := parseRange(r, maxListLimit, maxListLimit)
	if err != nil {
		return err
	}
	terms, err := parseFilter(r.URL.Query().Get("filter"), roomUserFilters())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.st.roomFor(uid, id)
	if err != nil {
		return err
	}
	if !s.st.perms(uid, n).any() {
		return errForbidden("no permission in this room")
	}
	var items []roomUser
	for _, mid := range s.st.roomMembers(n) {
		u, p := s.st.Users[mid], s.st.perms(mid, n)
		if !roomUserMatches(u, p, terms) {
			continue
		}
		ru := roomUser{UserInfo: s.st.userInfoOf(mid), IsGranted: true, Permissions: p, ID: mid,
			Login: u.UserName, DisplayName: firstName(u) + " " + lastName(u), Email: u.Email}
		if kp := preferredKeyPair(u, ""); kp != nil {
			pub := kp.Public
			ru.PublicKeyContainer = &pub
		}
		items = append(items, ru)
	}
	lo, hi := page(len(items), offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{
		"range": rangeJSON{Offset: offset, Limit: limit, Total: int64(len(items))},
		"items": append([]roomUser{}, items[lo:hi]...),
	})
	return nil
}

func roomUserMatches(u *userRec, p permissions, terms []filterTerm) bool {
	for _, t := range terms {
		ok := false
		for _, v := range t.values {
			switch t.field {
			case "userId":
				ok = ok || strconv.FormatInt(u.ID, 10) == v
			case "user":
				v = strings.ToLower(v)
				for _, f := range []string{u.UserName, u.FirstName, u.LastName, u.Email} {
					ok = ok || strings.Contains(strings.ToLower(f), v)
				}
			case "isGranted", "effectivePerm":
				ok = ok || v == "true" || v == "any"
			case "permissionsManage":
				ok = ok || strconv.FormatBool(p.Manage) == v
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// roomUsersRequest is RoomUsersAddBatchRequest.
type roomUsersRequest struct {
	Items []struct {
		ID          int64        `json:"id"`
		Permissions *permissions `json:"permissions"`
	} `json:"items"`
}

// handleSetRoomUsers is PUT /v4/nodes/rooms/{room_id}/users → 204: sets
// (overwrites) the explicit permissions of each listed user.
func (s *Server) handleSetRoomUsers(w http.ResponseWriter, r *http.Request, uid int64) error {
	id, err := parseID(r.PathValue("room_id"))
	if err != nil {
		return err
	}
	var req roomUsersRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.st.roomFor(uid, id)
	if err != nil {
		return err
	}
	if !s.st.perms(uid, n).Manage {
		return errForbidden("room administrator rights are required")
	}
	for _, it := range req.Items {
		if it.Permissions == nil {
			return apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: permissions")
		}
		if s.st.Users[it.ID] == nil {
			return apiErr(http.StatusNotFound, codeUserNotFound, "User not found")
		}
	}
	before := map[int64]permissions{}
	for k, v := range s.st.Members[n.ID] {
		before[k] = v
	}
	for _, it := range req.Items {
		s.st.setMember(n.ID, it.ID, *it.Permissions)
	}
	if !n.InheritPermissions && !s.st.hasAdmin(n) {
		s.st.Members[n.ID] = before
		return apiErr(http.StatusBadRequest, codeAdminRequired, "At least one non-expiring admin user / group required")
	}
	if err := s.commitLocked(); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (st *state) hasAdmin(n *nodeRec) bool {
	for _, p := range st.Members[n.ID] {
		if p.Manage {
			return true
		}
	}
	return false
}
