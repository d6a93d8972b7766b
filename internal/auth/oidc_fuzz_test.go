package auth

import (
	"encoding/base64"
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
