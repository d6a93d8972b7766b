package auth_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// mockProviderDir holds the real OpenID provider the tests run
// (oauth2-mock-server, installed there by scripts/test.sh with npm ci).
const mockProviderDir = "testdata/oidcmock"

// mockProvider is oauth2-mock-server running on loopback, driven over its
// standard input (testdata/oidcmock/provider.mjs).
type mockProvider struct {
	issuer string
	in     *json.Encoder
	out    *bufio.Scanner
}

// startMockProvider starts the provider, or skips the test when Node.js or
// the package is missing; with CI=true that is a failure.
func startMockProvider(t *testing.T) *mockProvider {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (skipped; with CI=true a failure)", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("the OpenID provider tests need Node.js (node): %v", err)
	}
	if _, err := os.Stat(filepath.Join(mockProviderDir, "node_modules", "oauth2-mock-server", "package.json")); err != nil {
		missing("oauth2-mock-server is not installed: run (cd internal/auth/%s && npm ci), as scripts/test.sh does: %v", mockProviderDir, err)
	}
	cmd := exec.Command(node, "provider.mjs")
	cmd.Dir = mockProviderDir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the provider stops when its input closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	p := &mockProvider{in: json.NewEncoder(stdin), out: bufio.NewScanner(stdout)}
	p.out.Buffer(make([]byte, 64<<10), 64<<10)
	var hello struct {
		Issuer string `json:"issuer"`
	}
	p.read(t, &hello)
	p.issuer = hello.Issuer
	return p
}

func (p *mockProvider) read(t *testing.T, v any) {
	t.Helper()
	if !p.out.Scan() {
		t.Fatalf("the OpenID provider stopped: %v", p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), v); err != nil {
		t.Fatalf("provider said %q: %v", p.out.Text(), err)
	}
}

// token has the provider issue a token with claims (nil removes one).
func (p *mockProvider) token(t *testing.T, claims map[string]any, expiresIn int, kid string) string {
	t.Helper()
	if err := p.in.Encode(map[string]any{"claims": claims, "expires_in": expiresIn, "kid": kid}); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Token string `json:"token"`
	}
	p.read(t, &r)
	return r.Token
}

func (p *mockProvider) generate(t *testing.T, kid string) {
	t.Helper()
	if err := p.in.Encode(map[string]any{"generate": kid}); err != nil {
		t.Fatal(err)
	}
	var r struct{ Kid string }
	p.read(t, &r)
}

// Sign-in against a real OpenID provider: discovery and JWKS from it, its
// ID tokens and Cognito-shaped access tokens accepted; its tokens for
// another client, expired, or of a key it never published refused; a key
// it rotates in is picked up.
func TestOIDCAgainstMockProvider(t *testing.T) {
	p := startMockProvider(t)
	clk := &clock{t: time.Now()}
	s := newService(t, storetest.SQLite(t), clk, func(c *auth.Config) {
		c.OIDC.Issuers = []string{"name=mock issuer=" + p.issuer + " audience=" + clientID + " token_use=id|access groups_claim=cognito:groups roles=admins:admin"}
	})
	login := func(token string) (auth.TokenPair, error) {
		return s.OIDCLogin(ctx, auth.OIDCRequest{Token: token}, meta)
	}
	first, err := login(p.token(t, map[string]any{"sub": "alice", "aud": clientID, "token_use": "id", "cognito:groups": []string{"admins"}}, 3600, "k1"))
	if err != nil || !first.Created {
		t.Fatalf("ID token of the provider: %+v, %v", first, err)
	}
	if pr, err := s.Authenticate(first.AccessToken); err != nil || len(pr.Roles) != 2 || pr.Roles[1] != auth.RoleAdmin {
		t.Fatalf("roles from the provider's groups: %+v, %v", pr, err)
	}
	access := p.token(t, map[string]any{"sub": "alice", "client_id": clientID, "token_use": "access", "aud": nil}, 3600, "k1")
	if again, err := login(access); err != nil || again.AccountID != first.AccountID {
		t.Fatalf("access token of the provider: %+v, %v", again, err)
	}
	for _, tc := range []struct {
		name  string
		token string
		code  errcode.Code
	}{
		{"another client", p.token(t, map[string]any{"sub": "alice", "aud": "other", "token_use": "id"}, 3600, "k1"), errcode.IdentityAudience},
		{"another client's access token", p.token(t, map[string]any{"sub": "alice", "client_id": "other", "token_use": "access", "aud": nil}, 3600, "k1"), errcode.IdentityAudience},
		{"expired", p.token(t, map[string]any{"sub": "alice", "aud": clientID, "token_use": "id"}, -600, "k1"), errcode.IdentityExpired},
		{"another issuer", p.token(t, map[string]any{"sub": "alice", "aud": clientID, "token_use": "id", "iss": "https://other.example"}, 3600, "k1"), errcode.IdentityIssuer},
		{"no token_use", p.token(t, map[string]any{"sub": "alice", "aud": clientID}, 3600, "k1"), errcode.IdentityTokenUse},
	} {
		_, err := s.OIDCLogin(ctx, auth.OIDCRequest{Token: tc.token}, auth.Meta{IP: "198.51.100.77"})
		if !errcode.Is(err, tc.code) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	// The provider rotates in a key: once the refetch interval has passed,
	// its tokens verify.
	p.generate(t, "k2")
	clk.Advance(auth.DefaultOIDCConfig().RefetchMinimum)
	if _, err := login(p.token(t, map[string]any{"sub": "bob", "aud": clientID, "token_use": "id"}, 3600, "k2")); err != nil {
		t.Fatalf("token of a rotated-in key: %v", err)
	}
}
