package dracoon

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/crypto"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// Wire types. Field names follow the schemas of the DRACOON OpenAPI document
// 4.26.7 (schema names in the comments); only the fields this client reads or
// writes are listed.

// Node is a room, folder or file (schema Node).
type Node struct {
	ID             int64            `json:"id"`
	Type           string           `json:"type"` // NodeTypeRoom, NodeTypeFolder or NodeTypeFile
	Name           string           `json:"name"`
	ParentID       *int64           `json:"parentId,omitempty"` // absent at top level
	ParentPath     string           `json:"parentPath,omitempty"`
	Size           int64            `json:"size,omitempty"` // plaintext size of a file
	IsEncrypted    bool             `json:"isEncrypted"`
	Permissions    *NodePermissions `json:"permissions,omitempty"` // of the caller
	ExpireAt       *time.Time       `json:"expireAt,omitempty"`
	Notes          string           `json:"notes,omitempty"`
	Classification int              `json:"classification,omitempty"`
	CreatedAt      *time.Time       `json:"createdAt,omitempty"`
}

// Node types.
const (
	NodeTypeRoom   = "room"
	NodeTypeFolder = "folder"
	NodeTypeFile   = "file"
)

// NodePermissions are the caller's permissions on a node (schema NodePermissions).
type NodePermissions struct {
	Manage              bool `json:"manage"`
	Read                bool `json:"read"`
	Create              bool `json:"create"`
	Change              bool `json:"change"`
	Delete              bool `json:"delete"`
	ManageDownloadShare bool `json:"manageDownloadShare"`
	ManageUploadShare   bool `json:"manageUploadShare"`
}

// listRange is Range.
type listRange struct {
	Offset int64 `json:"offset"`
	Limit  int64 `json:"limit"`
	Total  int64 `json:"total"`
}

// nodeList is NodeList.
type nodeList struct {
	Range listRange `json:"range"`
	Items []Node    `json:"items"`
}

// createRoomRequest is CreateRoomRequest.
type createRoomRequest struct {
	Name               string `json:"name"`
	ParentID           int64  `json:"parentId"`
	InheritPermissions bool   `json:"inheritPermissions"`
}

// SystemInfo is the public system information (schema SystemInfo).
type SystemInfo struct {
	LanguageDefault       string   `json:"languageDefault"`
	S3Hosts               []string `json:"s3Hosts"`
	S3EnforceDirectUpload bool     `json:"s3EnforceDirectUpload"`
	UseS3Storage          bool     `json:"useS3Storage"` // upload parts directly to S3
}

// UserAccount is the caller's account (schema UserAccount).
type UserAccount struct {
	ID                  int64  `json:"id"`
	UserName            string `json:"userName"`
	FirstName           string `json:"firstName"`
	LastName            string `json:"lastName"`
	Email               string `json:"email,omitempty"`
	IsEncryptionEnabled bool   `json:"isEncryptionEnabled"`
}

// objectExpiration is ObjectExpiration.
type objectExpiration struct {
	EnableExpiration bool       `json:"enableExpiration"`
	ExpireAt         *time.Time `json:"expireAt,omitempty"`
}

// createUploadRequest is CreateFileUploadRequest.
type createUploadRequest struct {
	ParentID       int64             `json:"parentId"`
	Name           string            `json:"name"`
	Size           int64             `json:"size"`
	Expiration     *objectExpiration `json:"expiration,omitempty"`
	Notes          string            `json:"notes,omitempty"`
	DirectS3Upload bool              `json:"directS3Upload,omitempty"`
}

// createUploadResponse is CreateFileUploadResponse.
type createUploadResponse struct {
	UploadURL string `json:"uploadUrl"`
	UploadID  string `json:"uploadId"`
	Token     string `json:"token"`
}

// chunkUploadResponse is ChunkUploadResponse.
type chunkUploadResponse struct {
	Size int64  `json:"size"`
	Hash string `json:"hash"` // MD5 hex of the chunk
}

// completeUploadRequest is CompleteUploadRequest.
type completeUploadRequest struct {
	ResolutionStrategy string          `json:"resolutionStrategy"`
	KeepShareLinks     bool            `json:"keepShareLinks"`
	FileKey            *crypto.FileKey `json:"fileKey,omitempty"`
}

// presignedURLsRequest is GeneratePresignedUrlsRequest.
type presignedURLsRequest struct {
	Size            int64 `json:"size"`
	FirstPartNumber int   `json:"firstPartNumber"`
	LastPartNumber  int   `json:"lastPartNumber"`
}

// presignedURLList is PresignedUrlList.
type presignedURLList struct {
	URLs []struct {
		URL        string `json:"url"`
		PartNumber int    `json:"partNumber"`
	} `json:"urls"`
}

// s3Part is S3FileUploadPart.
type s3Part struct {
	PartNumber int    `json:"partNumber"`
	PartEtag   string `json:"partEtag"`
}

// completeS3Request is CompleteS3FileUploadRequest.
type completeS3Request struct {
	Parts              []s3Part        `json:"parts"`
	ResolutionStrategy string          `json:"resolutionStrategy"`
	KeepShareLinks     bool            `json:"keepShareLinks"`
	FileKey            *crypto.FileKey `json:"fileKey,omitempty"`
}

// S3 upload states reported by GET /v4/nodes/files/uploads/{upload_id}.
const (
	uploadStatusTransfer  = "transfer"
	uploadStatusFinishing = "finishing"
	uploadStatusDone      = "done"
	uploadStatusError     = "error"
)

// uploadStatus is S3FileUploadStatus.
type uploadStatus struct {
	Status       string         `json:"status"`
	Node         *Node          `json:"node,omitempty"`
	ErrorDetails *errorResponse `json:"errorDetails,omitempty"`
}

// missingKeysResponse is MissingKeysResponse.
type missingKeysResponse struct {
	Range listRange `json:"range"`
	Items []struct {
		UserID int64 `json:"userId"`
		FileID int64 `json:"fileId"`
	} `json:"items"`
	Users []struct {
		ID                 int64                     `json:"id"`
		PublicKeyContainer crypto.PublicKeyContainer `json:"publicKeyContainer"`
	} `json:"users"`
	Files []struct {
		ID               int64          `json:"id"`
		FileKeyContainer crypto.FileKey `json:"fileKeyContainer"`
	} `json:"files"`
}

// userFileKeySetRequest is UserFileKeySetRequest.
type userFileKeySetRequest struct {
	FileID  int64          `json:"fileId"`
	UserID  int64          `json:"userId"`
	FileKey crypto.FileKey `json:"fileKey"`
}

// userFileKeySetBatchRequest is UserFileKeySetBatchRequest.
type userFileKeySetBatchRequest struct {
	Items []userFileKeySetRequest `json:"items"`
}

// downloadTokenResponse is DownloadTokenGenerateResponse.
type downloadTokenResponse struct {
	DownloadURL string `json:"downloadUrl"`
	Token       string `json:"token"`
}

// tokenResponse is the OAuth 2.0 token response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

// errorResponse is ErrorResponse, the body of every JSON API error.
type errorResponse struct {
	Code      int    `json:"code"`
	Message   string `json:"message"`
	DebugInfo string `json:"debugInfo,omitempty"`
	ErrorCode *int   `json:"errorCode,omitempty"`
}

// oauthErrorResponse is the error body of the OAuth endpoints.
type oauthErrorResponse struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// APIError is an error answered by DRACOON (or by the S3 endpoint of a direct
// upload). It never carries a token, password or key.
type APIError struct {
	Status    int    // HTTP status
	Code      int    // "code" of the body, usually equal to Status
	Message   string // "message", or the OAuth error, or the S3 error code
	DebugInfo string // "debugInfo", or the OAuth error_description, or the S3 message
	ErrorCode int    // DRACOON's negative "errorCode"; 0 when absent or null
	Op        string // what the client was doing, e.g. "POST /v4/nodes/rooms"
}

// Error describes the error with its operation, status and codes.
func (e *APIError) Error() string {
	msg := fmt.Sprintf("dracoon: %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.ErrorCode != 0 {
		msg += fmt.Sprintf(" (errorCode %d)", e.ErrorCode)
	}
	if e.Message != "" && e.Message != http.StatusText(e.Status) {
		msg += ": " + e.Message
	}
	if e.DebugInfo != "" {
		msg += ": " + e.DebugInfo
	}
	return msg
}

// ErrorClass classifies the answer (package errclass): 408, 409, 429 and
// 5xx are transient; a refusal of the token endpoint (wrong client, wrong
// password) and every other 3xx and 4xx are permanent, except a 401 of the
// API (an access token revoked early) and a 403 of the S3 endpoint (a
// presigned URL expired), which a new token or URL can mend.
func (e *APIError) ErrorClass() errclass.Class {
	switch {
	case e.Op == tokenRoute && (e.Status == http.StatusBadRequest || e.Status == http.StatusUnauthorized):
		return errclass.Permanent
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusRequestTimeout, e.Status == http.StatusConflict,
		e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return errclass.Transient
	case e.Status == http.StatusForbidden && e.Op == presignedRoute:
		return errclass.Transient
	}
	return errclass.Permanent
}

// DecodeError reports a successful response whose body this client cannot
// decode: most often a body cut off in transit, so it is transient. When
// the request was a write that is not safe to repeat (Acted), the server
// accepted it (its status said so) and only the answer is lost: the class
// is then Unknown, so that whoever repeats the work looks the result up
// first.
type DecodeError struct {
	Op    string // e.g. "GET /v4/nodes"
	Err   error
	Acted bool // a write, not safe to repeat, that the server accepted
}

// Error describes the operation and the decoding problem.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("dracoon: %s: cannot decode response: %v", e.Op, e.Err)
}

// Unwrap returns the decoding error.
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrorClass is errclass.Transient (a truncated or garbled body may be
// whole the next time), or errclass.Unknown for a write that acted.
func (e *DecodeError) ErrorClass() errclass.Class {
	if e.Acted {
		return errclass.Unknown
	}
	return errclass.Transient
}

// Errors returned by the client. They are wrapped with context; test for them
// with errors.Is. Each carries its class (package errclass).
var (
	// ErrRoomNotEncrypted reports a target room that is not encrypted.
	ErrRoomNotEncrypted = errclass.New(errclass.Permanent, "room is not encrypted")
	// ErrNoCreatePermission reports a target room in which the account may
	// not create files.
	ErrNoCreatePermission = errclass.New(errclass.Permanent, "no create permission in room")
	// ErrInvalidPath reports a room path with an empty or illegal segment, or
	// a path through a node that is not a room.
	ErrInvalidPath = errclass.New(errclass.Permanent, "invalid room path")
	// ErrInvalidName reports a file name DRACOON refuses.
	ErrInvalidName = errclass.New(errclass.Permanent, "invalid node name")
	// ErrChecksum reports an uploaded chunk whose MD5 the server computed
	// differently.
	ErrChecksum = errclass.New(errclass.Transient, "chunk checksum mismatch")
	// ErrUploadClosed reports a call on an upload that was completed,
	// cancelled or failed. It carries no class: the error it wraps, why the
	// upload closed, does.
	ErrUploadClosed = errors.New("upload is closed")
	// ErrBadPart reports a part number, offset or length that does not match
	// the upload's layout, or a proxy chunk sent out of order.
	ErrBadPart = errclass.New(errclass.Permanent, "bad upload part")
	// ErrSizeMismatch reports content whose length differs from the
	// declared size, or a completed file whose size differs from it.
	ErrSizeMismatch = errclass.New(errclass.Permanent, "content size differs from declared size")
	// ErrNoKeyPair reports an account without a key pair of the needed version.
	ErrNoKeyPair = errclass.New(errclass.Permanent, "no key pair")
	// ErrUploadFailed reports an S3 upload that the server finished with an
	// error; a new upload may succeed.
	ErrUploadFailed = errclass.New(errclass.Transient, "upload failed on the server")
	// ErrNameConflict reports a completion refused because a different file
	// (of another size) already holds the name in the room.
	ErrNameConflict = errclass.New(errclass.Permanent, "another file holds the name")
	// ErrOutcomeUnknown reports a completion whose answer was lost and whose
	// result could not be learned: the file may or may not exist. Look it up
	// (FindFile) before uploading it again.
	ErrOutcomeUnknown = errclass.New(errclass.Unknown, "outcome of the upload completion is unknown")
	// ErrRoomNotFound reports a room that is gone (404), such as a room
	// whose id was resolved earlier and reused: resolve its path again.
	ErrRoomNotFound = errclass.New(errclass.Transient, "room not found")
	// ErrIncomplete reports a key distribution that could not serve every
	// user; a later run may.
	ErrIncomplete = errclass.New(errclass.Transient, "key distribution incomplete")
)

// IsStatus reports whether err is an APIError with the given HTTP status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}
