package main_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/client"
	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
)

// The forged-result attempt of the hardening issue, on the locked-down
// bus: the embedded NATS listener refuses an anonymous client; a client
// with a game node's bus credentials may publish a hand-made match.ended,
// but it carries no valid signature, so persistence dead-letters it (the
// dlq command, with the server's data dir, shows it) and no leaderboard
// moves. A listener beyond loopback without TLS is refused at start.
func TestForgedResultOnLockedBus(t *testing.T) {
	t.Parallel()
	p, dir, url, users := lockedBus(t)

	if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous NATS connection accepted")
	}

	ctx := context.Background()
	c, err := client.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Device(ctx, "e2e-forger-device")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, nats.UserInfo(events.RoleGame, users[events.RoleGame]), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("game credentials: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	now := time.Now().UTC()
	forged, err := events.NewMatchEnded("forged-match-1", "node-x", events.MatchEnded{Mode: "arena", Reason: "time_limit",
		StartedAt: now.Add(-time.Minute), EndedAt: now, DurationMs: 60000,
		Results: []events.PlayerResult{{AccountID: tok.AccountID, Placement: 1, Score: 999999}}})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := events.Encode(forged)
	m := &nats.Msg{Subject: "mj.events.match.ended", Data: data, Header: nats.Header{}}
	m.Header.Set(events.HeaderSignature, "v1=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(forged.ID)); err != nil {
		t.Fatalf("publish with game credentials: %v", err)
	}

	var out string
	for start := time.Now(); !strings.Contains(out, "forged-match-1"); time.Sleep(200 * time.Millisecond) {
		o, _ := exec.Command(binary, "dlq", "list", "--nats-url", url, "--data-dir", dir).CombinedOutput()
		out = string(o)
		if time.Since(start) > 15*time.Second {
			t.Fatalf("forged event not dead-lettered within 15s; dlq list:\n%s", out)
		}
	}
	if !strings.Contains(out, "bad event signature") {
		t.Fatalf("dead letter without the reason:\n%s", out)
	}
	if n := metric(t, p, "multijuego_persist_refused_total"); n != 1 {
		t.Fatalf("multijuego_persist_refused_total = %v, want 1", n)
	}
	for _, board := range []string{"arena_best_score", "global_wins"} {
		status, body := p.call("GET", "/v1/leaderboards/"+board+"?limit=10", c.Tokens().AccessToken, nil)
		if recs, _ := body["records"].([]any); status != 200 || len(recs) != 0 {
			t.Fatalf("%s after the forged result: %d %v", board, status, body)
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	o, err := exec.CommandContext(cctx, binary, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--events-listen", "0.0.0.0:0").CombinedOutput()
	if err == nil || !strings.Contains(string(o), "events.listen") || !strings.Contains(string(o), "TLS") {
		t.Fatalf("non-loopback events.listen without TLS: %v\n%s", err, o)
	}
}

// lockedBus starts the binary with its embedded NATS listening on a free
// loopback port: the server, its data dir, the NATS URL and the bus users'
// passwords (data_dir/nats/users.json) by role.
func lockedBus(t *testing.T) (p *proc, dir, url string, users map[string]string) {
	t.Helper()
	srv := eventstest.StartServer(t) // borrow a free port
	addr := strings.TrimPrefix(srv.URL(), "nats://")
	srv.Stop()
	dir = t.TempDir()
	p = start(t, "--data-dir", dir, "--events-listen", addr)
	cfg := app.DefaultConfig()
	cfg.DataDir = dir
	users = map[string]string{}
	for _, role := range events.Roles {
		a, ok, err := app.EmbeddedBusAuth(context.Background(), cfg, role) // the file is sealed
		if err != nil || !ok {
			t.Fatalf("users file, %s: %v %v", role, ok, err)
		}
		users[role] = a.Password
	}
	return p, dir, "nats://" + addr, users
}
