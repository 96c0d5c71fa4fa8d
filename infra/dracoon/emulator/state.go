package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is the format version of state.json.
const stateVersion = 1

// Node types as the API spells them.
const (
	nodeTypeRoom = "room"
	nodeTypeFile = "file"
)

// Upload statuses as GET /v4/nodes/files/uploads/{upload_id} reports them.
const (
	uploadTransfer  = "transfer"
	uploadFinishing = "finishing"
	uploadDone      = "done"
	uploadError     = "error"
)

// state is everything the emulator persists in DataDir/state.json. File
// contents live next to it (files/, uploads/). All access is under Server.mu.
type state struct {
	Version        int                                    `json:"version"`
	NextNodeID     int64                                  `json:"nextNodeId"`
	SigningKey     []byte                                 `json:"signingKey"`
	S3DirectUpload bool                                   `json:"s3DirectUpload"`
	Clients        map[string]string                      `json:"clients"` // client id -> secret
	Users          map[int64]*userRec                     `json:"users"`
	Nodes          map[int64]*nodeRec                     `json:"nodes"`
	Members        map[int64]map[int64]permissions        `json:"members"`  // room id -> user id -> explicit permissions
	FileKeys       map[int64]map[int64]map[string]fileKey `json:"fileKeys"` // file id -> user id -> file key version -> key
	Tokens         map[string]*tokenRec                   `json:"tokens"`   // sha256(token) hex -> token
	Uploads        map[string]*uploadRec                  `json:"uploads"`  // upload id -> upload
	Downloads      map[string]*downloadRec                `json:"downloads"`
}

type userRec struct {
	ID          int64        `json:"id"`
	UserName    string       `json:"userName"`
	Password    string       `json:"password"`
	Email       string       `json:"email,omitempty"`
	FirstName   string       `json:"firstName,omitempty"`
	LastName    string       `json:"lastName,omitempty"`
	RoomManager bool         `json:"roomManager,omitempty"`
	KeyPairs    []keyPairRec `json:"keyPairs,omitempty"`
}

// keyPairRec keeps a UserKeyPairContainer exactly as the client or the seed
// sent it; the emulator never looks inside the private key.
type keyPairRec struct {
	Version   string             `json:"version"`
	Container json.RawMessage    `json:"container"`
	Public    publicKeyContainer `json:"public"`
}

type nodeRec struct {
	ID                    int64      `json:"id"`
	Type                  string     `json:"type"`
	Name                  string     `json:"name"`
	ParentID              int64      `json:"parentId,omitempty"` // 0: top level
	Encrypted             bool       `json:"encrypted,omitempty"`
	InheritPermissions    bool       `json:"inheritPermissions,omitempty"`
	Classification        int        `json:"classification"`
	Notes                 string     `json:"notes,omitempty"`
	Size                  int64      `json:"size"`
	Quota                 int64      `json:"quota,omitempty"`
	RecycleBinRetention   int        `json:"recycleBinRetentionPeriod,omitempty"`
	HasActivitiesLog      bool       `json:"hasActivitiesLog,omitempty"`
	CreatedAt             time.Time  `json:"createdAt"`
	CreatedBy             int64      `json:"createdBy"`
	UpdatedAt             time.Time  `json:"updatedAt"`
	UpdatedBy             int64      `json:"updatedBy"`
	TimestampCreation     *time.Time `json:"timestampCreation,omitempty"`
	TimestampModification *time.Time `json:"timestampModification,omitempty"`
	ExpireAt              *time.Time `json:"expireAt,omitempty"`
	ContentDiscarded      bool       `json:"contentDiscarded,omitempty"` // uploaded with Config.DiscardContent: only the size is real
}

// Token kinds.
const (
	tokenAccess  = "access"
	tokenRefresh = "refresh"
)

type tokenRec struct {
	Kind      string    `json:"kind"`
	UserID    int64     `json:"userId"`
	ClientID  string    `json:"clientId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

type uploadRec struct {
	ID             string     `json:"id"`
	Token          string     `json:"token"`
	UserID         int64      `json:"userId"`
	ParentID       int64      `json:"parentId"`
	Name           string     `json:"name"`
	DeclaredSize   *int64     `json:"declaredSize,omitempty"`
	Classification int        `json:"classification"`
	Notes          string     `json:"notes,omitempty"`
	ExpireAt       *time.Time `json:"expireAt,omitempty"`
	DirectS3       bool       `json:"directS3"`
	CreatedAt      time.Time  `json:"createdAt"`
	TimestampC     *time.Time `json:"timestampCreation,omitempty"`
	TimestampM     *time.Time `json:"timestampModification,omitempty"`
	Status         string     `json:"status"`
	// S3 completion, kept so that a restart can finish it.
	Completion *s3Completion   `json:"completion,omitempty"`
	FinishAt   time.Time       `json:"finishAt,omitzero"`
	NodeID     int64           `json:"nodeId,omitempty"`
	Failure    *errorResponse  `json:"failure,omitempty"`
	Parts      map[int]partRec `json:"parts,omitempty"` // S3 part number -> stored part
	// Discarded: some content was received with Config.DiscardContent.
	Discarded bool `json:"discarded,omitempty"`
}

type partRec struct {
	Size int64  `json:"size"`
	ETag string `json:"etag"` // md5 hex (with Config.DiscardContent: discardETag), no quotes
}

type s3Completion struct {
	Parts              []s3Part `json:"parts"`
	ResolutionStrategy string   `json:"resolutionStrategy"`
	FileName           string   `json:"fileName,omitempty"`
	FileKey            *fileKey `json:"fileKey,omitempty"`
}

type downloadRec struct {
	NodeID    int64     `json:"nodeId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

func newState() (*state, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("cannot create signing key: %w", err)
	}
	return &state{
		Version:    stateVersion,
		NextNodeID: 1000,
		SigningKey: key,
		Clients:    map[string]string{},
		Users:      map[int64]*userRec{},
		Nodes:      map[int64]*nodeRec{},
		Members:    map[int64]map[int64]permissions{},
		FileKeys:   map[int64]map[int64]map[string]fileKey{},
		Tokens:     map[string]*tokenRec{},
		Uploads:    map[string]*uploadRec{},
		Downloads:  map[string]*downloadRec{},
	}, nil
}

// fillMaps makes every map non-nil after decoding an older or hand-edited file.
func (st *state) fillMaps() {
	if st.Clients == nil {
		st.Clients = map[string]string{}
	}
	if st.Users == nil {
		st.Users = map[int64]*userRec{}
	}
	if st.Nodes == nil {
		st.Nodes = map[int64]*nodeRec{}
	}
	if st.Members == nil {
		st.Members = map[int64]map[int64]permissions{}
	}
	if st.FileKeys == nil {
		st.FileKeys = map[int64]map[int64]map[string]fileKey{}
	}
	if st.Tokens == nil {
		st.Tokens = map[string]*tokenRec{}
	}
	if st.Uploads == nil {
		st.Uploads = map[string]*uploadRec{}
	}
	if st.Downloads == nil {
		st.Downloads = map[string]*downloadRec{}
	}
}

// dataDirs are the sub-directories of DataDir.
const (
	stateFile  = "state.json"
	filesDir   = "files"
	uploadsDir = "uploads"
)

// loadState reads DataDir/state.json, or creates a fresh state when absent.
func loadState(dir string) (*state, error) {
	for _, d := range []string{dir, filepath.Join(dir, filesDir), filepath.Join(dir, uploadsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create data directory %s: %w", d, err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return newState()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read state: %w", err)
	}
	st := &state{}
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("cannot decode state %s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state %s has version %d, want %d", filepath.Join(dir, stateFile), st.Version, stateVersion)
	}
	st.fillMaps()
	return st, nil
}

// saveState writes st to DataDir/state.json atomically (temporary file, then
// rename), so that a crash leaves either the old or the new state.
func saveState(dir string, st *state) error {
	raw, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("cannot encode state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, stateFile+".*.tmp")
	if err != nil {
		return fmt.Errorf("cannot create temporary state file: %w", err)
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateFile)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot replace state: %w", err)
	}
	return nil
}

// pruneExpired drops expired tokens and download tokens. Call with mu held.
func (st *state) pruneExpired(now time.Time) {
	for k, t := range st.Tokens {
		if now.After(t.ExpiresAt) {
			delete(st.Tokens, k)
		}
	}
	for k, d := range st.Downloads {
		if now.After(d.ExpiresAt) {
			delete(st.Downloads, k)
		}
	}
}

// tokenKey is the map key of a secret token: its SHA-256, so that state.json
// does not hold usable bearer tokens in clear. Looking a request's token up
// by this key is also constant-time with respect to the stored secrets: the
// map compares hashes, and a hash prefix that matches tells an attacker
// nothing about the token.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// randomToken returns n random bytes, hex encoded.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot create random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// children returns the direct children of parent (0: top level). Call with mu held.
func (st *state) children(parent int64) []*nodeRec {
	var out []*nodeRec
	for _, n := range st.Nodes {
		if n.ParentID == parent {
			out = append(out, n)
		}
	}
	return out
}

// childByName finds the child of parent with exactly this name. Names are
// compared case-sensitively, the same way as the name:eq: filter [inferred: the
// document does not say how DRACOON compares names].
func (st *state) childByName(parent int64, name string) *nodeRec {
	for _, n := range st.Nodes {
		if n.ParentID == parent && n.Name == name {
			return n
		}
	}
	return nil
}

// parentPath is the node's parentPath: "/" at top level, else "/A/B/".
func (st *state) parentPath(n *nodeRec) string {
	p := "/"
	var names []string
	for id := n.ParentID; id != 0; {
		parent := st.Nodes[id]
		if parent == nil {
			break
		}
		names = append([]string{parent.Name}, names...)
		id = parent.ParentID
	}
	for _, name := range names {
		p += name + "/"
	}
	return p
}

// depth is 0 for a top-level node.
func (st *state) depth(n *nodeRec) int {
	d := 0
	for id := n.ParentID; id != 0; d++ {
		parent := st.Nodes[id]
		if parent == nil {
			break
		}
		id = parent.ParentID
	}
	return d
}

// isBelow reports whether n lies (at any depth) below ancestor.
func (st *state) isBelow(n *nodeRec, ancestor int64) bool {
	for id := n.ParentID; id != 0; {
		if id == ancestor {
			return true
		}
		parent := st.Nodes[id]
		if parent == nil {
			return false
		}
		id = parent.ParentID
	}
	return false
}

// deleteFileNode forgets a file node and its keys; the caller removes the
// content file.
func (st *state) deleteFileNode(id int64) {
	delete(st.Nodes, id)
	delete(st.FileKeys, id)
	for k, d := range st.Downloads {
		if d.NodeID == id {
			delete(st.Downloads, k)
		}
	}
}
