package router

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/gamenode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/match"
)

// TestTakeOverEndedMatch: a dead node's match whose last snapshot is final
// ended there, but its end may not have reached the queue before the node
// died: the survivor publishes the end again (same event id, so a repeat
// is dropped downstream) instead of leaving the match "started". A match
// whose lease another node still holds is left alone.
func TestTakeOverEndedMatch(t *testing.T) {
	ctx := context.Background()
	store := kv.NewMemory(kv.MemoryOptions{})
	type ended struct {
		snap   match.Snapshot
		reason string
	}
	var got []ended
	r := &Router{reg: registry{kv: store}, log: slog.New(slog.DiscardHandler),
		onLost: func(s match.Snapshot, reason string) { got = append(got, ended{s, reason}) }}
	node := gamenode.New(gamenode.Config{NodeID: "dead", Heartbeat: time.Hour}, store, noMatches{}, nil)
	nctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- node.Run(nctx) }()
	defer func() { stop(); <-done }()

	created := time.Now().Add(-time.Minute).UTC()
	snap := match.Snapshot{MatchID: "m1", Mode: "tictactoe", Created: created, Tick: 40, Data: []byte(`{}`)}
	if err := node.Claim(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if !r.takeOver(ctx, listedMatch{ID: "m1", Mode: "tictactoe", Created: created}, "other") {
		t.Fatal("a match whose lease another node holds needs no work from this one")
	}
	if r.takeOver(ctx, listedMatch{ID: "m1", Mode: "tictactoe", Created: created}, "dead") {
		t.Fatal("a match whose dead node's lease has not lapsed was taken over")
	}
	if len(got) != 0 {
		t.Fatalf("ended while its lease is held: %+v", got)
	}
	snap.Final, snap.Tick = true, 41
	node.OnSnapshot(snap)
	movingWait(t, "the final snapshot written", func() bool {
		s, _, err := gamenode.LoadSnapshot(ctx, store, "m1")
		return err == nil && s.Final
	})
	node.Release(ctx, "m1") // the lease lapses with the node
	if !r.takeOver(ctx, listedMatch{ID: "m1", Mode: "tictactoe", Created: created}, "dead") {
		t.Fatal("an ended match still needs work")
	}
	if len(got) != 1 || got[0].reason != ReasonNodeLost || got[0].snap.MatchID != "m1" || !got[0].snap.Created.Equal(created) {
		t.Fatalf("ends published again: %+v, want one for m1 with its creation time (the event id) and reason %s", got, ReasonNodeLost)
	}
}
