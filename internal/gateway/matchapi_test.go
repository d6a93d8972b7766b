package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/match"
)

// unansweredCreate is an engine whose Create never answers, as a game node
// across the router that does not reply: it waits for the caller's
// deadline.
type unansweredCreate struct{ gateway.Engine }

func (unansweredCreate) Create(ctx context.Context, _ string, _ match.Params) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// POST /v1/matches waits at most gateway.control_timeout for the engine,
// then answers 504 with code timeout (not 500 internal).
func TestMatchCreateTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newEnvWith(t, func(d *gateway.Deps) { d.Matches = unansweredCreate{d.Matches} },
		func(g *gateway.Config, _ *auth.Config) { g.ControlTimeout = timeout })
	tok := e.register("slowpoke").AccessToken
	start := time.Now()
	r := e.post("/v1/matches", tok, map[string]any{"mode": "arena"})
	took := time.Since(start)
	if r.status != http.StatusGatewayTimeout || r.errBody(t).Code != "timeout" {
		t.Fatalf("create = %d %s, want 504 timeout", r.status, r.body)
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("answered after %s, want about %s", took, timeout)
	}
}

// unreadSummary is an engine that makes matches but cannot read their
// summary, as a router whose second call to the game node fails (the
// node's subscription not yet known to the gateway's NATS server, a NATS
// reconnect) after the creation went through.
type unreadSummary struct{ gateway.Engine }

func (unreadSummary) Get(string) (match.Info, bool) { return match.Info{}, false }

// A match that was made is answered as made, with its id, over HTTP and
// over the socket, even when its summary cannot be read right after; the
// client can join it. (Before, HTTP answered 404 and the socket an empty
// match_id, and a bot's join of "" failed in TestClusterFaults.)
func TestMatchCreatedSummaryUnread(t *testing.T) {
	e := newEnvWith(t, func(d *gateway.Deps) { d.Matches = unreadSummary{d.Matches} })
	tok := e.register("unread").AccessToken
	r := e.post("/v1/matches", tok, map[string]any{"mode": "arena"})
	var m gateway.MatchResponse
	r.json(t, &m)
	if r.status != http.StatusCreated || m.MatchID == "" || m.Mode != "arena" || !m.Open {
		t.Fatalf("create = %d %s, want 201 with the match id, mode arena, open", r.status, r.body)
	}
	s, _ := e.connect("unread-ws")
	s.sendJSON("match.create", "c", map[string]any{"mode": "arena"})
	id, _ := s.expect("match.created").Payload["match_id"].(string)
	if id == "" || id == m.MatchID {
		t.Fatalf("match.created id = %q, want a new match's id", id)
	}
	s.sendJSON("match.join", "j", map[string]any{"match_id": id})
	if got := s.expect("match.joined").Payload["match_id"]; got != id {
		t.Fatalf("joined %v, want %s", got, id)
	}
}
