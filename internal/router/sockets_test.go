package router_test

import (
	"context"
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
