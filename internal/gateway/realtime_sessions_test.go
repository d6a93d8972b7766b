package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
)

// open registers name and opens its socket with a ticket.
func (e *env) open(name string) (*sock, gateway.TokenResponse) {
	e.t.Helper()
	tr := e.register(name)
	return e.openWith(tr), tr
}

// openWith opens a socket with tr's access token (through a ticket).
func (e *env) openWith(tr gateway.TokenResponse) *sock {
	e.t.Helper()
	s, status, err := e.dialWS("?ticket="+e.ticket(tr.AccessToken), nil)
	if err != nil {
		e.t.Fatalf("dial: %d %v", status, err)
	}
	s.expect("session.started")
	return s
}

// wantClosedWithin reads s until its close frame, which must carry code and
// come within d of start.
func wantClosedWithin(t *testing.T, s *sock, code int, start time.Time, d time.Duration) time.Duration {
	t.Helper()
	err := s.closeCode()
	took := time.Since(start)
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || int(ce.Code) != code {
		t.Fatalf("socket ended with %v after %s, want close %d", err, took, code)
	}
	if took > d {
		t.Fatalf("close %d came after %s, want within %s", code, took, d)
	}
	return took
}

// Every way a session ends closes its open socket, with the documented
// code, within a second; another account's socket stays open.
func TestSocketEndsWithItsSession(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken("boss")
	bystander, _ := e.open("bystander")
	ctx := context.Background()
	for _, c := range []struct {
		name string
		end  func(tr gateway.TokenResponse) resp
		code int
	}{
		{"logout", func(tr gateway.TokenResponse) resp {
			return e.do("POST", "/v1/auth/logout", tr.AccessToken, "", nil)
		}, gateway.CloseRevoked},
		{"password", func(tr gateway.TokenResponse) resp {
			return e.post("/v1/account/password", tr.AccessToken, map[string]string{"current_password": "password-password", "new_password": "another-password"})
		}, gateway.CloseRevoked},
		{"demoted", func(tr gateway.TokenResponse) resp {
			// The socket's token was issued with the admin role.
			return e.do("PUT", "/v1/admin/accounts/"+tr.AccountID+"/roles", admin, "application/json", []byte(`{"roles":["player"]}`))
		}, gateway.CloseRevoked},
		{"banned", func(tr gateway.TokenResponse) resp {
			return e.post("/v1/admin/accounts/"+tr.AccountID+"/ban", admin, map[string]string{"reason": "cheating"})
		}, gateway.CloseKicked},
		{"kicked", func(tr gateway.TokenResponse) resp {
			return e.post("/v1/admin/players/"+tr.AccountID+"/kick", admin, map[string]string{"reason": "spam"})
		}, gateway.CloseKicked},
		{"deleted", func(tr gateway.TokenResponse) resp {
			return e.do("DELETE", "/v1/account", tr.AccessToken, "application/json", []byte(`{"current_password":"deleted-password"}`))
		}, gateway.CloseRevoked},
		{"deleted-by-admin", func(tr gateway.TokenResponse) resp {
			return e.do("DELETE", "/v1/admin/accounts/"+tr.AccountID, admin, "", nil)
		}, gateway.CloseRevoked},
	} {
		tr := e.register(c.name)
		if c.name == "demoted" {
			if _, err := e.auth.SetRoles(ctx, nil, tr.AccountID, []string{auth.RolePlayer, auth.RoleAdmin}, auth.Meta{}); err != nil {
				t.Fatal(err)
			}
			e.post("/v1/auth/refresh", "", map[string]string{"refresh_token": tr.RefreshToken}).json(t, &tr)
		}
		s := e.openWith(tr)
		start := time.Now()
		if r := c.end(tr); r.status >= 300 {
			t.Fatalf("%s: %d %s", c.name, r.status, r.body)
		}
		took := wantClosedWithin(t, s, c.code, start, time.Second)
		t.Logf("%s: closed %d after %s", c.name, c.code, took)
	}
	bystander.sendJSON("echo", "e1", map[string]int{"still": 1})
	if got := bystander.expect("echo"); got.CID != "e1" {
		t.Fatalf("bystander's echo = %+v", got)
	}
}

// A socket closes with 4004 when its access token expires; the client
// refreshes, reconnects and resumes its seat within the disconnect grace.
func TestSocketEndsWhenItsTokenExpires(t *testing.T) {
	e := newEnv(t, func(_ *gateway.Config, a *auth.Config) { a.AccessTTL = 2 * time.Second })
	s, tr := e.open("ephemeral")
	p, err := e.auth.Authenticate(tr.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	s.sendJSON("match.create", "c1", map[string]any{"mode": "tictactoe"})
	id, _ := s.expect("match.created").Payload["match_id"].(string)
	s.sendJSON("match.join", "j1", map[string]any{"match_id": id})
	resume, _ := s.expect("match.joined").Payload["resume_token"].(string)

	wantClosedWithin(t, s, gateway.CloseTokenExpired, time.Now(), 3*time.Second)
	if late := time.Since(p.ExpiresAt); late < 0 || late > time.Second {
		t.Fatalf("closed %s after the token's expiry, want within 0 to 1s", late)
	}
	var fresh gateway.TokenResponse
	if r := e.post("/v1/auth/refresh", "", map[string]string{"refresh_token": tr.RefreshToken}); r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	} else {
		r.json(t, &fresh)
	}
	s2 := e.openWith(fresh)
	s2.sendJSON("match.resume", "r1", map[string]string{"resume_token": resume})
	if got := s2.expect("match.joined"); got.Payload["match_id"] != id {
		b, _ := json.Marshal(got)
		t.Fatalf("resume after expiry: %s", b)
	}
}
