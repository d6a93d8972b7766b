package router

import (
	"context"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/gamenode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/match"
)

type noMatches struct{}

// movingWait polls cond for up to 5s.
func movingWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (noMatches) List(match.Filter) []match.Info        { return nil }
func (noMatches) Abandon(context.Context, string) error { return match.ErrNotFound }

// TestMoving: a request that finds no host is tried again while the match
// holds a lease, or has a snapshot that is not final (a handoff between
// the release of the lease and the new node's claim); not for a match with
// neither, nor for one whose last snapshot is final.
func TestMoving(t *testing.T) {
	ctx := context.Background()
	store := kv.NewMemory(kv.MemoryOptions{})
	r := &Router{reg: registry{kv: store}}
	node := gamenode.New(gamenode.Config{NodeID: "n1", Heartbeat: time.Hour}, store, noMatches{}, nil)
	nctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- node.Run(nctx) }()
	defer func() { stop(); <-done }()

	snap := match.Snapshot{MatchID: "m1", Mode: "tictactoe", Created: time.Now(), Tick: 3, Data: []byte(`{}`)}
	if r.moving(ctx, "m1") {
		t.Fatal("moving with neither lease nor snapshot")
	}
	if err := node.Claim(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if !r.moving(ctx, "m1") {
		t.Fatal("not moving with its lease held")
	}
	node.OnSnapshot(snap)
	movingWait(t, "the snapshot written", func() bool { _, _, err := gamenode.LoadSnapshot(ctx, store, "m1"); return err == nil })
	node.Release(ctx, "m1")
	if !r.moving(ctx, "m1") {
		t.Fatal("not moving with its lease released and a snapshot that is not final (a handoff)")
	}
	snap.Final, snap.Tick = true, 4
	node.OnSnapshot(snap)
	movingWait(t, "the final snapshot written", func() bool { s, _, err := gamenode.LoadSnapshot(ctx, store, "m1"); return err == nil && s.Final })
	if r.moving(ctx, "m1") {
		t.Fatal("moving after its final snapshot")
	}
}
