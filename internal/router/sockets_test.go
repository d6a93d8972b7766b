package router_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/router"
)

// startGateway runs another gateway-only router in c.
func (c *cluster) startGateway(id string) (*router.Router, *gateway) {
	side := newGateway()
	r, err := router.New(router.Config{NodeID: id, Heartbeat: 100 * time.Millisecond}, router.Deps{Conn: c.conn(), KV: c.store, Local: side})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	c.t.Cleanup(func() { cancel(); <-done })
	return r, side
}

// A socket opened on one gateway reaches every other gateway (which closes
// its older socket of the account), not the gateway that opened it; a
// malformed message is counted and dropped.
func TestSocketOpenedReachesOtherGateways(t *testing.T) {
	c := startCluster(t, 10)
	gw2, side2 := c.startGateway("gw2")
	// The subscriptions are made when Run starts: announce until one
	// arrives.
	waitFor(t, "gw1's socket at gw2", func() bool {
		c.gw.SocketOpened("acc-1", "gw1/s1", time.Now())
		time.Sleep(10 * time.Millisecond)
		return slices.Contains(side2.replacements(), "acc-1 gw1/s1")
	})
	waitFor(t, "gw2's socket at gw1", func() bool {
		gw2.SocketOpened("acc-2", "gw2/s7", time.Now())
		time.Sleep(10 * time.Millisecond)
		return slices.Contains(c.gwSide.replacements(), "acc-2 gw2/s7")
	})
	for _, r := range c.gwSide.replacements() {
		if r == "acc-1 gw1/s1" {
			t.Fatal("gw1 was told of its own socket")
		}
	}
	for _, r := range side2.replacements() {
		if r == "acc-2 gw2/s7" {
			t.Fatal("gw2 was told of its own socket")
		}
	}
	nc := c.conn()
	before := gw2.BadBatches.Load()
	for _, bad := range []string{`{`, `{"a":"","s":"gw1/x","t":1}`, `{"a":"acc","s":"gw1/x"}`, `[1]`} {
		if err := nc.Publish("mj.rt.sockets", []byte(bad)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the malformed messages counted", func() bool { return gw2.BadBatches.Load() >= before+4 })
}

// The admin API's players online: every gateway answers, the asker's
// included, each with its count and at most the limit asked; a malformed
// question is counted and not answered.
func TestOnlineEverywhere(t *testing.T) {
	c := startCluster(t, 10)
	gw2, side2 := c.startGateway("gw2")
	waitFor(t, "gw1's sockets at gw2", func() bool {
		c.gw.SocketOpened("acc-1", "gw1/s1", time.Now())
		c.gw.SocketOpened("acc-2", "gw1/s2", time.Now())
		time.Sleep(10 * time.Millisecond)
		return len(side2.replacements()) >= 2
	})
	answers, err := gw2.OnlineEverywhere(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]router.Online{}
	for _, a := range answers {
		got[a.Node] = a
	}
	if len(answers) != 2 || got["gw1"].Count != 0 || got["gw2"].Count != len(side2.replacements()) {
		t.Fatalf("answers: %+v, want gw1 with 0 and gw2 with %d", answers, len(side2.replacements()))
	}
	var players []map[string]string
	if err := json.Unmarshal(got["gw2"].Players, &players); err != nil || len(players) != 1 {
		t.Fatalf("gw2's players: %s (%v), want 1 (the limit)", got["gw2"].Players, err)
	}
	if _, err := c.node.OnlineEverywhere(context.Background(), 1); err == nil {
		t.Fatal("a game node without a gateway asked for players online: want an error")
	}
	before := gw2.BadBatches.Load()
	nc := c.conn()
	if err := nc.PublishRequest("mj.rt.online", "_INBOX.x", []byte(`{"limit":-1}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("mj.rt.online", []byte(`{"limit":1}`)); err != nil { // no reply subject
		t.Fatal(err)
	}
	waitFor(t, "the malformed questions counted", func() bool { return gw2.BadBatches.Load() >= before+2 })
}
