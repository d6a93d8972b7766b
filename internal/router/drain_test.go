package router_test

import (
	"context"
	"testing"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/match"
)

// TestDrainingNodeTakesNoNewMatch: a gateway whose directory was read
// before a node started draining still places matches on it; the node
// refuses them and the gateway places them on another node, so none stays
// behind on the draining node (to end with it when it stops).
func TestDrainingNodeTakesNoNewMatch(t *testing.T) {
	c := startCluster(t, 10)
	second := c.startNode("node2", 10)
	ctx := context.Background()
	if _, err := c.gw.Create(ctx, tictactoe.Mode, nil); err != nil { // the gateway reads the directory
		t.Fatal(err)
	}
	if err := c.gw.DrainNode(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node1 to hand its matches over", func() bool { return len(c.engine.List(match.Filter{})) == 0 })
	var ids []string
	for range 4 { // within a second: the gateway's directory still shows node1 taking matches
		id, err := c.gw.Create(ctx, tictactoe.Mode, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, ok := second.engine.Get(id); !ok {
			t.Errorf("match %s is not on node2", id)
		}
	}
	if n := len(c.engine.List(match.Filter{})); n != 0 {
		t.Fatalf("the draining node took %d new matches", n)
	}
}
