package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

func TestKeyRotation(t *testing.T) {
	clk := newClock()
	dir := sealedKeys(t)
	st := storetest.SQLite(t)
	s := newServiceIn(t, st, clk, dir)
	old, _ := s.Register(ctx, auth.RegisterRequest{Username: "hank", Password: "hanks-password"}, meta)
	oldKid := kidOf(t, old.AccessToken)

	retain := 15*time.Minute + 10*time.Second
	newKid, err := auth.RotateKeys(dir, retain, clk.Now())
	if err != nil || newKid == oldKid {
		t.Fatalf("RotateKeys = %q, %v", newKid, err)
	}
	if err := s.Keys().Reload(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := s.Login(ctx, auth.LoginRequest{Username: "hank", Password: "hanks-password"}, meta)
	if got := kidOf(t, fresh.AccessToken); got != newKid {
		t.Fatalf("new tokens signed by %q, want the new key %q", got, newKid)
	}
	if _, err := s.Authenticate(old.AccessToken); err != nil {
		t.Fatalf("token of the retired key: %v", err)
	}
	var jwks struct{ Keys []map[string]string }
	if err := json.Unmarshal(s.Keys().JWKS(), &jwks); err != nil || len(jwks.Keys) != 2 {
		t.Fatalf("JWKS after rotation: %s", s.Keys().JWKS())
	}

	// Another node that shares the directory but has not reloaded yet picks
	// the new key up on the first token it sees signed by it.
	clk.Advance(2 * time.Second)
	other := newServiceIn(t, st, clk, dir)
	if _, err := other.Authenticate(fresh.AccessToken); err != nil {
		t.Fatalf("other node: %v", err)
	}

	// Past the retention, the old key stops verifying and the next rotation
	// deletes it.
	clk.Advance(retain + time.Minute)
	if err := s.Keys().Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Keys().Public(oldKid); ok {
		t.Fatal("retired key still verifies after its tokens expired")
	}
	if _, err := auth.RotateKeys(dir, retain, clk.Now()); err != nil {
		t.Fatal(err)
	}
	infos, _ := auth.ListKeys(dir)
	if len(infos) != 2 {
		t.Fatalf("keys after second rotation: %d, want 2 (new + previous)", len(infos))
	}
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Header["kid"].(string)
}

// Tokens that must never pass: RFC 8725's list and then some.
func TestTokenAttacks(t *testing.T) {
	clk := newClock()
	dir := sealedKeys(t)
	s := newServiceIn(t, storetest.SQLite(t), clk, dir)
	pair, _ := s.Register(ctx, auth.RegisterRequest{Username: "ivan", Password: "ivans-password"}, meta)
	key := s.Keys().Active()
	claims := func() jwt.MapClaims {
		now := clk.Now()
		return jwt.MapClaims{"iss": "multijuego", "aud": "multijuego", "sub": "acc", "jti": "j1", "roles": []string{"admin"},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	sign := func(c jwt.MapClaims, mutate func(*jwt.Token)) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"], tok.Header["typ"] = key.Kid, "at+jwt"
		if mutate != nil {
			mutate(tok)
		}
		out, err := tok.SignedString(key.Private)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if _, err := s.Authenticate(sign(claims(), nil)); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	hmacWithPublic := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
		tok.Header["kid"], tok.Header["typ"] = key.Kid, "at+jwt"
		out, _ := tok.SignedString([]byte(key.Public))
		return out
	}()
	noneAlg := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims())
		tok.Header["kid"], tok.Header["typ"] = key.Kid, "at+jwt"
		out, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return out
	}()
	foreign := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims())
		tok.Header["kid"], tok.Header["typ"] = key.Kid, "at+jwt"
		out, _ := tok.SignedString(otherPriv)
		return out
	}()
	with := func(k string, v any) jwt.MapClaims { c := claims(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := claims(); delete(c, k); return c }
	parts := strings.Split(pair.AccessToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := strings.Replace(string(payload), `"roles":["player"]`, `"roles":["admin"]`, 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tamperedPayload)) + "." + parts[2]

	for name, tok := range map[string]string{
		"alg none":                    noneAlg,
		"HS256 keyed with public":     hmacWithPublic,
		"signed by a foreign key":     foreign,
		"payload tampered":            tampered,
		"wrong issuer":                sign(with("iss", "evil"), nil),
		"wrong audience":              sign(with("aud", "other-service"), nil),
		"expired":                     sign(with("exp", clk.Now().Add(-time.Hour).Unix()), nil),
		"not yet valid":               sign(with("nbf", clk.Now().Add(time.Hour).Unix()), nil),
		"issued in the future":        sign(with("iat", clk.Now().Add(time.Hour).Unix()), nil),
		"no exp":                      sign(without("exp"), nil),
		"no sub":                      sign(without("sub"), nil),
		"no jti":                      sign(without("jti"), nil),
		"typ JWT":                     sign(claims(), func(j *jwt.Token) { j.Header["typ"] = "JWT" }),
		"no typ":                      sign(claims(), func(j *jwt.Token) { delete(j.Header, "typ") }),
		"unknown kid":                 sign(claims(), func(j *jwt.Token) { j.Header["kid"] = "nope" }),
		"kid path traversal":          sign(claims(), func(j *jwt.Token) { j.Header["kid"] = "../../etc/passwd" }),
		"no kid":                      sign(claims(), func(j *jwt.Token) { delete(j.Header, "kid") }),
		"refresh token as access":     pair.RefreshToken,
		"empty":                       "",
		"garbage":                     "a.b.c",
		"oversized":                   strings.Repeat("a", 5000),
		"access token with spaces":    " " + pair.AccessToken,
		"truncated signature":         pair.AccessToken[:len(pair.AccessToken)-4],
		"two dots only":               "..",
		"four parts":                  pair.AccessToken + ".x",
		"json header not an object":   base64.RawURLEncoding.EncodeToString([]byte(`[]`)) + "." + parts[1] + "." + parts[2],
		"roles as wrong type (claim)": sign(with("roles", "admin"), nil),
	} {
		if p, err := s.Authenticate(tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		} else if errcode.As(err) == nil {
			t.Errorf("%s: error %v is not a domain error", name, err)
		}
	}
	// An access token is not a refresh token either.
	_, err := s.Refresh(ctx, pair.AccessToken, meta)
	wantCode(t, err, errcode.Unauthenticated)
}

func TestTokenCacheHonoursRevocationAndExpiry(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk)
	pair, _ := s.Register(ctx, auth.RegisterRequest{Username: "judy", Password: "judys-password"}, meta)
	for i := 0; i < 3; i++ {
		if _, err := s.Authenticate(pair.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	if hits := s.Tokens().CacheHits.Load(); hits != 2 {
		t.Fatalf("cache hits = %d, want 2", hits)
	}
	clk.Advance(15*time.Minute + 11*time.Second)
	_, err := s.Authenticate(pair.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)

	pair2, _ := s.Login(ctx, auth.LoginRequest{Username: "judy", Password: "judys-password"}, meta)
	p, err := s.Authenticate(pair2.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(ctx, p, meta); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(pair2.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)
}

func TestKeyFilesAreChecked(t *testing.T) {
	dir := t.TempDir()
	if _, err := auth.OpenKeyring(auth.KeysDir{Path: dir}, time.Minute, time.Now); err != nil {
		t.Fatal(err)
	}
	infos, _ := auth.ListKeys(auth.KeysDir{Path: dir})
	if len(infos) != 1 {
		t.Fatalf("first start made %d keys, want 1", len(infos))
	}
	// Opening again reuses the key.
	if _, err := auth.OpenKeyring(auth.KeysDir{Path: dir}, time.Minute, time.Now); err != nil {
		t.Fatal(err)
	}
	if infos2, _ := auth.ListKeys(auth.KeysDir{Path: dir}); len(infos2) != 1 || infos2[0].Kid != infos[0].Kid {
		t.Fatalf("restart changed the keys: %+v", infos2)
	}
	if err := os.WriteFile(dir+"/bad.json", []byte(`{"kid":"x","alg":"EdDSA","seed":"AAAA"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.OpenKeyring(auth.KeysDir{Path: dir}, time.Minute, time.Now); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("corrupt key file: err = %v, want one naming bad.json", err)
	}
}
