package match_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// node is one engine on a hand-stepped clock, with what it reported.
type node struct {
	e      *match.Engine
	clock  *matchtest.Clock
	sent   *matchtest.Sender
	mu     sync.Mutex
	starts []string
	ends   []match.Summary
	snaps  []match.Snapshot
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{clock: matchtest.NewClock(time.Unix(1_700_000_000, 0)), sent: &matchtest.Sender{}}
	e, err := match.NewEngine(match.Config{Sender: n.sent, Clock: n.clock, DisconnectGrace: time.Minute,
		OnStart:    func(s match.Started) { n.mu.Lock(); n.starts = append(n.starts, s.ID); n.mu.Unlock() },
		OnEnd:      func(s match.Summary) { n.mu.Lock(); n.ends = append(n.ends, s); n.mu.Unlock() },
		OnSnapshot: func(s match.Snapshot) { n.mu.Lock(); n.snaps = append(n.snaps, s); n.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register(tictactoe.Mode, tictactoe.New); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	n.e = e
	return n
}

// tick advances the clock by one tic-tac-toe tick.
func (n *node) tick() { n.clock.Advance(time.Second / tictactoe.TickRate) }

func (n *node) lastState(t *testing.T, user string) tictactoe.State {
	t.Helper()
	s, ok := n.sent.Last(user, tictactoe.OpState)
	if !ok {
		t.Fatalf("no state sent to %s", user)
	}
	var st tictactoe.State
	if err := json.Unmarshal(s.Payload, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestHandoffRestore(t *testing.T) {
	ctx := context.Background()
	a, b := newNode(t), newNode(t)
	id, err := a.e.Create(ctx, tictactoe.Mode, match.Params{})
	if err != nil {
		t.Fatal(err)
	}
	x := match.Presence{UserID: "ux", SessionID: "gw/sx"}
	o := match.Presence{UserID: "uo", SessionID: "gw/so"}
	for _, p := range []match.Presence{x, o} {
		if err := a.e.Join(ctx, id, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.e.Input(id, x, tictactoe.OpMove, []byte{4}); err != nil {
		t.Fatal(err)
	}
	a.tick()
	if st := a.lastState(t, "uo"); st.Moves != 1 {
		t.Fatalf("before the handoff: %d moves, want 1", st.Moves)
	}
	// O drops before the handoff: the seat goes over disconnected.
	if err := a.e.Disconnect(context.Background(), id, o); err != nil {
		t.Fatal(err)
	}
	snap, err := a.e.Handoff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.e.Get(id); ok {
		t.Fatal("the match still runs on the first engine")
	}
	if len(a.sent.Closed()) != 0 || len(a.ends) != 0 {
		t.Fatalf("a handoff told someone: closes %v, ends %v", a.sent.Closed(), a.ends)
	}
	if len(a.snaps) != 1 || a.snaps[0].Final || len(snap.Seats) != 2 || snap.Seats[1].Connected {
		t.Fatalf("handoff snapshot: %+v (reported %d)", snap, len(a.snaps))
	}

	if err := b.e.Restore(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if err := b.e.Restore(ctx, snap); !errors.Is(err, match.ErrHosted) {
		t.Fatalf("restore twice: got %v, want ErrHosted", err)
	}
	info, ok := b.e.Get(id)
	if !ok || info.Players != 2 || !info.Created.Equal(snap.Created) {
		t.Fatalf("restored match: %+v %v", info, ok)
	}
	// O comes back (through any gateway) and moves; the game goes on from
	// the handed-over state.
	if err := b.e.Join(ctx, id, o, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.e.Input(id, o, tictactoe.OpMove, []byte{0}); err != nil {
		t.Fatal(err)
	}
	b.tick()
	st := b.lastState(t, "ux")
	if st.Moves != 2 || st.Board[4] != 'X' || st.Board[0] != 'O' {
		t.Fatalf("after the handoff: %+v", st)
	}
	if len(b.starts) != 0 {
		t.Fatalf("OnStart on the restoring engine: %v", b.starts)
	}
	if err := b.e.End(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	if len(b.ends) != 1 || b.ends[0].ID != id {
		t.Fatalf("the match must end once, on the new engine: %+v", b.ends)
	}
}

func TestRestoreRefusals(t *testing.T) {
	ctx := context.Background()
	n := newNode(t)
	for _, tc := range []struct {
		name string
		s    match.Snapshot
		want error
	}{
		{"unknown mode", match.Snapshot{MatchID: "m1", Mode: "nope"}, match.ErrUnknownMode},
		{"garbage state", match.Snapshot{MatchID: "m1", Mode: tictactoe.Mode, Data: []byte("{")}, nil},
		{"seat without a session", match.Snapshot{MatchID: "m1", Mode: tictactoe.Mode, Data: validTicTacToe(t),
			Seats: []match.SeatState{{Presence: match.Presence{UserID: "u"}}}}, nil},
		{"no id", match.Snapshot{Mode: tictactoe.Mode, Data: validTicTacToe(t)}, nil},
	} {
		err := n.e.Restore(ctx, tc.s)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: got %v, want an error (%v)", tc.name, err, tc.want)
		}
	}
	if got := n.e.List(match.Filter{}); len(got) != 0 {
		t.Fatalf("a refused restore left a match: %+v", got)
	}
	if _, err := n.e.Handoff(ctx, "missing"); !errors.Is(err, match.ErrNotFound) {
		t.Fatalf("handoff of a missing match: got %v, want ErrNotFound", err)
	}
}

// validTicTacToe is the state of a fresh tic-tac-toe game.
func validTicTacToe(t *testing.T) []byte {
	t.Helper()
	g := tictactoe.New().(match.Snapshotter)
	b, err := g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Abandon removes a match with no word to anyone: no snapshot, no end, no
// frame after it; the match is gone from this engine and takes nothing.
func TestAbandon(t *testing.T) {
	ctx := context.Background()
	a := newNode(t)
	id, err := a.e.Create(ctx, tictactoe.Mode, match.Params{})
	if err != nil {
		t.Fatal(err)
	}
	x := match.Presence{UserID: "ux", SessionID: "gw/sx"}
	if err := a.e.Join(ctx, id, x, nil); err != nil {
		t.Fatal(err)
	}
	a.tick()
	sent := len(a.sent.Sent())
	if err := a.e.Abandon(ctx, id); err != nil {
		t.Fatal(err)
	}
	a.tick()
	a.tick()
	if _, ok := a.e.Get(id); ok {
		t.Error("the match is still here after Abandon")
	}
	if err := a.e.Input(id, x, tictactoe.OpMove, []byte{4}); !errors.Is(err, match.ErrNotFound) {
		t.Errorf("input after Abandon: %v, want ErrNotFound", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.ends) != 0 || len(a.snaps) != 0 || len(a.sent.Sent()) != sent || len(a.sent.Closed()) != 0 {
		t.Errorf("after Abandon: %d ends, %d snapshots, %d frames (was %d), want none new", len(a.ends), len(a.snaps), len(a.sent.Sent()), sent)
	}
	if err := a.e.Abandon(ctx, id); !errors.Is(err, match.ErrNotFound) {
		t.Errorf("a second Abandon: %v, want ErrNotFound", err)
	}
}
