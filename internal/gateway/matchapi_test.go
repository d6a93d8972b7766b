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
