package gamenode_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/gamenode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

var ctx = context.Background()

const tick = time.Second / tictactoe.TickRate

// stores runs a test on the in-process store and on the machine's Redis.
func stores(t *testing.T, fn func(t *testing.T, store kv.Store)) {
	t.Run("memory", func(t *testing.T) {
		m := kv.NewMemory(kv.MemoryOptions{})
		t.Cleanup(func() { m.Close() })
		fn(t, m)
	})
	t.Run("redis", func(t *testing.T) {
		opt, err := redis.ParseURL(redistest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		r, err := kv.NewRedis(kv.RedisOptions{Client: c, Prefix: redistest.Prefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		fn(t, r)
	})
}

type rig struct {
	t      *testing.T
	clock  *matchtest.Clock
	engine *match.Engine
	node   *gamenode.Node
	stop   func()
	id     string
	x, o   match.Presence
}

func newRig(t *testing.T, store kv.Store, nodeID string, heartbeat time.Duration) *rig {
	r := &rig{t: t, clock: matchtest.NewClock(time.Unix(1_900_000_000, 0)),
		x: match.Presence{UserID: "ux", SessionID: "sx"}, o: match.Presence{UserID: "uo", SessionID: "so"}}
	var node *gamenode.Node
	e, err := match.NewEngine(match.Config{
		Sender: matchtest.Discard{}, Clock: r.clock, SnapshotEvery: 2,
		OnSnapshot: func(s match.Snapshot) { node.OnSnapshot(s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register(tictactoe.Mode, tictactoe.New); err != nil {
		t.Fatal(err)
	}
	node = gamenode.New(gamenode.Config{NodeID: nodeID, Heartbeat: heartbeat, SnapshotTTL: time.Minute}, store, e, nil)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- node.Run(cctx) }()
	r.engine, r.node = e, node
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() {
		r.stop()
		_ = e.Shutdown(ctx)
	})
	return r
}

func (r *rig) create() {
	id, err := r.engine.Create(ctx, tictactoe.Mode, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.id = id
	for _, p := range []match.Presence{r.x, r.o} {
		if err := r.engine.Join(ctx, id, p, nil); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rig) move(p match.Presence, cell byte) {
	if err := r.engine.Input(r.id, p, tictactoe.OpMove, []byte{cell}); err != nil {
		r.t.Fatal(err)
	}
	r.clock.Advance(tick)
}

// eventually polls cond for up to 5 s of real time (the writer runs on its
// own goroutine and the real clock).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSnapshotsAndDirectory(t *testing.T) {
	stores(t, func(t *testing.T, store kv.Store) {
		r := newRig(t, store, "node-a", 50*time.Millisecond)
		r.create()
		eventually(t, "the directory record", func() bool {
			rec, err := gamenode.Lookup(ctx, store, r.id)
			return err == nil && rec.Node == "node-a" && rec.Players == 2 && rec.Mode == tictactoe.Mode
		})
		r.move(r.x, 0)
		r.move(r.o, 3)
		var first uint64
		eventually(t, "a snapshot", func() bool {
			s, node, err := gamenode.LoadSnapshot(ctx, store, r.id)
			first = s.Tick
			return err == nil && node == "node-a" && s.Tick > 0 && s.Tick%2 == 0 && !s.Final && len(s.Data) > 0
		})
		// The snapshot restores into a fresh game.
		s, _, _ := gamenode.LoadSnapshot(ctx, store, r.id)
		if err := tictactoe.New().(match.Snapshotter).Restore(s.Data); err != nil {
			t.Fatalf("restore the stored snapshot: %v", err)
		}
		// X wins along the top row: a final snapshot, and the lease goes.
		r.move(r.x, 1)
		r.move(r.o, 4)
		r.move(r.x, 2)
		eventually(t, "the final snapshot", func() bool {
			s, _, err := gamenode.LoadSnapshot(ctx, store, r.id)
			return err == nil && s.Final && s.Tick > first
		})
		eventually(t, "the directory record to go", func() bool {
			_, err := gamenode.Lookup(ctx, store, r.id)
			return errors.Is(err, kv.ErrNotFound)
		})
		if n := r.node.SnapshotsWritten.Load(); n < 2 {
			t.Fatalf("snapshots written = %d", n)
		}
	})
}

// A node that dies leaves its directory records to expire after three
// heartbeats; a second node cannot take a record another node holds.
func TestLeases(t *testing.T) {
	stores(t, func(t *testing.T, store kv.Store) {
		a := newRig(t, store, "node-a", 50*time.Millisecond)
		a.create()
		eventually(t, "node A's lease", func() bool {
			rec, err := gamenode.Lookup(ctx, store, a.id)
			return err == nil && rec.Node == "node-a"
		})
		// Node B runs the same match too (restored from A's snapshot while
		// A still holds the lease: a split brain). B's claim is refused and
		// B abandons its copy; A's goes on.
		a.move(a.x, 0)
		a.move(a.o, 1)
		var snap match.Snapshot
		eventually(t, "a snapshot of A's match", func() bool {
			var err error
			snap, _, err = gamenode.LoadSnapshot(ctx, store, a.id)
			return err == nil
		})
		b := newRig(t, store, "node-b", 50*time.Millisecond)
		if err := b.engine.Restore(ctx, snap); err != nil {
			t.Fatal(err)
		}
		eventually(t, "node B to abandon its copy", func() bool { return b.node.Abandoned.Load() == 1 })
		if _, ok := b.engine.Get(a.id); ok {
			t.Fatal("node B still runs the match after abandoning it")
		}
		if _, ok := a.engine.Get(a.id); !ok || a.node.Abandoned.Load() != 0 {
			t.Fatal("node A stopped its match")
		}
		if rec, _ := gamenode.Lookup(ctx, store, a.id); rec.Node != "node-a" || b.node.LeasesLost.Load() == 0 {
			t.Fatalf("record taken over: %+v (B lost %d)", rec, b.node.LeasesLost.Load())
		}
		// A's own record at a version A did not see (a renewal that timed
		// out at A but was applied): A adopts it and goes on.
		it, err := store.Get(ctx, "match:dir:"+a.id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Put(ctx, "match:dir:"+a.id, it.Value, time.Second); err != nil {
			t.Fatal(err)
		}
		renewals := a.node.Renewals.Load()
		eventually(t, "node A to renew again", func() bool { return a.node.Renewals.Load() > renewals+1 })
		if _, ok := a.engine.Get(a.id); !ok || a.node.Abandoned.Load() != 0 {
			t.Fatal("node A abandoned its own match over a record it wrote")
		}
		// Node A stops renewing (as if it died): the record expires.
		a.stop()
		a.stop = func() {}
		eventually(t, "the dead node's record to expire", func() bool {
			_, err := gamenode.Lookup(ctx, store, a.id)
			return errors.Is(err, kv.ErrNotFound)
		})
	})
}

type fakeMatches []match.Info

func (f fakeMatches) List(match.Filter) []match.Info { return f }

func (fakeMatches) Abandon(context.Context, string) error { return nil }

// OnSnapshot never blocks and keeps only the latest snapshot per match;
// beyond MaxPending matches it drops, but never a final snapshot.
func TestPendingBound(t *testing.T) {
	m := kv.NewMemory(kv.MemoryOptions{})
	defer m.Close()
	n := gamenode.New(gamenode.Config{NodeID: "n", MaxPending: 2}, m, fakeMatches{}, nil)
	for i, id := range []string{"m1", "m1", "m2", "m3"} {
		n.OnSnapshot(match.Snapshot{MatchID: id, Tick: uint64(i), Data: []byte("x")})
	}
	if got := n.SnapshotsDropped.Load(); got != 1 {
		t.Fatalf("dropped = %d, want 1 (m3)", got)
	}
	n.OnSnapshot(match.Snapshot{MatchID: "m4", Final: true, Data: []byte("x")})
	if got := n.SnapshotsDropped.Load(); got != 1 {
		t.Fatalf("a final snapshot was dropped")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel() // Run flushes once on the way out
	if err := n.Run(cctx); err != nil {
		t.Fatal(err)
	}
	for id, wantTick := range map[string]uint64{"m1": 1, "m2": 2} {
		s, _, err := gamenode.LoadSnapshot(ctx, m, id)
		if err != nil || s.Tick != wantTick {
			t.Fatalf("%s: %+v, %v; want tick %d", id, s, err, wantTick)
		}
	}
	if s, _, err := gamenode.LoadSnapshot(ctx, m, "m4"); err != nil || !s.Final {
		t.Fatalf("final snapshot: %+v, %v", s, err)
	}
	if _, _, err := gamenode.LoadSnapshot(ctx, m, "m3"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("dropped snapshot was written: %v", err)
	}
}
