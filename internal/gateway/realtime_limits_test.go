package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
)

// A socket sending control messages past gateway.control_rate gets error
// rate_limited (with the cid) for each refused one, and after
// gateway.control_burst refusals it is closed with 4005.
func TestControlFlood(t *testing.T) {
	e := newEnv(t, func(g *gateway.Config, _ *auth.Config) { g.ControlRate, g.ControlBurst = 0.5, 3 })
	s, _ := e.connect("flooder")
	bystander, _ := e.connect("bystander")
	start := time.Now()
	// Exactly enough to be closed: writes after the close could fail.
	for i := range 6 {
		s.sendJSON("echo", "e"+string(rune('0'+i)), map[string]any{})
	}
	for range 3 {
		s.expect("echo") // the burst
	}
	for i := range 2 {
		env := s.expect("error")
		if env.Payload["code"] != "rate_limited" || env.CID != "e"+string(rune('3'+i)) || !strings.Contains(env.Payload["message"].(string), "gateway.control_rate") {
			t.Fatalf("refusal %d: %+v", i, env)
		}
	}
	wantClosedWithin(t, s, gateway.CloseRateLimited, start, 5*time.Second)
	// The limit is per socket.
	bystander.sendJSON("echo", "b", map[string]any{})
	if env := bystander.expect("echo"); env.CID != "b" {
		t.Fatalf("bystander echo: %+v", env)
	}
}

// Undecodable text messages spend the bucket as well.
func TestControlFloodGarbage(t *testing.T) {
	e := newEnv(t, func(g *gateway.Config, _ *auth.Config) { g.ControlRate, g.ControlBurst = 0.5, 2 })
	s, _ := e.connect("garbage")
	start := time.Now()
	for range 4 { // 2 in the burst, 1 refused, 1 more closes
		s.sendText([]byte("not json"))
	}
	for _, want := range []string{"invalid_argument", "invalid_argument", "rate_limited"} {
		if env := s.expect("error"); env.Payload["code"] != want {
			t.Fatalf("got %v, want %s", env.Payload, want)
		}
	}
	wantClosedWithin(t, s, gateway.CloseRateLimited, start, 5*time.Second)
}

// gateway.max_sockets_per_ip: past it an upgrade from the address gets 429
// with Retry-After, before its ticket is spent; a closed socket frees its
// place.
func TestSocketsPerIP(t *testing.T) {
	e := newEnv(t, func(g *gateway.Config, _ *auth.Config) { g.MaxSocketsPerIP = 2 })
	first, _ := e.connect("one")
	e.connect("two")
	tr := e.register("three")
	tk := e.ticket(tr.AccessToken)
	r := e.do("GET", "/v1/realtime?ticket="+tk, "", "", nil, "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("third socket from one address = %d %s", r.status, r.body)
	}
	if b := r.errBody(t); b.Code != "rate_limited" || !strings.Contains(b.Message, "gateway.max_sockets_per_ip") {
		t.Fatalf("refusal = %+v", b)
	}
	_ = first.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The refused upgrade did not spend the ticket.
		s, status, err := e.dialWS("?ticket="+tk, nil)
		if err == nil {
			s.expect("session.started")
			return
		}
		if status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("dial after a socket closed: %d %v", status, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gateway.max_sockets: past it an upgrade gets 503; a refused or failed
// upgrade (a bad token) takes no place.
func TestSocketsTotal(t *testing.T) {
	e := newEnv(t, func(g *gateway.Config, _ *auth.Config) { g.MaxSockets = 1 })
	if _, status, _ := e.dialWS("?ticket=mjt_nope", nil); status != http.StatusUnauthorized {
		t.Fatalf("bad ticket = %d, want 401", status)
	}
	e.connect("only")
	tr := e.register("late")
	_, status, _ := e.dialWS("?ticket="+e.ticket(tr.AccessToken), nil)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("second socket = %d, want 503", status)
	}
}

func (s *sock) sendText(b []byte) {
	s.t.Helper()
	if err := wsutil.WriteClientText(s, b); err != nil {
		s.t.Fatal(err)
	}
}
