package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Seed describes the clients, users and rooms an emulator starts with. It is
// read from JSON (see testdata/dracoon/seed.example.json). Applying a seed
// only creates what is missing: existing clients, users and rooms (matched by
// id) are left as they are, so a restart with the same seed keeps all state.
type Seed struct {
	// Clients are OAuth clients allowed at /oauth/token.
	Clients []SeedClient `json:"clients"`
	// Users can log in with the password grant.
	Users []SeedUser `json:"users"`
	// Rooms are created in order; a parent must come before its children.
	Rooms []SeedRoom `json:"rooms"`
	// S3DirectUpload is what system info reports as useS3Storage. It is applied
	// on every start, as it is configuration rather than state.
	S3DirectUpload bool `json:"s3DirectUpload"`
}

// SeedClient is an OAuth client.
type SeedClient struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// SeedUser is a user. KeyPairs are UserKeyPairContainer objects, stored and
// returned as they are (each needs privateKeyContainer.{version,privateKey}
// and publicKeyContainer.{version,publicKey}).
type SeedUser struct {
	ID        int64             `json:"id"`
	UserName  string            `json:"userName"`
	Password  string            `json:"password"`
	Email     string            `json:"email,omitempty"`
	FirstName string            `json:"firstName,omitempty"`
	LastName  string            `json:"lastName,omitempty"`
	KeyPairs  []json.RawMessage `json:"keyPairs,omitempty"`
	// RoomManager allows creating top-level rooms (emulator extension).
	RoomManager bool `json:"roomManager,omitempty"`
}

// SeedRoom is a room. ParentID nil means top level.
type SeedRoom struct {
	ID        int64        `json:"id"`
	Name      string       `json:"name"`
	ParentID  *int64       `json:"parentId"`
	Encrypted bool         `json:"encrypted"`
	Members   []SeedMember `json:"members"`
	// InheritPermissions defaults to true below a room and false at top level,
	// like POST /v4/nodes/rooms (emulator extension).
	InheritPermissions *bool `json:"inheritPermissions,omitempty"`
}

// SeedMember grants a user permissions in a room.
type SeedMember struct {
	UserID      int64           `json:"userId"`
	Permissions SeedPermissions `json:"permissions"`
}

// SeedPermissions are the room permissions of a member. Fields left out are
// false; manage alone does not imply the others.
type SeedPermissions struct {
	Manage              bool `json:"manage"`
	Read                bool `json:"read"`
	Create              bool `json:"create"`
	Change              bool `json:"change"`
	Delete              bool `json:"delete"`
	ManageDownloadShare bool `json:"manageDownloadShare,omitempty"`
	ManageUploadShare   bool `json:"manageUploadShare,omitempty"`
}

// LoadSeed reads and checks a seed file.
func LoadSeed(path string) (*Seed, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read seed: %w", err)
	}
	return ParseSeed(raw)
}

// ParseSeed decodes and checks a seed. Unknown fields are refused so that a
// misspelt field does not pass silently.
func ParseSeed(raw []byte) (*Seed, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var sd Seed
	if err := dec.Decode(&sd); err != nil {
		return nil, fmt.Errorf("cannot decode seed: %w", err)
	}
	if err := sd.Validate(); err != nil {
		return nil, err
	}
	return &sd, nil
}

// Validate reports every problem of the seed.
func (sd *Seed) Validate() error {
	var errs []error
	for i, c := range sd.Clients {
		if c.ClientID == "" || c.ClientSecret == "" {
			errs = append(errs, fmt.Errorf("seed.clients[%d]: clientId and clientSecret are required", i))
		}
	}
	users := map[int64]bool{}
	for i, u := range sd.Users {
		if u.ID <= 0 || u.UserName == "" || u.Password == "" {
			errs = append(errs, fmt.Errorf("seed.users[%d]: id > 0, userName and password are required", i))
		}
		if users[u.ID] {
			errs = append(errs, fmt.Errorf("seed.users[%d]: duplicate id %d", i, u.ID))
		}
		users[u.ID] = true
		for j, kp := range u.KeyPairs {
			if _, err := parseKeyPair(kp); err != nil {
				errs = append(errs, fmt.Errorf("seed.users[%d].keyPairs[%d]: %w", i, j, err))
			}
		}
	}
	rooms := map[int64]bool{}
	for i, r := range sd.Rooms {
		if r.ID <= 0 {
			errs = append(errs, fmt.Errorf("seed.rooms[%d]: id must be > 0", i))
		}
		if err := checkNodeName(r.Name); err != nil {
			errs = append(errs, fmt.Errorf("seed.rooms[%d]: %w", i, err))
		}
		if r.ParentID != nil && !rooms[*r.ParentID] {
			errs = append(errs, fmt.Errorf("seed.rooms[%d]: parent %d must be listed before the room", i, *r.ParentID))
		}
		if rooms[r.ID] {
			errs = append(errs, fmt.Errorf("seed.rooms[%d]: duplicate id %d", i, r.ID))
		}
		rooms[r.ID] = true
		for j, m := range r.Members {
			if !users[m.UserID] {
				errs = append(errs, fmt.Errorf("seed.rooms[%d].members[%d]: unknown user %d", i, j, m.UserID))
			}
		}
	}
	return errors.Join(errs...)
}

// applySeed creates what sd describes and st lacks. Call with mu held.
func applySeed(st *state, sd *Seed) error {
	if err := sd.Validate(); err != nil {
		return err
	}
	st.S3DirectUpload = sd.S3DirectUpload
	for _, c := range sd.Clients {
		if _, ok := st.Clients[c.ClientID]; !ok {
			st.Clients[c.ClientID] = c.ClientSecret
		}
	}
	for _, u := range sd.Users {
		if _, ok := st.Users[u.ID]; ok {
			continue
		}
		rec := &userRec{ID: u.ID, UserName: u.UserName, Password: u.Password, Email: u.Email,
			FirstName: u.FirstName, LastName: u.LastName, RoomManager: u.RoomManager}
		for _, raw := range u.KeyPairs {
			kp, err := parseKeyPair(raw)
			if err != nil {
				return err
			}
			rec.KeyPairs = append(rec.KeyPairs, kp)
		}
		st.Users[u.ID] = rec
	}
	now := time.Now().UTC()
	for _, r := range sd.Rooms {
		if r.ID >= st.NextNodeID {
			st.NextNodeID = r.ID + 1
		}
		if _, ok := st.Nodes[r.ID]; ok {
			continue
		}
		n := &nodeRec{ID: r.ID, Type: nodeTypeRoom, Name: r.Name, Encrypted: r.Encrypted, Classification: 2,
			HasActivitiesLog: true, CreatedAt: now, UpdatedAt: now}
		if r.ParentID != nil {
			n.ParentID = *r.ParentID
			n.InheritPermissions = true
			if p := st.Nodes[n.ParentID]; p != nil && p.Encrypted {
				n.Encrypted = true
			}
		}
		if r.InheritPermissions != nil {
			n.InheritPermissions = *r.InheritPermissions && r.ParentID != nil
		}
		st.Nodes[r.ID] = n
		for _, m := range r.Members {
			p := m.Permissions
			st.setMember(r.ID, m.UserID, permissions{Manage: p.Manage, Read: p.Read, Create: p.Create,
				Change: p.Change, Delete: p.Delete, ManageDownloadShare: p.ManageDownloadShare,
				ManageUploadShare: p.ManageUploadShare})
		}
	}
	return nil
}
