package emulator

import (
	"crypto/subtle"
	"encoding/base64"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxFormBody bounds OAuth form bodies.
const maxFormBody = 64 << 10

// tokenResponse is the OAuth 2.0 token response (reference §3.1).
type tokenResponse struct {
	AccessToken       string `json:"access_token"`
	TokenType         string `json:"token_type"`
	RefreshToken      string `json:"refresh_token"`
	ExpiresIn         int64  `json:"expires_in"`
	ExpiresInInactive int64  `json:"expires_in_inactive"`
	Scope             string `json:"scope"`
}

// handleToken is POST /oauth/token: password and refresh_token grants. The
// client authenticates with HTTP Basic (standard or URL-safe base64, padded or
// not) or with client_id/client_secret form fields. Errors follow RFC 6749
// §5.2: invalid_client is 401, the others 400.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(r *http.Request) (*tokenResponse, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "cannot parse form body"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID, err := s.authenticateClientLocked(r)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var uid int64
	var refresh string
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "password":
		name, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
		for _, u := range s.st.Users {
			if u.UserName == name && subtle.ConstantTimeCompare([]byte(u.Password), []byte(pw)) == 1 {
				uid = u.ID
			}
		}
		if uid == 0 {
			return nil, &oauthError{http.StatusBadRequest, "invalid_grant", "Bad credentials"}
		}
		if refresh, err = randomToken(32); err != nil {
			return nil, err
		}
		s.st.Tokens[tokenKey(refresh)] = &tokenRec{Kind: tokenRefresh, UserID: uid, ClientID: clientID,
			ExpiresAt: now.Add(s.cfg.RefreshTokenLifetime)}
	case "refresh_token":
		refresh = r.PostForm.Get("refresh_token")
		t := s.st.Tokens[tokenKey(refresh)]
		if refresh == "" || t == nil || t.Kind != tokenRefresh || t.ClientID != clientID || now.After(t.ExpiresAt) {
			return nil, &oauthError{http.StatusBadRequest, "invalid_grant", "Invalid refresh token"}
		}
		if s.st.Users[t.UserID] == nil {
			return nil, &oauthError{http.StatusBadRequest, "invalid_grant", "Invalid refresh token"}
		}
		uid = t.UserID
	case "":
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "Missing grant type"}
	default:
		return nil, &oauthError{http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: " + gt}
	}
	access, err := randomToken(32)
	if err != nil {
		return nil, err
	}
	s.st.Tokens[tokenKey(access)] = &tokenRec{Kind: tokenAccess, UserID: uid, ClientID: clientID,
		ExpiresAt: now.Add(s.cfg.AccessTokenLifetime)}
	s.st.pruneExpired(now)
	if err := s.commitLocked(); err != nil {
		return nil, err
	}
	secs := int64(math.Ceil(s.cfg.AccessTokenLifetime.Seconds()))
	// expires_in_inactive: the emulator has no separate inactivity timeout, so
	// it reports the access token lifetime.
	return &tokenResponse{AccessToken: access, TokenType: "bearer", RefreshToken: refresh,
		ExpiresIn: secs, ExpiresInInactive: secs, Scope: "all"}, nil
}

// handleRevoke is POST /oauth/revoke (RFC 7009): 200 whether or not the token
// was known.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", "cannot parse form body"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID, err := s.authenticateClientLocked(r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	key := tokenKey(r.PostForm.Get("token"))
	if t := s.st.Tokens[key]; t != nil && t.ClientID == clientID {
		delete(s.st.Tokens, key)
		if err := s.commitLocked(); err != nil {
			writeOAuthError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// authenticateClientLocked checks the OAuth client credentials. Call with mu held.
func (s *Server) authenticateClientLocked(r *http.Request) (string, error) {
	candidates := basicCredentials(r.Header.Get("Authorization"))
	if len(candidates) == 0 {
		candidates = [][2]string{{r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")}}
	}
	for _, c := range candidates {
		want, known := s.st.Clients[c[0]]
		if c[0] != "" && known && subtle.ConstantTimeCompare([]byte(want), []byte(c[1])) == 1 {
			return c[0], nil
		}
	}
	return "", &oauthError{http.StatusUnauthorized, "invalid_client", "Bad client credentials"}
}

// basicCredentials decodes "Basic base64(id:secret)" leniently: standard or
// URL-safe alphabet, with or without padding. RFC 6749 §2.3.1 asks clients to
// form-urlencode id and secret first, many do not: both readings are returned.
func basicCredentials(header string) [][2]string {
	scheme, payload, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "basic") {
		return nil
	}
	payload = strings.TrimRight(strings.TrimSpace(payload), "=")
	var raw []byte
	var err error
	if strings.ContainsAny(payload, "-_") {
		raw, err = base64.RawURLEncoding.DecodeString(payload)
	} else {
		raw, err = base64.RawStdEncoding.DecodeString(payload)
	}
	if err != nil {
		return nil
	}
	id, secret, found := strings.Cut(string(raw), ":")
	if !found {
		return nil
	}
	out := [][2]string{{id, secret}}
	uid, err1 := url.QueryUnescape(id)
	usecret, err2 := url.QueryUnescape(secret)
	if err1 == nil && err2 == nil && (uid != id || usecret != secret) {
		out = append(out, [2]string{uid, usecret})
	}
	return out
}

// authenticate returns the user of the request's access token, taken from
// "Authorization: Bearer" or the legacy X-Sds-Auth-Token header.
func (s *Server) authenticate(r *http.Request) (int64, error) {
	token := r.Header.Get("X-Sds-Auth-Token")
	if h := r.Header.Get("Authorization"); token == "" && h != "" {
		scheme, v, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "bearer") {
			token = strings.TrimSpace(v)
		}
	}
	if token == "" {
		return 0, apiErr(http.StatusUnauthorized, codeNotAuthorized, "User is not authorized to perform this operation")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.Tokens[tokenKey(token)]
	if t == nil || t.Kind != tokenAccess || time.Now().After(t.ExpiresAt) || s.st.Users[t.UserID] == nil {
		return 0, apiErr(http.StatusUnauthorized, codeWrongToken, "Wrong token")
	}
	return t.UserID, nil
}
