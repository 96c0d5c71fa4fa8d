package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Paging limits (document: "Maximum 500" on lists).
const (
	maxListLimit = 500
)

// setMember sets the explicit permissions of a user in a room; no permission
// at all removes the user. Call with mu held.
func (st *state) setMember(room, user int64, p permissions) {
	if !p.any() {
		delete(st.Members[room], user)
		return
	}
	if st.Members[room] == nil {
		st.Members[room] = map[int64]permissions{}
	}
	st.Members[room][user] = p
}

// roomOf is the room a node belongs to: itself for a room, its parent for a file.
func (st *state) roomOf(n *nodeRec) *nodeRec {
	if n.Type == nodeTypeRoom {
		return n
	}
	return st.Nodes[n.ParentID]
}

// perms is the effective permission of user on node n: for a room its
// explicit grant, else (when it inherits) the parent's effective grant; a file
// has its room's permissions. An explicit grant replaces the inherited one
// [inferred: the document does not say whether they are merged]. Call with mu held.
func (st *state) perms(user int64, n *nodeRec) permissions {
	room := st.roomOf(n)
	for room != nil {
		if p, ok := st.Members[room.ID][user]; ok {
			return p
		}
		if !room.InheritPermissions || room.ParentID == 0 {
			return permissions{}
		}
		room = st.Nodes[room.ParentID]
	}
	return permissions{}
}

// roomMembers lists the users with any effective permission in room, by id.
func (st *state) roomMembers(room *nodeRec) []int64 {
	var ids []int64
	for id := range st.Users {
		if st.perms(id, room).any() {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// visible reports whether user may see n: any permission on it, or (for a
// room) a visible room somewhere below it, which makes it a non-browsable
// path element. Call with mu held.
func (st *state) visible(user int64, n *nodeRec) bool {
	if st.perms(user, n).any() {
		return true
	}
	if n.Type != nodeTypeRoom {
		return false
	}
	for _, c := range st.Nodes {
		if c.Type == nodeTypeRoom && st.isBelow(c, n.ID) && st.perms(user, c).any() {
			return true
		}
	}
	return false
}

// nodeForUser renders n for user; withEncryptionInfo is set only by the
// single-node GET (lists and search omit encryptionInfo, per the document).
func (st *state) nodeForUser(user int64, n *nodeRec, withEncryptionInfo bool) nodeJSON {
	p := st.perms(user, n)
	out := nodeJSON{
		ID: n.ID, Type: n.Type, Name: n.Name,
		ParentPath:            st.parentPath(n),
		CreatedAt:             fmtTime(n.CreatedAt),
		CreatedBy:             st.userInfoOf(n.CreatedBy),
		UpdatedAt:             fmtTime(n.UpdatedAt),
		UpdatedBy:             st.userInfoOf(n.UpdatedBy),
		TimestampCreation:     fmtTimePtr(n.TimestampCreation),
		TimestampModification: fmtTimePtr(n.TimestampModification),
		ExpireAt:              fmtTimePtr(n.ExpireAt),
		Size:                  n.Size,
		Classification:        n.Classification,
		Notes:                 n.Notes,
		Permissions:           p,
		IsEncrypted:           n.Encrypted,
		BranchVersion:         n.UpdatedAt.UnixMilli(),
		IsBrowsable:           p.Read || p.Manage,
	}
	if n.CreatedBy == 0 {
		out.CreatedBy, out.UpdatedBy = nil, nil
	}
	if n.ParentID != 0 {
		id := n.ParentID
		out.ParentID = &id
	}
	switch n.Type {
	case nodeTypeRoom:
		inherit, logs, retention, quota := n.InheritPermissions, n.HasActivitiesLog, n.RecycleBinRetention, n.Quota
		out.InheritPermissions, out.HasActivitiesLog, out.RecycleBinRetentionPeriod, out.Quota = &inherit, &logs, &retention, &quota
		var rooms, files, folders int
		for _, c := range st.children(n.ID) {
			if c.Type == nodeTypeRoom {
				rooms++
			} else {
				files++
			}
		}
		out.CntRooms, out.CntFiles, out.CntFolders = &rooms, &files, &folders
		// A room's size is the sum of its files [inferred].
		out.Size = st.treeSize(n.ID)
	case nodeTypeFile:
		out.FileType = fileType(n.Name)
		out.MediaType = "application/octet-stream"
		auth := n.ParentID
		out.AuthParentID = &auth
	}
	if withEncryptionInfo {
		out.EncryptionInfo = st.encryptionInfo(user, n)
	}
	return out
}

// treeSize sums the file sizes below a room.
func (st *state) treeSize(room int64) int64 {
	var sum int64
	for _, c := range st.Nodes {
		if c.Type == nodeTypeFile && st.isBelow(c, room) {
			sum += c.Size
		}
	}
	return sum
}

// encryptionInfo: for an encrypted file, userKeyState is "available" when the
// user holds a file key, "pending" when the user has a key pair but no file
// key yet, else "none" [inferred from the enum; the document does not define
// the states]. Rooms report "available" when the user has a key pair.
func (st *state) encryptionInfo(user int64, n *nodeRec) *encryptionInfo {
	info := &encryptionInfo{UserKeyState: "none", RoomKeyState: "none", DataSpaceKeyState: "none"}
	if !n.Encrypted {
		return info
	}
	hasPair := len(st.Users[user].KeyPairs) > 0
	switch {
	case n.Type == nodeTypeFile && len(st.FileKeys[n.ID][user]) > 0:
		info.UserKeyState = "available"
	case n.Type == nodeTypeFile && hasPair:
		info.UserKeyState = "pending"
	case n.Type == nodeTypeRoom && hasPair:
		info.UserKeyState = "available"
	}
	return info
}

func fileType(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 && i < len(name)-1 {
		return strings.ToLower(name[i+1:])
	}
	return ""
}

// isReservedName reports the names refused with or without an extension:
// CON, PRN, AUX, NUL, COM1-9, LPT1-9.
func isReservedName(base string) bool {
	switch b := strings.ToUpper(base); {
	case b == "CON" || b == "PRN" || b == "AUX" || b == "NUL":
		return true
	case len(b) == 4 && (strings.HasPrefix(b, "COM") || strings.HasPrefix(b, "LPT")):
		return b[3] >= '1' && b[3] <= '9'
	}
	return false
}

// maxNameLength is the longest node name, in characters.
const maxNameLength = 150

// checkNodeName applies the document's node naming convention.
func checkNodeName(name string) error {
	base, _, _ := strings.Cut(name, ".")
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("empty name")
	case utf8.RuneCountInString(name) > maxNameLength:
		return fmt.Errorf("name longer than %d characters", maxNameLength)
	case strings.ContainsAny(name, `\<>:"|?*/`):
		return fmt.Errorf("name %q contains an illegal character", name)
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("name %q starts with '-'", name)
	case strings.HasSuffix(name, "."):
		return fmt.Errorf("name %q ends with '.'", name)
	case isReservedName(base):
		return fmt.Errorf("name %q is reserved", name)
	}
	return nil
}

// errBadName is 400 -40755 for a name that breaks the naming convention.
func errBadName(err error) error {
	return apiErr(http.StatusBadRequest, codeBadNodeName, "Bad node name: "+err.Error())
}

// filterTerm is one FIELD:OPERATOR:VALUE[:VALUE...] of a filter string.
type filterTerm struct {
	field, op string
	values    []string
}

// parseFilter splits "a:eq:x:y|b:cn:z" into terms (| is AND, values are OR).
// Fields or operators the emulator does not implement are refused with 400
// -92001 rather than ignored, so a client does not rely on them by accident.
func parseFilter(s string, allowed map[string][]string) ([]filterTerm, error) {
	if s == "" {
		return nil, nil
	}
	var terms []filterTerm
	for _, part := range strings.Split(s, "|") {
		f := strings.Split(part, ":")
		if len(f) < 3 || f[2] == "" {
			return nil, apiErr(http.StatusBadRequest, codeInvalidParameterValue, fmt.Sprintf("invalid filter %q", part))
		}
		ops, ok := allowed[f[0]]
		if !ok || !contains(ops, f[1]) {
			return nil, apiErr(http.StatusBadRequest, codeInvalidParameterValue,
				fmt.Sprintf("filter %s:%s is not supported by the emulator", f[0], f[1]))
		}
		terms = append(terms, filterTerm{field: f[0], op: f[1], values: f[2:]})
	}
	return terms, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// nodeFilters are the filter fields (and their operators) of GET /v4/nodes
// and /v4/nodes/search that the emulator implements.
func nodeFilters() map[string][]string {
	return map[string][]string{
		"type": {"eq"}, "name": {"eq", "cn"}, "encrypted": {"eq"}, "perm": {"eq"}, "parentPath": {"eq", "cn"},
	}
}

// matches reports whether n passes every term for user. Call with mu held.
func (st *state) matches(user int64, n *nodeRec, terms []filterTerm) bool {
	for _, t := range terms {
		ok := false
		for _, v := range t.values {
			switch t.field {
			case "type":
				ok = ok || n.Type == v
			case "name":
				if t.op == "eq" {
					ok = ok || n.Name == v
				} else {
					ok = ok || strings.Contains(strings.ToLower(n.Name), strings.ToLower(v))
				}
			case "encrypted":
				ok = ok || strconv.FormatBool(n.Encrypted) == v
			case "perm":
				ok = ok || hasPerm(st.perms(user, n), v)
			case "parentPath":
				if t.op == "eq" {
					ok = ok || st.parentPath(n) == v
				} else {
					ok = ok || strings.Contains(strings.ToLower(st.parentPath(n)), strings.ToLower(v))
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func hasPerm(p permissions, name string) bool {
	switch name {
	case "manage":
		return p.Manage
	case "read":
		return p.Read
	case "change":
		return p.Change
	case "create":
		return p.Create
	case "delete":
		return p.Delete
	case "manageDownloadShare":
		return p.ManageDownloadShare
	case "manageUploadShare":
		return p.ManageUploadShare
	case "canReadRecycleBin":
		return p.ReadRecycleBin
	case "canRestoreRecycleBin":
		return p.RestoreRecycleBin
	case "canDeleteRecycleBin":
		return p.DeleteRecycleBin
	}
	return false
}

// sortNodes orders rooms before files, then by name (the document: "Nodes are
// sorted by type first"); sort=name:desc reverses the names.
func sortNodes(nodes []*nodeRec, sortParam string) {
	desc := sortParam == "name:desc"
	rank := map[string]int{nodeTypeRoom: 0, "folder": 1, nodeTypeFile: 2}
	sort.Slice(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if rank[a.Type] != rank[b.Type] {
			return rank[a.Type] < rank[b.Type]
		}
		if a.Name != b.Name {
			return (a.Name < b.Name) != desc
		}
		return a.ID < b.ID
	})
}

// parentParam reads parent_id (absent or 0: the root). The parent must be a
// room the user can see, else 404 -41000 (GET /v4/nodes documents no 403).
func (st *state) parentParam(r *http.Request, user int64) (int64, error) {
	v := r.URL.Query().Get("parent_id")
	if v == "" || v == "0" {
		return 0, nil
	}
	id, err := parseID(v)
	if err != nil {
		return 0, err
	}
	n := st.Nodes[id]
	if n == nil || n.Type != nodeTypeRoom || !st.visible(user, n) {
		return 0, apiErr(http.StatusNotFound, codeNodeNotFound, "Node not found")
	}
	return id, nil
}

// handleListNodes is GET /v4/nodes: the children of parent_id visible to the
// caller, filtered, sorted and paged. depth_level and room_manager are ignored.
func (s *Server) handleListNodes(w http.ResponseWriter, r *http.Request, uid int64) error {
	offset, limit, err := parseRange(r, maxListLimit, maxListLimit)
	if err != nil {
		return err
	}
	terms, err := parseFilter(r.URL.Query().Get("filter"), nodeFilters())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parent, err := s.st.parentParam(r, uid)
	if err != nil {
		return err
	}
	var hits []*nodeRec
	for _, n := range s.st.children(parent) {
		if s.st.visible(uid, n) && s.st.matches(uid, n, terms) {
			hits = append(hits, n)
		}
	}
	writeJSON(w, http.StatusOK, s.st.nodePage(uid, hits, r.URL.Query().Get("sort"), offset, limit))
	return nil
}

func (st *state) nodePage(uid int64, hits []*nodeRec, sortParam string, offset, limit int64) nodeList {
	sortNodes(hits, sortParam)
	lo, hi := page(len(hits), offset, limit)
	out := nodeList{Range: rangeJSON{Offset: offset, Limit: limit, Total: int64(len(hits))}, Items: []nodeJSON{}}
	for _, n := range hits[lo:hi] {
		out.Items = append(out.Items, st.nodeForUser(uid, n, false))
	}
	return out
}

// handleSearchNodes is GET /v4/nodes/search: search_string ("*" wildcard;
// without one, a case-insensitive substring match) below parent_id, down to
// depth_level (0: children only, default; -1: whole tree; n: n more levels).
func (s *Server) handleSearchNodes(w http.ResponseWriter, r *http.Request, uid int64) error {
	q := r.URL.Query()
	search := q.Get("search_string")
	if search == "" {
		return apiErr(http.StatusBadRequest, codeMandatoryField, "Mandatory fields cannot be empty: search_string")
	}
	depth := 0
	if v := q.Get("depth_level"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil || d < -1 {
			return apiErr(http.StatusBadRequest, codeInvalidParameterValue, "invalid depth_level")
		}
		depth = d
	}
	offset, limit, err := parseRange(r, maxListLimit, maxListLimit)
	if err != nil {
		return err
	}
	terms, err := parseFilter(q.Get("filter"), nodeFilters())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parent, err := s.st.parentParam(r, uid)
	if err != nil {
		return err
	}
	base := 0
	if parent != 0 {
		base = s.st.depth(s.st.Nodes[parent]) + 1
	}
	var hits []*nodeRec
	for _, n := range s.st.Nodes {
		if parent != 0 && !s.st.isBelow(n, parent) {
			continue
		}
		if rel := s.st.depth(n) - base; depth >= 0 && rel > depth {
			continue
		}
		if s.st.visible(uid, n) && nameMatches(n.Name, search) && s.st.matches(uid, n, terms) {
			hits = append(hits, n)
		}
	}
	writeJSON(w, http.StatusOK, s.st.nodePage(uid, hits, q.Get("sort"), offset, limit))
	return nil
}

// nameMatches implements search_string: "*" alone matches everything, other
// patterns with "*" are case-insensitive globs, plain strings substrings.
func nameMatches(name, pattern string) bool {
	name, pattern = strings.ToLower(name), strings.ToLower(pattern)
	if pattern == "*" {
		return true
	}
	if strings.Contains(pattern, "*") {
		// Only "*" is a wildcard: escape what path.Match would interpret.
		esc := strings.NewReplacer(`\`, `\\`, "?", `\?`, "[", `\[`).Replace(pattern)
		ok, err := path.Match(esc, name)
		return err == nil && ok
	}
	return strings.Contains(name, pattern)
}

// handleGetNode is GET /v4/nodes/{node_id}, with encryptionInfo.
func (s *Server) handleGetNode(w http.ResponseWriter, r *http.Request, uid int64) error {
	id, err := parseID(r.PathValue("node_id"))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.st.Nodes[id]
	if n == nil || !s.st.visible(uid, n) {
		return apiErr(http.StatusNotFound, codeNodeNotFound, "Node not found")
	}
	writeJSON(w, http.StatusOK, s.st.nodeForUser(uid, n, true))
	return nil
}
