package tictactoe_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

const tick = time.Second / tictactoe.TickRate

type game struct {
	t      *testing.T
	e      *match.Engine
	clock  *matchtest.Clock
	sender *matchtest.Sender
	id     string
	ends   chan match.Summary
	x, o   match.Presence
}

func start(t *testing.T) *game {
	t.Helper()
	g := &game{
		t:      t,
		clock:  matchtest.NewClock(time.Unix(1_900_000_000, 0)),
		sender: &matchtest.Sender{},
		ends:   make(chan match.Summary, 1),
		x:      match.Presence{UserID: "ux", SessionID: "sx", Username: "Xena"},
		o:      match.Presence{UserID: "uo", SessionID: "so", Username: "Otto"},
	}
	e, err := match.NewEngine(match.Config{
		Sender: g.sender, Clock: g.clock,
		OnEnd: func(s match.Summary) { g.ends <- s },
	})
	if err != nil {
		t.Fatal(err)
	}
	g.e = e
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	if err := e.Register(tictactoe.Mode, tictactoe.New); err != nil {
		t.Fatal(err)
	}
	if g.id, err = e.Create(context.Background(), tictactoe.Mode, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []match.Presence{g.x, g.o} {
		if err := e.Join(context.Background(), g.id, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if s := g.state(g.x); s.Status != tictactoe.StatusPlaying || s.X != "ux" || s.O != "uo" || s.Turn != "X" {
		t.Fatalf("state after joins: %+v", s)
	}
	return g
}

// play sends one move and runs a tick.
func (g *game) play(p match.Presence, cell byte) {
	g.t.Helper()
	if err := g.e.Input(g.id, p, tictactoe.OpMove, []byte{cell}); err != nil {
		g.t.Fatalf("move %d: %v", cell, err)
	}
	g.clock.Advance(tick)
}

func (g *game) state(p match.Presence) tictactoe.State {
	g.t.Helper()
	f, ok := g.sender.Last(p.UserID, tictactoe.OpState)
	if !ok {
		g.t.Fatalf("no state sent to %s", p.UserID)
	}
	var s tictactoe.State
	if err := json.Unmarshal(f.Payload, &s); err != nil {
		g.t.Fatal(err)
	}
	return s
}

func (g *game) lastError(p match.Presence) string {
	f, ok := g.sender.Last(p.UserID, tictactoe.OpError)
	if !ok {
		return ""
	}
	var m tictactoe.ErrorMessage
	_ = json.Unmarshal(f.Payload, &m)
	return m.Error
}

func (g *game) closes() map[string]match.Reason {
	out := map[string]match.Reason{}
	for _, c := range g.sender.Closed() {
		out[c.Who.UserID] = c.Reason
	}
	return out
}

func TestWin(t *testing.T) {
	g := start(t)
	g.play(g.x, 0)
	g.play(g.x, 1) // not X's turn
	if got := g.lastError(g.x); got != tictactoe.ErrNotYourTurn {
		t.Errorf("error = %q, want not_your_turn", got)
	}
	g.play(g.o, 0)
	if got := g.lastError(g.o); got != tictactoe.ErrCellTaken {
		t.Errorf("error = %q, want cell_taken", got)
	}
	g.play(g.o, 9)
	if got := g.lastError(g.o); got != tictactoe.ErrBadMove {
		t.Errorf("error = %q, want bad_move", got)
	}
	if len(g.sender.To("ux", tictactoe.OpError)) != 1 {
		t.Error("X received O's errors")
	}
	for _, m := range []struct {
		p    match.Presence
		cell byte
	}{{g.o, 3}, {g.x, 1}, {g.o, 4}, {g.x, 2}} {
		g.play(m.p, m.cell)
	}
	s := g.state(g.o)
	if s.Board != "XXXOO...." || s.Status != tictactoe.StatusWon || s.Winner != "ux" || s.Moves != 5 || s.Turn != "" {
		t.Errorf("final state: %+v", s)
	}
	sum := <-g.ends
	r := sum.Results
	if r.Reason != "winner" || len(r.Players) != 2 ||
		r.Players[0].Presence != g.x || r.Players[0].Placement != 1 || r.Players[0].Score != 1 ||
		r.Players[1].Presence != g.o || r.Players[1].Placement != 2 || r.Players[1].Stats["moves"] != 2 {
		t.Errorf("results: %+v", r)
	}
	if c := g.closes(); c["ux"] != match.ReasonMatchEnded || c["uo"] != match.ReasonMatchEnded {
		t.Errorf("closes: %v", c)
	}
	if err := g.e.Input(g.id, g.x, tictactoe.OpMove, []byte{5}); !errors.Is(err, match.ErrNotFound) {
		t.Errorf("move after the end: %v", err)
	}
}

func TestDraw(t *testing.T) {
	g := start(t)
	// X O X / X O O / O X X
	for i, cell := range []byte{0, 1, 2, 4, 3, 5, 7, 6, 8} {
		p := g.x
		if i%2 == 1 {
			p = g.o
		}
		g.play(p, cell)
	}
	s := g.state(g.x)
	if s.Board != "XOXXOOOXX" || s.Status != tictactoe.StatusDraw || s.Winner != "" || s.Moves != 9 {
		t.Errorf("final state: %+v", s)
	}
	r := (<-g.ends).Results
	if r.Reason != "draw" || len(r.Players) != 2 || r.Players[0].Placement != 1 || r.Players[1].Placement != 1 ||
		r.Players[0].Score != 0 {
		t.Errorf("results: %+v", r)
	}
}

func TestSeveralMovesInOneTick(t *testing.T) {
	g := start(t)
	for _, m := range []struct {
		p    match.Presence
		cell byte
	}{{g.x, 4}, {g.o, 0}, {g.x, 8}} {
		if err := g.e.Input(g.id, m.p, tictactoe.OpMove, []byte{m.cell}); err != nil {
			t.Fatal(err)
		}
	}
	// Only OpMove is declared: the engine refuses anything else at once.
	if err := g.e.Input(g.id, g.x, 99, nil); !errors.Is(err, match.ErrUnknownOp) {
		t.Fatalf("unknown op: %v", err)
	}
	g.clock.Advance(tick)
	if s := g.state(g.o); s.Board != "O...X...X" || s.Turn != "O" {
		t.Errorf("state: %+v", s)
	}
	if got := g.lastError(g.x); got != "" {
		t.Errorf("error = %q, want none (the unknown op never reached the game)", got)
	}
}

// The game takes no parameters: any is refused, by name.
func TestNoParams(t *testing.T) {
	e, err := match.NewEngine(match.Config{Sender: &matchtest.Sender{}, Clock: matchtest.NewClock(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	_ = e.Register(tictactoe.Mode, tictactoe.New)
	var pe *match.ParamError
	if _, err := e.Create(context.Background(), tictactoe.Mode, match.Params{"max_players": "4"}); !errors.As(err, &pe) || pe.Key != "max_players" {
		t.Errorf("Create with max_players = %v, want a ParamError about it", err)
	}
	if _, err := e.Create(context.Background(), tictactoe.Mode, match.Params{}); err != nil {
		t.Errorf("Create without parameters = %v", err)
	}
}

func TestInputOps(t *testing.T) {
	var h match.Handler = tictactoe.New()
	io, ok := h.(match.InputOps)
	if !ok {
		t.Fatal("the game does not declare its input op codes")
	}
	if ops := io.InputOps(); len(ops) != 1 || ops[0] != tictactoe.OpMove {
		t.Errorf("InputOps = %v, want [OpMove]", ops)
	}
}

func TestLeaverForfeits(t *testing.T) {
	g := start(t)
	g.play(g.x, 4)
	if err := g.e.Join(context.Background(), g.id, match.Presence{UserID: "z", SessionID: "sz"}, nil); !errors.Is(err, match.ErrMatchFull) {
		t.Errorf("third player: %v", err)
	}
	if err := g.e.Leave(context.Background(), g.id, g.x); err != nil {
		t.Fatal(err)
	}
	if s := g.state(g.o); s.Status != tictactoe.StatusForfeit || s.Winner != "uo" {
		t.Errorf("state: %+v", s)
	}
	r := (<-g.ends).Results
	if r.Reason != "opponent_left" || r.Players[0].Presence != g.o || r.Players[0].Placement != 1 ||
		r.Players[1].Presence != g.x || r.Players[1].Placement != 2 {
		t.Errorf("results: %+v", r)
	}
	if c := g.closes(); c["ux"] != match.ReasonLeft || c["uo"] != match.ReasonMatchEnded {
		t.Errorf("closes: %v", c)
	}
}

func TestReconnectGetsState(t *testing.T) {
	g := start(t)
	g.play(g.x, 4)
	if err := g.e.Disconnect(context.Background(), g.id, g.o); err != nil {
		t.Fatal(err)
	}
	o2 := g.o
	o2.SessionID = "so2"
	if err := g.e.Join(context.Background(), g.id, o2, nil); err != nil {
		t.Fatal(err)
	}
	f, _ := g.sender.Last("uo", tictactoe.OpState)
	if f.To.SessionID != "so2" {
		t.Errorf("state went to session %q", f.To.SessionID)
	}
	g.play(o2, 0)
	if s := g.state(g.x); s.Board != "O...X...." {
		t.Errorf("state: %+v", s)
	}
	snap, err := g.e.Snapshot(context.Background(), g.id)
	if err != nil {
		t.Fatal(err)
	}
	h := tictactoe.New().(*tictactoe.Game)
	if err := h.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if s := h.State(); s.Board != "O...X...." || s.Turn != "X" || s.O != "uo" {
		t.Errorf("restored: %+v", s)
	}
	if err := h.Restore([]byte(`{"status":"bogus"}`)); err == nil {
		t.Error("bad snapshot accepted")
	}
}

func TestWaitingRoom(t *testing.T) {
	clock := matchtest.NewClock(time.Unix(0, 0))
	sender := &matchtest.Sender{}
	ends := make(chan match.Summary, 1)
	e, _ := match.NewEngine(match.Config{Sender: sender, Clock: clock, OnEnd: func(s match.Summary) { ends <- s }})
	_ = e.Register(tictactoe.Mode, tictactoe.New)
	id, _ := e.Create(context.Background(), tictactoe.Mode, nil)
	a := match.Presence{UserID: "a", SessionID: "sa"}
	if err := e.Join(context.Background(), id, a, nil); err != nil {
		t.Fatal(err)
	}
	if l := e.List(match.Filter{Mode: tictactoe.Mode, Label: tictactoe.StatusWaiting, OpenOnly: true}); len(l) != 1 {
		t.Errorf("waiting matches: %+v", l)
	}
	if err := e.Input(id, a, tictactoe.OpMove, []byte{0}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(tick)
	if f, _ := sender.Last("a", tictactoe.OpError); string(f.Payload) != `{"error":"not_playing"}` {
		t.Errorf("error: %s", f.Payload)
	}
	_ = e.Leave(context.Background(), id, a)
	if s := <-ends; s.Results.Reason != "abandoned" {
		t.Errorf("results: %+v", s.Results)
	}
}
