package persist_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// startLockedNATS runs the nats-server binary with JetStream and the
// configuration docs/operations.md gives (events.ServerAuthorization),
// plus a "player" user that may only use chat subjects. It returns the
// URL and each user's password.
func startLockedNATS(t *testing.T) (string, map[string]string) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nats-server is required in CI: %v", err)
		}
		t.Skipf("nats-server not installed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pw := map[string]string{"player": "player-pw"}
	for _, r := range events.Roles {
		pw[r] = r + "-pw"
	}
	auth := events.ServerAuthorization("", "", func(role string) string { return fmt.Sprintf("%q", pw[role]) })
	auth = strings.Replace(auth, "  users = [\n", "  users = [\n    { user: \"player\", password: \"player-pw\", permissions: { publish: [\"chat.>\"], subscribe: [\"chat.>\", \"_INBOX.>\"] } }\n", 1)
	dir := t.TempDir()
	conf := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream { store_dir: %q }\n%s", port, dir, auth)
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return url, pw
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("nats-server not up: %v\nconfig:\n%s\nlog:\n%s", err, conf, out.String())
		}
	}
}

// violated reports whether the server refuses do with a permissions
// violation.
func violated(t *testing.T, url string, opts []nats.Option, do func(nc *nats.Conn) error) bool {
	t.Helper()
	errs := make(chan error, 8)
	opts = append(opts, nats.MaxReconnects(0), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	if err := do(nc); err != nil {
		return strings.Contains(err.Error(), "ermissions") || strings.Contains(err.Error(), "timeout")
	}
	_ = nc.Flush()
	select {
	case err := <-errs:
		return strings.Contains(err.Error(), "Permissions Violation")
	case <-time.After(500 * time.Millisecond):
		return false
	}
}

// An external nats-server configured as docs/operations.md says: the
// roles' permissions are enough to run (a game node publishes, persistence
// consumes and dead-letters, the operator reads dead letters), and an
// anonymous or player-level connection can neither publish nor read
// events nor reach the JetStream API. A forged match.ended published with
// the game node's bus credentials is dead-lettered, not stored.
func TestExternalNATSPermissions(t *testing.T) {
	url, pw := startLockedNATS(t)
	if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous connection accepted")
	}
	player := []nats.Option{nats.UserInfo("player", pw["player"])}
	for what, do := range map[string]func(nc *nats.Conn) error{
		"publish an event": func(nc *nats.Conn) error { return nc.Publish("mj.events.match.ended", []byte(`{}`)) },
		"read events":      func(nc *nats.Conn) error { _, err := nc.SubscribeSync("mj.events.>"); return err },
		"read dead letters": func(nc *nats.Conn) error {
			_, err := nc.SubscribeSync("mj.dlq.>")
			return err
		},
		"reach $JS.API": func(nc *nats.Conn) error { _, err := nc.Request("$JS.API.INFO", nil, time.Second); return err },
	} {
		if !violated(t, url, player, do) {
			t.Errorf("player-level connection may %s", what)
		}
	}

	key, err := events.NewSigner([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	open := func(role string) *events.Bus {
		b, err := events.Open(context.Background(), events.Config{URL: url, Roles: []string{role}, Signer: key,
			Auth: events.Auth{User: role, Password: pw[role]}}, testLog(t))
		if err != nil {
			t.Fatalf("open as %s: %v", role, err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	game := open(events.RoleGame)
	st := storetest.SQLite(t)
	c := persist.New(open(events.RolePersistence), st, fastConfig(), testLog(t))
	start(t, c)
	pub := events.NewPublisher(game, events.PublisherConfig{}, testLog(t))
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	id := matchID()
	publish(t, pub, startedEv(t, id), endedEv(t, id))
	waitFor(t, 10*time.Second, "the match in the store", ended(st, id, 2))

	forged := endedEv(t, matchID(), events.PlayerResult{AccountID: "mallory", Placement: 1, Score: 999999})
	publishRaw(t, game, events.TypeMatchEnded, forged.ID, encode(t, forged))
	waitFor(t, 10*time.Second, "the forgery dead-lettered", func() bool { return c.DeadLettered.Load() == 1 })
	if _, err := st.Match(ctx, forged.MatchID); err == nil {
		t.Fatal("forged match stored")
	} else if !strings.Contains(err.Error(), store.ErrNotFound.Error()) {
		t.Fatal(err)
	}
	list, err := persist.NewDLQ(open(events.RoleOperator)).List(ctx, 10)
	if err != nil || len(list) != 1 || list[0].MatchID != forged.MatchID || !strings.Contains(list[0].Error, "unsigned") {
		t.Fatalf("operator's dead letter list: %+v, %v", list, err)
	}
	// The gateway's admin API: replay (refused again by persistence), purge.
	gw := persist.NewDLQ(open(events.RoleGateway))
	if err := gw.Replay(ctx, list[0].Seq); err != nil {
		t.Fatalf("gateway replay: %v", err)
	}
	waitFor(t, 10*time.Second, "the replayed forgery refused again", func() bool { return c.DeadLettered.Load() == 2 })
	if n, err := gw.Purge(ctx); err != nil || n != 1 {
		t.Fatalf("gateway purge: %d, %v", n, err)
	}
	// The game node's credentials read no events and reach no other API.
	gameOpts := []nats.Option{nats.UserInfo(events.RoleGame, pw[events.RoleGame])}
	if !violated(t, url, gameOpts, func(nc *nats.Conn) error { _, err := nc.SubscribeSync("mj.events.>"); return err }) {
		t.Error("a game node may read events")
	}
	if !violated(t, url, gameOpts, func(nc *nats.Conn) error { return nc.Publish("$JS.API.STREAM.DELETE.MJ_EVENTS", nil) }) {
		t.Error("a game node may delete the events stream")
	}
}
