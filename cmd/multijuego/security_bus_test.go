package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events"
)

// Finding 2, the permissions part (TestForgedResultOnLockedBus makes the
// forgery): on the embedded NATS listener, a player's credentials (an
// access token, as a NATS token or password) and a wrong password are
// refused; and of the roles that may connect, none may subscribe to the
// match events' subjects, only the game role (and replaying operators)
// may publish them, and neither the game nor the gateway role may read
// the events stream through a JetStream consumer.
func TestSecurityBusLeastPrivilege(t *testing.T) {
	t.Parallel()
	p, _, url, users := lockedBus(t)
	token, _ := guestFrom(t, p, "127.0.0.1", "sec-bus-player-device")
	for name, opt := range map[string]nats.Option{
		"a player's access token":               nats.Token(token),
		"a player's access token as password":   nats.UserInfo("player", token),
		"the game user with a guessed password": nats.UserInfo(events.RoleGame, "password"),
	} {
		if nc, err := nats.Connect(url, opt, nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Errorf("NATS connection with %s accepted", name)
		}
	}

	connect := func(role string) (*nats.Conn, <-chan error) {
		t.Helper()
		errs := make(chan error, 16)
		nc, err := nats.Connect(url, nats.UserInfo(role, users[role]), nats.MaxReconnects(0),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				select {
				case errs <- err:
				default:
				}
			}))
		if err != nil {
			t.Fatalf("%s credentials: %v", role, err)
		}
		t.Cleanup(nc.Close)
		return nc, errs
	}
	violation := func(what string, errs <-chan error) {
		t.Helper()
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Errorf("%s: %v, want a permissions violation", what, err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s: no permissions violation within 2s", what)
		}
	}
	const subject = "mj.events.>"
	for _, role := range []string{events.RoleGateway, events.RoleGame, events.RolePersistence} {
		nc, errs := connect(role)
		if _, err := nc.SubscribeSync(subject); err == nil {
			_ = nc.Flush()
			violation(role+" subscribing to "+subject, errs)
		}
	}
	nc, errs := connect(events.RolePersistence)
	if err := nc.Publish("mj.events.match.ended", []byte(`{"forged":true}`)); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	violation("persistence publishing mj.events.match.ended", errs)

	for _, role := range []string{events.RoleGame, events.RoleGateway} {
		nc, errs := connect(role)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = js.CreateConsumer(ctx, "MJ_EVENTS", jetstream.ConsumerConfig{})
		cancel()
		if err == nil {
			t.Errorf("the %s role made a consumer of the events stream", role)
		}
		violation(role+" creating a consumer of the events stream", errs)
	}
}
