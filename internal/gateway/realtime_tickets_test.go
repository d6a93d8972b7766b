package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/redistest"
)

// Socket tickets live in the shared key-value store. With it down, minting
// and using one answer 503 with Retry-After (never a bare 500), a socket
// opened with the access token itself, which needs no store, still
// connects, and match.resume answers unavailable.
func TestTicketsStoreDown(t *testing.T) {
	srv := redistest.Start(t)
	// No dial retries: a refused connection is answered at once, not at
	// the control deadline (which answers timeout, as a stalled Redis
	// does: TestRealtimeResumeRedisStall).
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	store, err := kv.NewRedis(kv.RedisOptions{Client: client, Prefix: redistest.Prefix(t), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(d *gateway.Deps) { d.Tickets = store })
	tr := e.register("ticketholder")
	minted := e.ticket(tr.AccessToken)

	srv.Stop()
	r := e.do("POST", "/v1/realtime/tickets", tr.AccessToken, "", nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.errBody(t).Code != "unavailable" {
		t.Fatalf("ticket with the store down: %d Retry-After %q %s; want 503 unavailable with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	// The upgrade with a ticket minted before the outage.
	r = e.do("GET", "/v1/realtime?ticket="+minted, "", "", nil,
		"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("upgrade with a ticket, store down: %d Retry-After %q %s; want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	x, status, err := e.dialWS("", http.Header{"Authorization": {"Bearer " + tr.AccessToken}})
	if status != 101 {
		t.Fatalf("upgrade with the access token, store down: %d %v; want 101", status, err)
	}
	x.expect("session.started")
	// Resume tokens live in the store too: unavailable, not internal.
	x.sendJSON("match.resume", "r", map[string]any{"resume_token": "mjs_unknown"})
	expectError(t, x, "unavailable", "r")
}
