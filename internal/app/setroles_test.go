package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/redistest"
)

// A role the command line adds reaches a running server's device logins at
// once when the servers share Redis: `accounts set-roles` invalidates the
// profile the server cached (device logins read it), through the cache's
// cross-node invalidation, instead of leaving it for cache.account_ttl.
func TestSetRolesReachesCachedProfiles(t *testing.T) {
	cfg := testConfig(t)
	cfg.RedisURL, cfg.RedisPrefix = redistest.URL(t), redistest.Prefix(t)
	m, stop := startMain(t, cfg)
	defer stop()
	login := func() (token string, roles []string) {
		t.Helper()
		res, err := http.Post(m.URL()+"/v1/auth/device", "application/json", strings.NewReader(`{"device_id":"device-set-roles-1"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode/100 != 2 {
			t.Fatalf("device login: %d %v", res.StatusCode, err)
		}
		parts := strings.Split(tok.AccessToken, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		var claims struct {
			Roles []string `json:"roles"`
		}
		if err != nil || json.Unmarshal(payload, &claims) != nil {
			t.Fatalf("access token payload: %v", err)
		}
		return tok.AccessToken, claims.Roles
	}
	token, roles := login()
	login() // the second login of the device reads the cached profile
	if slices.Contains(roles, "admin") {
		t.Fatalf("roles before: %v", roles)
	}
	req, _ := http.NewRequest("GET", m.URL()+"/v1/account", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acct struct {
		Username string `json:"username"`
	}
	json.NewDecoder(res.Body).Decode(&acct)
	res.Body.Close()
	var out, errb bytes.Buffer
	args := []string{"accounts", "set-roles", acct.Username, "player,admin", "--data-dir", cfg.DataDir,
		"--redis-url", cfg.RedisURL, "--redis-prefix", cfg.RedisPrefix}
	if code := app.Run(context.Background(), args, &out, &errb, nil); code != 0 {
		t.Fatalf("set-roles: exit %d: %s", code, errb.String())
	}
	if _, roles = login(); !slices.Contains(roles, "admin") {
		t.Fatalf("roles of a device login right after set-roles: %v, want admin", roles)
	}
}
