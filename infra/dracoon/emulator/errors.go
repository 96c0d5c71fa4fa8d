package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// DRACOON error codes the emulator answers with. Every value is taken from the
// examples of the OpenAPI document 4.26.7 (or the reference where it says so);
// cases where the document gives no code are answered without errorCode (see
// apiError).
const (
	codeNotAuthorized          = -10006 // 401: no credentials at all
	codeWrongToken             = -10012 // 401: unknown, expired or revoked token
	codeUploadNotFound         = -20501 // 404
	codeInvalidTransferToken   = -20502 // 401: unknown download token
	codeUploadClosed           = -20503 // 400
	codeContainerNotFound      = -40000 // 404
	codeRoomNotEncrypted       = -40001 // 400
	codeRoomWithFilesDecrypt   = -40003 // 400
	codeAdminRequired          = -40006 // 400
	codeRoomWithFilesEncrypt   = -40008 // 400
	codeContainerNoOverwrite   = -40010 // 409
	codeInheritTopLevel        = -40017 // 400
	codeFileNotFound           = -40751 // 404
	codeBadNodeName            = -40755 // 400
	codeInvalidClassification  = -40756 // 400
	codeFileKeyNotFound        = -40761 // 403 (set keys) / 404 (user_file_key)
	codeFileKeyRequired        = -40763 // 400
	codeNodeNotFound           = -41000 // 404
	codeIllegalResolution      = -50503 // 400
	codeNoKeyPair              = -70020 // 403 / 404
	codeKeyPairExists          = -70021 // 409
	codeInvalidPublicKey       = -70022 // 400
	codeInvalidPrivateKey      = -70023 // 400
	codeUserNotFound           = -70501 // 404
	codeMandatoryField         = -80000 // 400
	codeInvalidPositiveNumber  = -80001 // 400
	codeExpirationInPast       = -80006 // 400
	codeMaxLengthExceeded      = -80007 // 400
	codeIncorrectContentRange  = -80021 // 400
	codeInvalidRangeParameters = -80024 // 400
	codeInvalidETags           = -80045 // 400
	codeInvalidSize            = -80046 // 400
	codeNotBetween0And9999     = -80018 // 400
	codeExceedsGCMLimit        = -80037 // 400
	codeGroupNotFound          = -30000 // 404
	codeNoRoomRescueKey        = -40024 // 400
	codeS3DirectUploadEnforced = -90033 // 400
	codeS3UploadNotFound       = -90034 // 404
	codeInvalidParameterValue  = -92001 // 400
)

// apiError is an error answered on /api as the document's ErrorResponse
// {code, message, debugInfo, errorCode}. A nil ErrorCode leaves errorCode out:
// the 4.26.7 document's examples answer a name conflict (409), missing rights
// (403) and a few others with "errorCode": null, but its ErrorResponse schema
// declares errorCode a non-nullable integer, and clients read an absent and a
// null code alike.
type apiError struct {
	Status    int
	ErrorCode *int
	Debug     string
}

// Error describes the API error for logs and tests.
func (e *apiError) Error() string {
	if e.ErrorCode == nil {
		return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Debug)
	}
	return fmt.Sprintf("%d %s (%d): %s", e.Status, http.StatusText(e.Status), *e.ErrorCode, e.Debug)
}

// apiErr builds an apiError with an error code.
func apiErr(status, code int, debug string) *apiError {
	return &apiError{Status: status, ErrorCode: &code, Debug: debug}
}

// apiErrNull builds an apiError without errorCode.
func apiErrNull(status int, debug string) *apiError {
	return &apiError{Status: status, Debug: debug}
}

// errForbidden is the document's plain 403 "Insufficient rights" (no errorCode).
func errForbidden(debug string) *apiError { return apiErrNull(http.StatusForbidden, debug) }

// errorResponse is the wire shape of ErrorResponse.
type errorResponse struct {
	Code      int    `json:"code"`
	Message   string `json:"message"`
	DebugInfo string `json:"debugInfo"`
	ErrorCode *int   `json:"errorCode,omitempty"`
}

func (e *apiError) response() errorResponse {
	return errorResponse{Code: e.Status, Message: http.StatusText(e.Status), DebugInfo: e.Debug, ErrorCode: e.ErrorCode}
}

// writeAPIError answers err on an /api route. Errors that are not *apiError
// become a 500 without errorCode.
func writeAPIError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = apiErrNull(http.StatusInternalServerError, "internal emulator error")
	}
	writeJSON(w, ae.Status, ae.response())
}

// oauthError is an error of the /oauth endpoints, answered as
// {error, error_description} (RFC 6749 §5.2 names).
type oauthError struct {
	Status      int
	Code        string
	Description string
}

// Error describes the OAuth error for logs and tests.
func (e *oauthError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Description)
}

func writeOAuthError(w http.ResponseWriter, err error) {
	var oe *oauthError
	if !errors.As(err, &oe) {
		oe = &oauthError{Status: http.StatusInternalServerError, Code: "server_error", Description: "internal emulator error"}
	}
	if oe.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
	}
	writeJSON(w, oe.Status, map[string]string{"error": oe.Code, "error_description": oe.Description})
}

// writeJSON writes v as a JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"code":500,"message":"Internal Server Error","debugInfo":"cannot encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
