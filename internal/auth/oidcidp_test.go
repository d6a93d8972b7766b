package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// testIdP is an OpenID provider the test runs on loopback with keys it
// makes itself: a discovery document and a JWKS, and tokens signed with
// any of its keys (or with keys it does not publish).
type testIdP struct {
	srv       *httptest.Server
	jwksHits  atomic.Int32
	mu        sync.Mutex
	published map[string]crypto.Signer // kid → key, in the JWKS
	discIss   string                   // issuer the discovery document names ("" = the real one)
	jwksBody  []byte                   // served instead of the keys when set
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	p := &testIdP{published: map[string]crypto.Signer{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		iss := p.discIss
		p.mu.Unlock()
		if iss == "" {
			iss = p.srv.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": p.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.jwksBody != nil {
			_, _ = w.Write(p.jwksBody)
			return
		}
		var keys []map[string]string
		for kid, k := range p.published {
			keys = append(keys, jwkOf(t, kid, k.Public()))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testIdP) issuer() string { return p.srv.URL }

// publish makes a key of kind "rsa" or "ec" and publishes it under kid.
func (p *testIdP) publish(t *testing.T, kid, kind string) crypto.Signer {
	t.Helper()
	k := newSigner(t, kind)
	p.mu.Lock()
	p.published[kid] = k
	p.mu.Unlock()
	return k
}

func newSigner(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	if kind == "ec" {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func jwkOf(t *testing.T, kid string, pub crypto.PublicKey) map[string]string {
	b := base64.RawURLEncoding.EncodeToString
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b(pub.N.Bytes()), "e": b(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			t.Error(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "x": b(raw[1:33]), "y": b(raw[33:])}
	}
	t.Errorf("no JWK for %T", pub)
	return nil
}

// sign makes a token of claims with alg, kid in the header, signed by key.
func sign(t *testing.T, alg, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	j := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if kid != "" {
		j.Header["kid"] = kid
	}
	s, err := j.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned is a token with alg none: header and claims, empty signature.
func unsigned(t *testing.T, kid string, claims jwt.MapClaims) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return strings.Join([]string{enc(map[string]string{"alg": "none", "typ": "JWT", "kid": kid}), enc(claims), ""}, ".")
}
