package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/errcode"
)

// FuzzIdentityToken feeds the unverified decoding of external tokens and
// the claim checks arbitrary input: they never panic, accept only a
// three-part compact JWS within the size bound, and every refusal is an
// identity_ domain error on field token.
func FuzzIdentityToken(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	hdr := enc([]byte(`{"alg":"RS256","kid":"k1"}`))
	for _, c := range []string{
		`{"iss":"https://i.example","sub":"u","aud":"c","token_use":"id","cognito:groups":["admins"]}`,
		`{"iss":"https://i.example","sub":"u","client_id":"c","token_use":"access"}`,
		`{"sub":1,"aud":[1,"c"],"cognito:groups":"admins"}`,
		`{"exp":1e999}`, `null`, `[]`, `{} {}`, `{"a":` + strings.Repeat("[", 200),
	} {
		f.Add(hdr + "." + enc([]byte(c)) + ".sig")
	}
	f.Add(enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{}`)) + ".")
	f.Add("a.b.c.d.e")
	f.Add("..")
	ic := &IssuerConfig{Name: "i", Issuer: "https://i.example", Audiences: []string{"c"}, Algorithms: []string{"RS256"},
		TokenUse: []string{"id", "access"}, SubjectClaim: "sub", GroupsClaim: "cognito:groups", GroupRoles: map[string]string{"admins": RoleAdmin}}
	f.Fuzz(func(t *testing.T, raw string) {
		_, claims, err := decodeIdentityToken(raw)
		if err != nil {
			if e := errcode.As(err); e == nil || e.Code != errcode.IdentityInvalid || e.Field != "token" {
				t.Fatalf("decode(%q) = %v; want identity_token_invalid", raw, err)
			}
			return
		}
		if len(raw) > maxIdentityToken || strings.Count(raw, ".") != 2 || claims == nil {
			t.Fatalf("decode accepted %q", raw)
		}
		id, err := checkIdentityClaims(ic, claims)
		if err != nil {
			if e := errcode.As(err); e == nil || !strings.HasPrefix(string(e.Code), "identity_") || e.Field != "token" {
				t.Fatalf("checkIdentityClaims = %v; want an identity_ error on token", err)
			}
			return
		}
		if id.subject == "" || id.roles()[0] != RolePlayer {
			t.Fatalf("accepted claims without a subject or the player role: %+v", id)
		}
	})
}

// FuzzIssuerJWKS feeds the reading of an issuer's key set arbitrary
// documents: it never panics, and what it returns is only public keys of
// the three kinds a token may be checked with.
func FuzzIssuerJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"` + strings.Repeat("AQAB", 86) + `","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"b","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 43) + `"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + strings.Repeat("A", 43) + `"},{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","use":"enc"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"","e":"AQABAQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"z","n":"` + strings.Repeat("A", 344) + `","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var set jwkSet
		if json.Unmarshal(doc, &set) != nil {
			return
		}
		keys, err := set.publicKeys()
		if err != nil {
			return
		}
		for kid, k := range keys {
			switch k := k.(type) {
			case *rsa.PublicKey:
				if k.N.BitLen() < 2048 || k.E < 3 {
					t.Fatalf("key %q: RSA of %d bits accepted", kid, k.N.BitLen())
				}
			case *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				t.Fatalf("key %q: %T", kid, k)
			}
		}
	})
}
