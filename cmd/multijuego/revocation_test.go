package main_test

import (
	"context"
	"testing"
	"time"

	"github.com/multijuego/multijuego/client"
	"github.com/multijuego/multijuego/internal/events/eventstest"
)

// TestSplitRevocationClosesSockets: players hold sockets on gateway A; one
// logs out and another changes its password through gateway B (served by
// the auth process). Each socket on A closes with 4002 within a second,
// through the shared deny list (synced every auth.revocation_sync, 500 ms);
// a third player's socket on A stays open.
func TestSplitRevocationClosesSockets(t *testing.T) {
	t.Parallel()
	d := startDeployment(t, eventstest.StartServer(t).URL(), 1, 2)
	ctx := context.Background()
	a, b := d.gws[0], d.gws[1]
	open := func(name string) (client.Tokens, *client.Realtime) {
		t.Helper()
		c, err := client.New(a.url)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.Register(ctx, name, "", name+" password")
		if err != nil {
			t.Fatal(err)
		}
		rt, err := c.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close() })
		return tok, rt
	}
	_, bystander := open("stays")
	for _, c := range []struct {
		name string
		end  func(tok client.Tokens) (int, map[string]any)
	}{
		{"logout", func(tok client.Tokens) (int, map[string]any) {
			return b.call("POST", "/v1/auth/logout", tok.AccessToken, nil)
		}},
		{"password", func(tok client.Tokens) (int, map[string]any) {
			return b.call("POST", "/v1/account/password", tok.AccessToken,
				map[string]string{"current_password": "password password", "new_password": "another password"})
		}},
	} {
		tok, rt := open(c.name)
		start := time.Now()
		if code, body := c.end(tok); code >= 300 {
			t.Fatalf("%s through gateway B: %d %v", c.name, code, body)
		}
		select {
		case <-rt.Done():
		case <-time.After(time.Second):
			t.Fatalf("%s through gateway B: the socket on A still open after 1s\n%s", c.name, a.log())
		}
		if rt.CloseCode() != client.CloseRevoked {
			t.Fatalf("%s: socket on A ended with %v, want close %d", c.name, rt.Err(), client.CloseRevoked)
		}
		t.Logf("%s through gateway B: the socket on A closed after %s", c.name, time.Since(start))
	}
	if _, err := bystander.ListMatches(ctx, "", ""); err != nil {
		t.Fatalf("the other player's socket: %v", err)
	}
}
