// Package oidctest is an OpenID provider for tests of other packages: an
// HTTP server on loopback serving a discovery document and a JWKS of one
// RSA key, and tokens signed with it. (internal/auth's own tests use a
// richer one, and a real provider, oauth2-mock-server.)
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Provider is a running test issuer; it stops when the test ends.
type Provider struct {
	URL string // the issuer (iss) and the base of its discovery document
	key *rsa.PrivateKey
}

// New starts a provider.
func New(t testing.TB) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{key: key}
	b := base64.RawURLEncoding.EncodeToString
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.URL, "jwks_uri": p.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "use": "sig", "n": b(key.N.Bytes()), "e": b(big.NewInt(int64(key.E)).Bytes())}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Issuer is the auth.oidc.issuers entry that trusts p under name, for
// tokens issued to audience.
func (p *Provider) Issuer(name, audience string) string {
	return "name=" + name + " issuer=" + p.URL + " audience=" + audience
}

// Token signs an ID token for sub issued to aud, valid for an hour from
// now; extra claims are added (or replace these).
func (p *Provider) Token(t testing.TB, sub, aud string, extra map[string]any) string {
	t.Helper()
	c := jwt.MapClaims{"iss": p.URL, "sub": sub, "aud": aud, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	j := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	j.Header["kid"] = "k1"
	s, err := j.SignedString(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
