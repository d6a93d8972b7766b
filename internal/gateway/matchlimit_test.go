package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// cappedEngine is a match engine running at most maxMatches matches, as a
// game node started with --game-max-matches.
func cappedEngine(t *testing.T, maxMatches int) *match.Engine {
	t.Helper()
	eng, err := match.NewEngine(match.Config{Sender: matchtest.Discard{}, MaxMatches: maxMatches})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Shutdown(context.Background()) })
	if err := eng.Register(arena.Mode, arena.New); err != nil {
		t.Fatal(err)
	}
	return eng
}

// Hardening issue, finding 1: with --game-max-matches 300, 310 creations
// by one player left another player's POST /v1/matches with 503. Here the
// node runs 10: one account's creations past game.max_matches_per_account
// are refused with 429 rate_limited (Retry-After, the setting named), and
// another player still creates a match.
func TestOnePlayerCannotFillANode(t *testing.T) {
	eng := cappedEngine(t, 10)
	e := newEnvWith(t, func(d *gateway.Deps) {
		d.Matches = eng
		d.MatchLimits = gateway.MatchLimits{PerAccount: 3, PerIP: 20}
	})
	flooder := e.register("flooder").AccessToken
	created := 0
	for i := range 11 {
		r := e.post("/v1/matches", flooder, map[string]any{"mode": arena.Mode})
		switch {
		case r.status == http.StatusCreated:
			created++
		case r.status == http.StatusTooManyRequests:
			b := r.errBody(t)
			if b.Code != "rate_limited" || !strings.Contains(b.Message, "game.max_matches_per_account") || r.header.Get("Retry-After") == "" {
				t.Fatalf("create %d refused with %s %s, Retry-After %q", i, b.Code, b.Message, r.header.Get("Retry-After"))
			}
		default:
			t.Fatalf("create %d = %d %s", i, r.status, r.body)
		}
	}
	if created != 3 {
		t.Fatalf("one account created %d matches, want 3 (game.max_matches_per_account)", created)
	}
	other := e.register("other").AccessToken
	if r := e.post("/v1/matches", other, map[string]any{"mode": arena.Mode}); r.status != http.StatusCreated {
		t.Fatalf("another player's create = %d %s, want 201", r.status, r.body)
	}
}

// twoGateways are two gateway processes on one key-value store, in front
// of one engine (as the router shows every game node to every gateway),
// with one auth service and one address key.
func twoGateways(t *testing.T, lim gateway.MatchLimits, maxMatches int) (a, b *env, eng *match.Engine) {
	eng = cappedEngine(t, maxMatches)
	shared := newKV(t)
	key := []byte("one deployment's address key....")
	a = newEnvWith(t, func(d *gateway.Deps) { d.Matches, d.Tickets, d.MatchLimits, d.AddressKey = eng, shared, lim, key })
	b = newEnvWith(t, func(d *gateway.Deps) {
		d.Matches, d.Tickets, d.MatchLimits, d.AddressKey = eng, shared, lim, key
		d.Auth, d.Identity = a.auth, a.auth
	})
	return a, b, eng
}

// The per-account cap holds across gateways: creations alternate between
// two; a match that ends frees its place (whichever gateway created it).
func TestMatchLimitAcrossGateways(t *testing.T) {
	a, b, eng := twoGateways(t, gateway.MatchLimits{PerAccount: 2}, 100)
	tok := a.register("roamer").AccessToken
	var ids []string
	for i, g := range []*env{a, b, a, b} {
		r := g.post("/v1/matches", tok, map[string]any{"mode": arena.Mode})
		if i < 2 {
			var m gateway.MatchResponse
			r.json(t, &m)
			if r.status != http.StatusCreated {
				t.Fatalf("create %d = %d %s", i, r.status, r.body)
			}
			ids = append(ids, m.MatchID)
			continue
		}
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("create %d on gateway %d = %d %s, want 429", i, i%2, r.status, r.body)
		}
	}
	if err := eng.End(context.Background(), ids[0], "test"); err != nil {
		t.Fatal(err)
	}
	if r := b.post("/v1/matches", tok, map[string]any{"mode": arena.Mode}); r.status != http.StatusCreated {
		t.Fatalf("create after a match ended = %d %s, want 201", r.status, r.body)
	}
	if r := a.post("/v1/matches", tok, map[string]any{"mode": arena.Mode}); r.status != http.StatusTooManyRequests {
		t.Fatalf("create past the cap again = %d %s, want 429", r.status, r.body)
	}
}

// The per-IP cap counts every account of one address, on every gateway.
func TestMatchLimitPerIP(t *testing.T) {
	a, b, _ := twoGateways(t, gateway.MatchLimits{PerAccount: 3, PerIP: 4}, 100)
	refused := 0
	for i := range 6 {
		g := []*env{a, b}[i%2]
		tok := a.register(fmt.Sprintf("guest%d", i)).AccessToken
		r := g.post("/v1/matches", tok, map[string]any{"mode": arena.Mode})
		switch r.status {
		case http.StatusCreated:
		case http.StatusTooManyRequests:
			if m := r.errBody(t).Message; !strings.Contains(m, "game.max_matches_per_ip") {
				t.Fatalf("refusal does not name the setting: %s", m)
			}
			refused++
		default:
			t.Fatalf("create %d = %d %s", i, r.status, r.body)
		}
	}
	if refused != 2 {
		t.Fatalf("%d of 6 creations from one address refused, want 2 (game.max_matches_per_ip 4)", refused)
	}
}

// Over a socket, match.create past the cap is answered with error
// rate_limited (with the cid); a failed creation takes no place.
func TestMatchLimitRealtime(t *testing.T) {
	e := newEnvWith(t, func(d *gateway.Deps) { d.MatchLimits = gateway.MatchLimits{PerAccount: 1} })
	s, _ := e.connect("sock")
	s.sendJSON("match.create", "bad", map[string]any{"mode": "no-such-mode"})
	if env := s.expect("error"); env.Payload["code"] != "invalid_argument" {
		t.Fatalf("unknown mode: %v", env.Payload)
	}
	s.sendJSON("match.create", "c1", map[string]any{"mode": arena.Mode})
	s.expect("match.created")
	s.sendJSON("match.create", "c2", map[string]any{"mode": arena.Mode})
	env := s.expect("error")
	if env.CID != "c2" || env.Payload["code"] != "rate_limited" || !strings.Contains(env.Payload["message"].(string), "game.max_matches_per_account") {
		t.Fatalf("second create: %+v", env)
	}
}

// On a developer's own server (Deps.LoopbackExempt) loopback clients are
// not held to the per-IP caps; the per-account cap stays.
func TestLoopbackExempt(t *testing.T) {
	e := newEnvWith(t, func(d *gateway.Deps) {
		d.MatchLimits, d.LoopbackExempt = gateway.MatchLimits{PerAccount: 1, PerIP: 1}, true
	}, func(g *gateway.Config, _ *auth.Config) { g.MaxSocketsPerIP = 1 })
	for i := range 3 {
		s, _ := e.connect(fmt.Sprintf("dev%d", i))
		s.sendJSON("match.create", "c", map[string]any{"mode": arena.Mode})
		s.expect("match.created")
		if i == 0 {
			s.sendJSON("match.create", "again", map[string]any{"mode": arena.Mode})
			if env := s.expect("error"); env.Payload["code"] != "rate_limited" {
				t.Fatalf("second match of one account: %+v", env)
			}
		}
	}
}
