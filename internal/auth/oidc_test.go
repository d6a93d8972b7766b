package auth_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

const clientID = "game-client"

// oidcEnv is a service trusting one test provider, named "idp", as Cognito
// is set up: ID and access tokens, groups mapped to roles.
type oidcEnv struct {
	idp *testIdP
	clk *clock
	st  *store.Store
	s   *auth.Service
	key *rsa.PrivateKey
}

func newOIDCEnv(t *testing.T, mutate ...func(*auth.Config)) *oidcEnv {
	t.Helper()
	e := &oidcEnv{idp: newTestIdP(t), clk: newClock(), st: storetest.SQLite(t)}
	e.key = e.idp.publish(t, "k1", "rsa").(*rsa.PrivateKey)
	line := "name=idp issuer=" + e.idp.issuer() + " audience=" + clientID + " algorithms=RS256|ES256 token_use=id|access groups_claim=cognito:groups roles=admins:admin"
	e.s = newService(t, e.st, e.clk, append([]func(*auth.Config){func(c *auth.Config) { c.OIDC.Issuers = []string{line} }}, mutate...)...)
	return e
}

// idClaims are a valid ID token's claims for sub.
func (e *oidcEnv) idClaims(sub string) jwt.MapClaims {
	now := e.clk.Now()
	return jwt.MapClaims{"iss": e.idp.issuer(), "sub": sub, "aud": clientID, "token_use": "id",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// accessClaims are a valid Cognito access token's: client_id, no aud.
func (e *oidcEnv) accessClaims(sub string) jwt.MapClaims {
	now := e.clk.Now()
	return jwt.MapClaims{"iss": e.idp.issuer(), "sub": sub, "client_id": clientID, "token_use": "access", "scope": "openid",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func (e *oidcEnv) token(t *testing.T, c jwt.MapClaims) string {
	return sign(t, "RS256", "k1", e.key, c)
}

func (e *oidcEnv) login(t *testing.T, token string) (auth.TokenPair, error) {
	t.Helper()
	return e.s.OIDCLogin(ctx, auth.OIDCRequest{Token: token}, meta)
}

func TestOIDCLoginCreatesThenFindsAccount(t *testing.T) {
	e := newOIDCEnv(t)
	first, err := e.login(t, e.token(t, e.idClaims("user-1")))
	if err != nil || !first.Created {
		t.Fatalf("first sign-in = %+v, %v; want a new account", first, err)
	}
	p, err := e.s.Authenticate(first.AccessToken)
	if err != nil || !strings.HasPrefix(p.Username, "guest-") || !slices.Equal(p.Roles, []string{auth.RolePlayer}) {
		t.Fatalf("session of the new account: %+v, %v", p, err)
	}
	// A Cognito access token of the same user: client_id, no aud.
	again, err := e.s.OIDCLogin(ctx, auth.OIDCRequest{Token: e.token(t, e.accessClaims("user-1")), Issuer: "idp"}, meta)
	if err != nil || again.Created || again.AccountID != first.AccountID {
		t.Fatalf("access-token sign-in = %+v, %v; want account %s", again, err, first.AccountID)
	}
	if _, err := e.s.Refresh(ctx, again.RefreshToken, meta); err != nil {
		t.Fatalf("refresh of an OIDC session: %v", err)
	}
	ev, err := e.st.Audit(ctx, store.AuditQuery{AccountID: first.AccountID})
	if err != nil || len(ev) != 3 || ev[0].Kind != auth.AuditOIDCLogin || ev[2].Kind != auth.AuditRegister {
		t.Fatalf("audit = %+v, %v; want register, oidc_login, oidc_login", ev, err)
	}
	// An EC key works as well as RSA.
	ec := e.idp.publish(t, "k2", "ec")
	e.clk.Advance(auth.DefaultOIDCConfig().RefetchMinimum) // a kid published since the last fetch
	if p, err := e.login(t, sign(t, "ES256", "k2", ec, e.idClaims("user-1"))); err != nil || p.AccountID != first.AccountID {
		t.Fatalf("ES256 sign-in = %+v, %v", p, err)
	}
}

// Every refusal is a 401 code naming the reason.
func TestOIDCRefusals(t *testing.T) {
	e := newOIDCEnv(t)
	with := func(c jwt.MapClaims, k string, v any) jwt.MapClaims {
		c[k] = v
		if v == nil {
			delete(c, k)
		}
		return c
	}
	stranger := newSigner(t, "rsa").(*rsa.PrivateKey)
	pubDER, err := x509.MarshalPKIXPublicKey(&e.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	ecOwn := newSigner(t, "ec").(*ecdsa.PrivateKey)
	for i, tc := range []struct {
		name, token, issuer string
		code                errcode.Code
	}{
		{"wrong issuer", e.token(t, with(e.idClaims("u"), "iss", "https://evil.example")), "", errcode.IdentityIssuer},
		{"issuer named is not the token's", e.token(t, with(e.idClaims("u"), "iss", "https://evil.example")), "idp", errcode.IdentityIssuer},
		{"wrong audience", e.token(t, with(e.idClaims("u"), "aud", "other-client")), "", errcode.IdentityAudience},
		{"access token of another client", e.token(t, with(e.accessClaims("u"), "client_id", "other-client")), "", errcode.IdentityAudience},
		{"expired", e.token(t, with(e.idClaims("u"), "exp", e.clk.Now().Add(-time.Hour).Unix())), "", errcode.IdentityExpired},
		{"no exp", e.token(t, with(e.idClaims("u"), "exp", nil)), "", errcode.IdentityInvalid},
		{"alg none", unsigned(t, "k1", e.idClaims("u")), "", errcode.IdentityAlgorithm},
		{"HMAC with the public key", sign(t, "HS256", "k1", pubPEM, e.idClaims("u")), "", errcode.IdentityAlgorithm},
		{"algorithm not allowed", sign(t, "RS512", "k1", e.key, e.idClaims("u")), "", errcode.IdentityAlgorithm},
		{"ES256 with an RSA key's kid", sign(t, "ES256", "k1", ecOwn, e.idClaims("u")), "", errcode.IdentityInvalid},
		{"unknown kid", sign(t, "RS256", "nope", stranger, e.idClaims("u")), "", errcode.IdentityKey},
		{"known kid, another key", sign(t, "RS256", "k1", stranger, e.idClaims("u")), "", errcode.IdentityInvalid},
		{"refresh token_use", e.token(t, with(e.idClaims("u"), "token_use", "refresh")), "", errcode.IdentityTokenUse},
		{"no token_use", e.token(t, with(e.idClaims("u"), "token_use", nil)), "", errcode.IdentityTokenUse},
		{"no subject", e.token(t, with(e.idClaims("u"), "sub", nil)), "", errcode.IdentityInvalid},
		{"not a JWT", "abc.def", "", errcode.IdentityInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each from its own address: bad tokens are throttled per address.
			_, err := e.s.OIDCLogin(ctx, auth.OIDCRequest{Token: tc.token, Issuer: tc.issuer}, auth.Meta{IP: "198.51.100." + strconv.Itoa(10+i)})
			if ee := wantCode(t, err, tc.code); ee.Field != "token" || ee.Message == "" {
				t.Fatalf("refusal %+v: want field token and a message", ee)
			}
		})
	}
	wantCode(t, func() error {
		_, err := e.s.OIDCLogin(ctx, auth.OIDCRequest{Token: e.token(t, e.idClaims("u")), Issuer: "nobody"}, meta)
		return err
	}(), errcode.Invalid)
	ev, err := e.st.Audit(ctx, store.AuditQuery{Kind: auth.AuditLoginFail})
	if err != nil || len(ev) == 0 || !strings.Contains(ev[len(ev)-1].Detail, "identity_") {
		t.Fatalf("refusals audited: %+v, %v", ev, err)
	}
}

// An unknown kid fetches the JWKS again at most once per refetch interval;
// a key the issuer rotated in is found by that fetch.
func TestOIDCUnknownKidRefetch(t *testing.T) {
	e := newOIDCEnv(t)
	if _, err := e.login(t, e.token(t, e.idClaims("u"))); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(auth.DefaultOIDCConfig().RefetchMinimum)
	hits := e.idp.jwksHits.Load()
	stranger := newSigner(t, "rsa")
	for i := range 20 {
		ip := fmt.Sprintf("198.51.100.%d", 100+i) // past the per-address throttle
		_, err := e.s.OIDCLogin(ctx, auth.OIDCRequest{Token: sign(t, "RS256", "made-up", stranger, e.idClaims("u"))}, auth.Meta{IP: ip})
		wantCode(t, err, errcode.IdentityKey)
	}
	if got := e.idp.jwksHits.Load() - hits; got != 1 {
		t.Fatalf("20 unknown kids fetched the JWKS %d times, want 1", got)
	}
	// The issuer rotates: the new kid is not fetched within the interval,
	// then is.
	k3 := e.idp.publish(t, "k3", "rsa")
	tok := func() string { return sign(t, "RS256", "k3", k3, e.idClaims("u")) }
	if _, err := e.login(t, tok()); !errcode.Is(err, errcode.IdentityKey) {
		t.Fatalf("new kid within the refetch interval: %v", err)
	}
	e.clk.Advance(auth.DefaultOIDCConfig().RefetchMinimum)
	if _, err := e.login(t, tok()); err != nil {
		t.Fatalf("rotated key after the interval: %v", err)
	}
	// Keys older than refresh are fetched again on use.
	hits = e.idp.jwksHits.Load()
	e.clk.Advance(auth.DefaultOIDCConfig().Refresh)
	if _, err := e.login(t, tok()); err != nil || e.idp.jwksHits.Load() != hits+1 {
		t.Fatalf("stale keys: %v, %d fetches; want 1", err, e.idp.jwksHits.Load()-hits)
	}
}

// An issuer whose discovery document names another issuer, or whose JWKS
// is too big, is not trusted: 503 (the provider is broken), not a login.
func TestOIDCBrokenIssuer(t *testing.T) {
	e := newOIDCEnv(t)
	e.idp.mu.Lock()
	e.idp.discIss = "https://elsewhere.example"
	e.idp.mu.Unlock()
	_, err := e.login(t, e.token(t, e.idClaims("u")))
	wantCode(t, err, errcode.Unavailable)

	e2 := newOIDCEnv(t)
	e2.idp.mu.Lock()
	e2.idp.jwksBody = []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	e2.idp.mu.Unlock()
	_, err = e2.login(t, e2.token(t, e2.idClaims("u")))
	wantCode(t, err, errcode.Unavailable)
}

// Cognito groups map to roles, on the first sign-in and every later one.
func TestOIDCGroupRoles(t *testing.T) {
	e := newOIDCEnv(t)
	c := e.idClaims("boss")
	c["cognito:groups"] = []string{"admins", "testers"}
	p, err := e.login(t, e.token(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if pr, _ := e.s.Authenticate(p.AccessToken); pr == nil || !slices.Equal(pr.Roles, []string{auth.RolePlayer, auth.RoleAdmin}) {
		t.Fatalf("roles from groups: %+v", pr)
	}
	delete(c, "cognito:groups")
	if p, err = e.login(t, e.token(t, c)); err != nil {
		t.Fatal(err)
	}
	if pr, _ := e.s.Authenticate(p.AccessToken); pr == nil || !slices.Equal(pr.Roles, []string{auth.RolePlayer}) {
		t.Fatalf("group left, role kept: %+v", pr)
	}
}

// A signed-in player links an identity, signs in with it, and unlinks it;
// an identity belongs to one account.
func TestOIDCLinkUnlink(t *testing.T) {
	e := newOIDCEnv(t)
	dev, err := e.s.Device(ctx, "device-0123456789", meta)
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := e.s.Authenticate(dev.AccessToken)
	link, err := e.s.LinkIdentity(ctx, pr, auth.OIDCRequest{Token: e.token(t, e.idClaims("linked"))}, meta)
	if err != nil || link.Issuer != e.idp.issuer() || link.Subject != "linked" {
		t.Fatalf("link = %+v, %v", link, err)
	}
	if p, err := e.login(t, e.token(t, e.idClaims("linked"))); err != nil || p.AccountID != dev.AccountID || p.Created {
		t.Fatalf("sign-in with the linked identity = %+v, %v; want account %s", p, err, dev.AccountID)
	}
	other, err := e.s.Device(ctx, "device-9876543210", meta)
	if err != nil {
		t.Fatal(err)
	}
	opr, _ := e.s.Authenticate(other.AccessToken)
	_, err = e.s.LinkIdentity(ctx, opr, auth.OIDCRequest{Token: e.token(t, e.idClaims("linked"))}, meta)
	wantCode(t, err, errcode.Conflict)
	wantCode(t, e.s.UnlinkIdentity(ctx, opr, "idp", "linked", meta), errcode.NotFound)
	if err := e.s.UnlinkIdentity(ctx, pr, "idp", "linked", meta); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.s.Identities(ctx, pr); err != nil || len(ids) != 0 {
		t.Fatalf("identities after unlink: %+v, %v", ids, err)
	}
	// The only way into an account made by a sign-in stays.
	only, err := e.login(t, e.token(t, e.idClaims("only")))
	if err != nil {
		t.Fatal(err)
	}
	opr2, _ := e.s.Authenticate(only.AccessToken)
	wantCode(t, e.s.UnlinkIdentity(ctx, opr2, e.idp.issuer(), "only", meta), errcode.Conflict)
}

// Bad tokens count against the address like failed passwords.
func TestOIDCThrottle(t *testing.T) {
	e := newOIDCEnv(t)
	m := auth.Meta{IP: "198.51.100.40"}
	bad := e.token(t, func() jwt.MapClaims { c := e.idClaims("u"); c["aud"] = "x"; return c }())
	for range testConfig().AccountIPFailures {
		_, err := e.s.OIDCLogin(ctx, auth.OIDCRequest{Token: bad}, m)
		wantCode(t, err, errcode.IdentityAudience)
	}
	_, err := e.s.OIDCLogin(ctx, auth.OIDCRequest{Token: e.token(t, e.idClaims("u"))}, m)
	wantCode(t, err, errcode.RateLimited)
	if _, err := e.login(t, e.token(t, e.idClaims("u"))); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestOIDCNotConfigured(t *testing.T) {
	s := newService(t, storetest.SQLite(t), newClock())
	_, err := s.OIDCLogin(ctx, auth.OIDCRequest{Token: "a.b.c"}, meta)
	wantCode(t, err, errcode.IdentityIssuer)
}

func TestParseIssuer(t *testing.T) {
	ok := "name=cognito issuer=https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC audience=abc|def token_use=id|access groups_claim=cognito:groups roles=admins:admin"
	c, err := auth.ParseIssuer(ok)
	if err != nil || c.Name != "cognito" || !slices.Equal(c.Audiences, []string{"abc", "def"}) || c.GroupRoles["admins"] != auth.RoleAdmin || !slices.Equal(c.Algorithms, []string{"RS256"}) {
		t.Fatalf("ParseIssuer = %+v, %v", c, err)
	}
	for _, bad := range []string{
		"name=x issuer=https://a.example audience=c algorithms=HS256",
		"name=x issuer=https://a.example audience=c algorithms=none",
		"name=x issuer=http://a.example audience=c",
		"name=x issuer=https://a.example",
		"name=X issuer=https://a.example audience=c",
		"name=x issuer=https://a.example audience=c roles=admins:admin",
		"name=x issuer=https://a.example audience=c groups_claim=g roles=admins:king",
		"name=x issuer=https://a.example audience=c token_use=refresh",
		"name=x issuer=https://a.example audience=c colour=blue",
	} {
		if _, err := auth.ParseIssuer(bad); err == nil {
			t.Errorf("ParseIssuer(%q) accepted", bad)
		}
	}
	if _, err := auth.ParseIssuer("name=x issuer=http://127.0.0.1:9/ audience=c"); err != nil {
		t.Errorf("loopback http issuer: %v", err)
	}
	two := auth.OIDCConfig{Issuers: []string{"name=a issuer=https://a.example audience=c", "name=a issuer=https://b.example audience=c"}}
	if _, err := two.Parsed(); err == nil {
		t.Error("two issuers of one name accepted")
	}
}
