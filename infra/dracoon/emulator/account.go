package emulator

import (
	"crypto/sha256"
	"fmt"
	"net/http"
)

// handleSystemInfo is GET /v4/public/system/info (SystemInfo, no auth).
func (s *Server) handleSystemInfo(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	useS3 := s.st.S3DirectUpload
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"languageDefault":       "en",
		"hideLoginInputFields":  false,
		"s3Hosts":               []string{},
		"s3EnforceDirectUpload": false,
		"useS3Storage":          useS3,
		"authMethods":           []map[string]any{{"name": "basic", "isEnabled": true, "priority": 1}},
	})
	return nil
}

// handleGeneralInfo is GET /v4/config/info/general (GeneralSettingsInfo).
func (s *Server) handleGeneralInfo(w http.ResponseWriter, r *http.Request, uid int64) error {
	s.mu.Lock()
	useS3 := s.st.S3DirectUpload
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"sharePasswordSmsEnabled":        false,
		"cryptoEnabled":                  true,
		"emailNotificationButtonEnabled": false,
		"eulaEnabled":                    false,
		"weakPasswordEnabled":            false,
		"useS3Storage":                   useS3,
		"s3TagsEnabled":                  false,
		"homeRoomsActive":                false,
	})
	return nil
}

// handleAlgorithms is GET /v4/config/info/policies/algorithms
// (AlgorithmVersionInfoList; versions from reference §1.1).
func (s *Server) handleAlgorithms(w http.ResponseWriter, r *http.Request, uid int64) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"fileKeyAlgorithms": []map[string]string{
			{"version": fileKeyVersionRSA4096, "description": "Client-side encryption with RSA-4096 and AES-256-GCM", "status": "REQUIRED"},
			{"version": keyVersionA, "description": "Client-side encryption with RSA-2048 and AES-256-GCM", "status": "DISCOURAGED"},
		},
		"keyPairAlgorithms": []map[string]string{
			{"version": keyPairVersionRSA4096, "description": "RSA-4096", "status": "REQUIRED"},
			{"version": keyVersionA, "description": "RSA-2048", "status": "DISCOURAGED"},
		},
	})
	return nil
}

// handleAccount is GET /v4/user/account (UserAccount).
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request, uid int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[uid]
	manageable := false
	for id, members := range s.st.Members {
		if p, ok := members[uid]; ok && p.Manage && s.st.Nodes[id] != nil {
			manageable = true
		}
	}
	acc := map[string]any{
		"id":                    u.ID,
		"customerId":            1,
		"userName":              u.UserName,
		"firstName":             firstName(u),
		"lastName":              lastName(u),
		"isLocked":              false,
		"hasManageableRooms":    manageable,
		"userRoles":             map[string]any{"items": []any{}},
		"language":              "en",
		"authData":              map[string]any{"method": "basic", "login": u.UserName},
		"mustSetEmail":          false,
		"needsToAcceptEULA":     false,
		"isEncryptionEnabled":   len(u.KeyPairs) > 0,
		"lockStatus":            2,
		"needsToChangePassword": false,
	}
	if u.Email != "" {
		acc["email"] = u.Email
	}
	if u.RoomManager {
		acc["userRoles"] = map[string]any{"items": []any{map[string]any{"id": 1, "name": "ROOM_MANAGER", "description": "Room Manager"}}}
	}
	writeJSON(w, http.StatusOK, acc)
	return nil
}

func firstName(u *userRec) string {
	if u.FirstName != "" {
		return u.FirstName
	}
	return u.UserName
}

func lastName(u *userRec) string {
	if u.LastName != "" {
		return u.LastName
	}
	return "User"
}

// userInfoOf is the UserInfo of a user id (a deleted user if unknown). Call with mu held.
func (st *state) userInfoOf(id int64) *userInfo {
	u := st.Users[id]
	if u == nil {
		return &userInfo{ID: id, UserType: "deleted", AvatarUUID: avatarUUID(id), UserName: "deleted", FirstName: "Deleted", LastName: "User"}
	}
	return &userInfo{ID: u.ID, UserType: "internal", AvatarUUID: avatarUUID(id), UserName: u.UserName,
		FirstName: firstName(u), LastName: lastName(u), Email: u.Email}
}

// avatarUUID is a stable UUID-shaped string per user.
func avatarUUID(id int64) string {
	h := sha256.Sum256(fmt.Appendf(nil, "avatar-%d", id))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
