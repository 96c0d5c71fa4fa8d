package emulator_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

func TestOAuth_grants(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	raw := url.QueryEscape(clientID) + ":" + url.QueryEscape(clientSecret)
	password := url.Values{"grant_type": {"password"}, "username": {"svc"}, "password": {"svc-pw"}}
	withClient := func(v url.Values) url.Values {
		out := url.Values{"client_id": {clientID}, "client_secret": {clientSecret}}
		for k, vs := range v {
			out[k] = vs
		}
		return out
	}
	tests := []struct {
		name       string
		form       url.Values
		basic      string
		wantStatus int
		wantError  string
	}{
		{name: "basic_std_padded", form: password, basic: base64.StdEncoding.EncodeToString([]byte(raw)), wantStatus: http.StatusOK},
		{name: "basic_url_safe_unpadded", form: password, basic: base64.RawURLEncoding.EncodeToString([]byte(raw)), wantStatus: http.StatusOK},
		{name: "basic_not_urlencoded", form: password, basic: base64.StdEncoding.EncodeToString([]byte(clientID + ":" + clientSecret)), wantStatus: http.StatusOK},
		{name: "form_client_credentials", form: withClient(password), wantStatus: http.StatusOK},
		{name: "wrong_client_secret", form: password, basic: stdBasic(clientID, "nope"), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "no_client", form: password, wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "wrong_password", form: url.Values{"grant_type": {"password"}, "username": {"svc"}, "password": {"x"}},
			basic: stdBasic(clientID, clientSecret), wantStatus: http.StatusBadRequest, wantError: "invalid_grant"},
		{name: "unknown_user", form: url.Values{"grant_type": {"password"}, "username": {"eve"}, "password": {"x"}},
			basic: stdBasic(clientID, clientSecret), wantStatus: http.StatusBadRequest, wantError: "invalid_grant"},
		{name: "client_credentials_not_permitted", form: url.Values{"grant_type": {"client_credentials"}},
			basic: stdBasic(clientID, clientSecret), wantStatus: http.StatusBadRequest, wantError: "unsupported_grant_type"},
		{name: "bad_refresh_token", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}},
			basic: stdBasic(clientID, clientSecret), wantStatus: http.StatusBadRequest, wantError: "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, tr := e.oauth(tc.form, tc.basic)
			if status != tc.wantStatus || tr.Error != tc.wantError {
				t.Fatalf("status %d error %q, want %d %q", status, tr.Error, tc.wantStatus, tc.wantError)
			}
			if status == http.StatusOK && (tr.AccessToken == "" || tr.RefreshToken == "" || tr.TokenType != "bearer" || tr.ExpiresIn != 8*3600 || tr.Scope != "all") {
				t.Fatalf("bad token response %+v", tr)
			}
			if status == http.StatusOK {
				(&client{e: e, token: tr.AccessToken}).call(http.MethodGet, "/api/v4/user/account", nil, http.StatusOK, nil)
			}
		})
	}
}

func TestOAuth_refresh_expiry_and_revoke(t *testing.T) {
	e := newEnv(t, emulator.Config{AccessTokenLifetime: 700 * time.Millisecond})
	c := e.svc()
	c.call(http.MethodGet, "/api/v4/user/account", nil, http.StatusOK, nil)

	// The legacy header works as well.
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/v4/user/account", nil)
	req.Header.Set("X-Sds-Auth-Token", c.token)
	doExpect(t, req, http.StatusOK, nil)

	time.Sleep(800 * time.Millisecond)
	c.expectError(http.MethodGet, "/api/v4/user/account", nil, http.StatusUnauthorized, code(-10012))

	status, tr := e.oauth(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.refresh},
		"client_id": {clientID}, "client_secret": {clientSecret}}, "")
	if status != http.StatusOK || tr.ExpiresIn != 1 || tr.RefreshToken != c.refresh {
		t.Fatalf("refresh: %d %+v", status, tr)
	}
	c.token = tr.AccessToken
	c.call(http.MethodGet, "/api/v4/user/account", nil, http.StatusOK, nil)

	// Revoke the access token: it stops working.
	req, _ = http.NewRequest(http.MethodPost, e.URL+"/oauth/revoke",
		stringsReader(url.Values{"token_type_hint": {"access_token"}, "token": {c.token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+stdBasic(clientID, clientSecret))
	doExpect(t, req, http.StatusOK, nil)
	c.expectError(http.MethodGet, "/api/v4/user/account", nil, http.StatusUnauthorized, code(-10012))

	anon := &client{e: e}
	anon.expectError(http.MethodGet, "/api/v4/user/account", nil, http.StatusUnauthorized, code(-10006))
}

func TestInfo_endpoints(t *testing.T) {
	for _, s3 := range []bool{false, true} {
		e := newEnv(t, emulator.Config{Seed: testSeed(s3)})
		var info struct {
			UseS3Storage bool `json:"useS3Storage"`
		}
		anon := &client{e: e}
		anon.call(http.MethodGet, "/api/v4/public/system/info", nil, http.StatusOK, &info)
		if info.UseS3Storage != s3 {
			t.Errorf("useS3Storage = %v, want %v", info.UseS3Storage, s3)
		}
		c := e.svc()
		var general struct {
			UseS3Storage  bool `json:"useS3Storage"`
			CryptoEnabled bool `json:"cryptoEnabled"`
		}
		c.call(http.MethodGet, "/api/v4/config/info/general", nil, http.StatusOK, &general)
		if general.UseS3Storage != s3 || !general.CryptoEnabled {
			t.Errorf("general = %+v", general)
		}
		var algs struct {
			KeyPairAlgorithms []struct{ Version, Status string } `json:"keyPairAlgorithms"`
		}
		c.call(http.MethodGet, "/api/v4/config/info/policies/algorithms", nil, http.StatusOK, &algs)
		if len(algs.KeyPairAlgorithms) == 0 || algs.KeyPairAlgorithms[0].Version != "RSA-4096" || algs.KeyPairAlgorithms[0].Status != "REQUIRED" {
			t.Errorf("algorithms = %+v", algs)
		}
		var acc struct {
			ID                  int64  `json:"id"`
			UserName            string `json:"userName"`
			IsEncryptionEnabled bool   `json:"isEncryptionEnabled"`
		}
		c.call(http.MethodGet, "/api/v4/user/account", nil, http.StatusOK, &acc)
		if acc.ID != userSvc || acc.UserName != "svc" || !acc.IsEncryptionEnabled {
			t.Errorf("account = %+v", acc)
		}
	}
}

func TestKeyPairs(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	var kp struct {
		PublicKeyContainer struct{ Version, PublicKey string } `json:"publicKeyContainer"`
	}
	bob := e.bob()
	bob.call(http.MethodGet, "/api/v4/user/account/keypair", nil, http.StatusOK, &kp)
	if kp.PublicKeyContainer.Version != "RSA-4096" {
		t.Errorf("preferred key pair version %q, want RSA-4096", kp.PublicKeyContainer.Version)
	}
	bob.call(http.MethodGet, "/api/v4/user/account/keypair?version=A", nil, http.StatusOK, &kp)
	if kp.PublicKeyContainer.Version != "A" {
		t.Errorf("version A: got %q", kp.PublicKeyContainer.Version)
	}
	var all []any
	bob.call(http.MethodGet, "/api/v4/user/account/keypairs", nil, http.StatusOK, &all)
	if len(all) != 2 {
		t.Errorf("keypairs: %d, want 2", len(all))
	}

	carol := e.carol()
	carol.expectError(http.MethodGet, "/api/v4/user/account/keypair", nil, http.StatusNotFound, code(-70020))
	carol.expectError(http.MethodPost, "/api/v4/user/account/keypair",
		map[string]any{"privateKeyContainer": map[string]string{"version": "RSA-4096", "privateKey": "x"},
			"publicKeyContainer": map[string]string{"version": "RSA-4096", "publicKey": "not a pem"}},
		http.StatusBadRequest, code(-70022))
	carol.call(http.MethodPost, "/api/v4/user/account/keypair", keyPairJSON("RSA-4096", userCarol), http.StatusNoContent, nil)
	carol.expectError(http.MethodPost, "/api/v4/user/account/keypair", keyPairJSON("RSA-4096", userCarol), http.StatusConflict, code(-70021))
	carol.call(http.MethodGet, "/api/v4/user/account/keypair", nil, http.StatusOK, &kp)
	if kp.PublicKeyContainer.PublicKey == "" {
		t.Error("stored key pair lost its public key")
	}
	carol.call(http.MethodDelete, "/api/v4/user/account/keypair", nil, http.StatusNoContent, nil)
	carol.expectError(http.MethodDelete, "/api/v4/user/account/keypair", nil, http.StatusNotFound, code(-70020))
}
