package gateway_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
)

// oidcIssuer is an OpenID provider on loopback with one RSA key; sign
// issues its tokens.
type oidcIssuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &oidcIssuer{key: key}
	b := base64.RawURLEncoding.EncodeToString
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": o.srv.URL, "jwks_uri": o.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "use": "sig", "n": b(key.N.Bytes()), "e": b(big.NewInt(int64(key.E)).Bytes())}}})
	})
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

func (o *oidcIssuer) sign(t *testing.T, sub, aud string) string {
	t.Helper()
	j := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": o.srv.URL, "sub": sub, "aud": aud,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	j.Header["kid"] = "k1"
	s, err := j.SignedString(o.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The OIDC routes: sign-in answers 201 then 200 with the usual token
// response, a refused token 401 with its own code; a signed-in player
// links, lists and unlinks identities.
func TestOIDCRoutes(t *testing.T) {
	o := newOIDCIssuer(t)
	e := newEnv(t, func(_ *gateway.Config, c *auth.Config) {
		c.OIDC.Issuers = []string{"name=idp issuer=" + o.srv.URL + " audience=game"}
	})
	r := e.post("/v1/auth/oidc", "", map[string]string{"token": o.sign(t, "alice", "game")})
	var tr gateway.TokenResponse
	if r.json(t, &tr); r.status != http.StatusCreated || tr.AccessToken == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("first sign-in: %d %s", r.status, r.body)
	}
	if r := e.post("/v1/auth/oidc", "", map[string]string{"token": o.sign(t, "alice", "game"), "issuer": "idp"}); r.status != http.StatusOK {
		t.Fatalf("second sign-in: %d %s", r.status, r.body)
	}
	r = e.post("/v1/auth/oidc", "", map[string]string{"token": o.sign(t, "alice", "other")})
	if d := r.errBody(t); r.status != http.StatusUnauthorized || d.Code != "identity_audience" || d.Field != "token" {
		t.Fatalf("wrong audience: %d %+v", r.status, d)
	}

	bob := e.register("bob").AccessToken
	if r := e.post("/v1/account/identities", bob, map[string]string{"token": o.sign(t, "bob-at-idp", "game")}); r.status != http.StatusCreated {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	if r := e.post("/v1/account/identities", bob, map[string]string{"token": o.sign(t, "alice", "game")}); r.status != http.StatusConflict {
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
