package gateway_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/auth/oidctest"
	"github.com/multijuego/multijuego/internal/gateway"
)

// The OIDC routes: sign-in answers 201 then 200 with the usual token
// response, a refused token 401 with its own code; a signed-in player
// links, lists and unlinks identities.
func TestOIDCRoutes(t *testing.T) {
	o := oidctest.New(t)
	e := newEnv(t, func(_ *gateway.Config, c *auth.Config) {
		c.OIDC.Issuers = []string{o.Issuer("idp", "game")}
	})
	r := e.post("/v1/auth/oidc", "", map[string]string{"token": o.Token(t, "alice", "game", nil)})
	var tr gateway.TokenResponse
	if r.json(t, &tr); r.status != http.StatusCreated || tr.AccessToken == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("first sign-in: %d %s", r.status, r.body)
	}
	if r := e.post("/v1/auth/oidc", "", map[string]string{"token": o.Token(t, "alice", "game", nil), "issuer": "idp"}); r.status != http.StatusOK {
		t.Fatalf("second sign-in: %d %s", r.status, r.body)
	}
	r = e.post("/v1/auth/oidc", "", map[string]string{"token": o.Token(t, "alice", "other", nil)})
	if d := r.errBody(t); r.status != http.StatusUnauthorized || d.Code != "identity_audience" || d.Field != "token" {
		t.Fatalf("wrong audience: %d %+v", r.status, d)
	}

	bob := e.register("bob").AccessToken
	if r := e.post("/v1/account/identities", bob, map[string]string{"token": o.Token(t, "bob-at-idp", "game", nil)}); r.status != http.StatusCreated {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	if r := e.post("/v1/account/identities", bob, map[string]string{"token": o.Token(t, "alice", "game", nil)}); r.status != http.StatusConflict {
		t.Fatalf("link of alice's identity: %d %s", r.status, r.body)
	}
	var list struct {
		Identities []gateway.IdentityResponse `json:"identities"`
	}
	r = e.do("GET", "/v1/account/identities", bob, "", nil)
	if r.json(t, &list); r.status != 200 || len(list.Identities) != 1 || list.Identities[0].Subject != "bob-at-idp" {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	q := "?issuer=idp&subject=" + url.QueryEscape("bob-at-idp")
	if r := e.do("DELETE", "/v1/account/identities"+q, bob, "", nil); r.status != http.StatusNoContent {
		t.Fatalf("unlink: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/account/identities"+q, bob, "", nil); r.status != http.StatusNotFound {
		t.Fatalf("unlink again: %d %s", r.status, r.body)
	}
}
