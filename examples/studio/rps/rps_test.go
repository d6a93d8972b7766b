package rps_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"

	"example.com/studio/rps"
)

const tick = time.Second / rps.TickRate

// table is one match on an engine with a hand-stepped clock: time moves
// only in Advance, and when Advance returns every tick it fired has run.
type table struct {
	t      *testing.T
	e      *match.Engine
	clock  *matchtest.Clock
	sender *matchtest.Sender
	id     string
	ends   chan match.Summary
	a, b   match.Presence

	mu     sync.Mutex
	rounds []rps.Round // the "round" key moments, in order
}

// open creates a match with params; both players join unless only is set.
func open(t *testing.T, params match.Params) *table {
	t.Helper()
	tb := &table{
		t:      t,
		clock:  matchtest.NewClock(time.Unix(1_900_000_000, 0)),
		sender: &matchtest.Sender{},
		ends:   make(chan match.Summary, 1),
		a:      match.Presence{UserID: "ua", SessionID: "sa", Username: "Ana"},
		b:      match.Presence{UserID: "ub", SessionID: "sb", Username: "Bo"},
	}
	e, err := match.NewEngine(match.Config{
		Sender: tb.sender, Clock: tb.clock,
		OnEnd:   func(s match.Summary) { tb.ends <- s },
		OnEvent: tb.onEvent,
	})
	if err != nil {
		t.Fatal(err)
	}
	tb.e = e
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	if err := e.Register(rps.Mode, rps.New); err != nil {
		t.Fatal(err)
	}
	if tb.id, err = e.Create(context.Background(), rps.Mode, params); err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *table) onEvent(ev match.Event) {
	if ev.Name != "round" {
		tb.t.Errorf("key moment %q, want round", ev.Name)
		return
	}
	var r rps.Round
	if err := json.Unmarshal(ev.Data, &r); err != nil {
		tb.t.Errorf("round %s: %v", ev.Data, err)
	}
	tb.mu.Lock()
	tb.rounds = append(tb.rounds, r)
	tb.mu.Unlock()
}

func (tb *table) join(ps ...match.Presence) {
	tb.t.Helper()
	for _, p := range ps {
		if err := tb.e.Join(context.Background(), tb.id, p, nil); err != nil {
			tb.t.Fatal(err)
		}
	}
}

// throw queues one throw; the next Advance applies it.
func (tb *table) throw(p match.Presence, h rps.Hand) {
	tb.t.Helper()
	if err := tb.e.Input(tb.id, p, rps.OpThrow, []byte{byte(h)}); err != nil {
		tb.t.Fatalf("throw %s: %v", h, err)
	}
}

// round plays one round: both throw, one tick runs.
func (tb *table) round(ha, hb rps.Hand) {
	tb.t.Helper()
	tb.throw(tb.a, ha)
	tb.throw(tb.b, hb)
	tb.clock.Advance(tick)
}

func (tb *table) state(p match.Presence) rps.State {
	tb.t.Helper()
	f, ok := tb.sender.Last(p.UserID, rps.OpState)
	if !ok {
		tb.t.Fatalf("no state sent to %s", p.UserID)
	}
	var s rps.State
	if err := json.Unmarshal(f.Payload, &s); err != nil {
		tb.t.Fatal(err)
	}
	return s
}

func (tb *table) lastError(p match.Presence) string {
	f, ok := tb.sender.Last(p.UserID, rps.OpError)
	if !ok {
		return ""
	}
	var m rps.ErrorMessage
	_ = json.Unmarshal(f.Payload, &m)
	return m.Error
}

func (tb *table) end() match.Summary {
	tb.t.Helper()
	select {
	case s := <-tb.ends:
		return s
	case <-time.After(5 * time.Second):
		tb.t.Fatal("the match did not end")
		return match.Summary{}
	}
}

func TestBestOfThree(t *testing.T) {
	tb := open(t, nil)
	tb.join(tb.a, tb.b)
	if s := tb.state(tb.a); s.Status != rps.StatusPlaying || s.Round != 1 || s.WinsNeeded != 2 || len(s.Players) != 2 || s.RoundEndsInMs != 15000 {
		t.Fatalf("state after joins: %+v", s)
	}

	// A throws first: B learns that A threw, never what.
	tb.throw(tb.a, rps.Rock)
	tb.clock.Advance(tick)
	if s := tb.state(tb.b); !s.Players[0].Thrown || s.Players[1].Thrown || s.Last != nil {
		t.Fatalf("state after one throw: %+v", s)
	}
	tb.throw(tb.b, rps.Scissors)
	tb.clock.Advance(tick)
	if s := tb.state(tb.b); s.Round != 2 || s.Players[0].Wins != 1 || s.Players[0].Thrown ||
		s.Last == nil || s.Last.Winner != "ua" || s.Last.Hands["ua"] != "rock" || s.Last.Hands["ub"] != "scissors" {
		t.Fatalf("state after round 1: %+v", s)
	}

	tb.round(rps.Paper, rps.Paper) // a tie replays the round
	tb.round(rps.Rock, rps.Paper)
	tb.round(rps.Scissors, rps.Paper)

	s := tb.state(tb.a)
	if s.Status != rps.StatusWon || s.Winner != "ua" || s.Players[0].Wins != 2 || s.Players[1].Wins != 1 || s.Round != 4 {
		t.Errorf("final state: %+v", s)
	}
	r := tb.end().Results
	if r.Reason != "winner" || len(r.Players) != 2 ||
		r.Players[0].Presence != tb.a || r.Players[0].Placement != 1 || r.Players[0].Score != 2 ||
		r.Players[1].Presence != tb.b || r.Players[1].Placement != 2 || r.Players[1].Score != 1 ||
		r.Players[0].Stats["rounds"] != 4 {
		t.Errorf("results: %+v", r)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	winners := []string{}
	for _, x := range tb.rounds {
		winners = append(winners, x.Winner)
	}
	if got, want := len(tb.rounds), 4; got != want || winners[1] != "" || winners[3] != "ua" {
		t.Errorf("round key moments: got %d %q, want %d with a tie second and ua last", got, winners, want)
	}
	for _, c := range tb.sender.Closed() {
		if c.Reason != match.ReasonMatchEnded {
			t.Errorf("close %+v, want match_ended", c)
		}
	}
}

func TestRefusedThrows(t *testing.T) {
	tb := open(t, match.Params{"wins": "1"})
	tb.join(tb.a)
	tb.throw(tb.a, rps.Rock)
	tb.clock.Advance(tick)
	if got := tb.lastError(tb.a); got != rps.ErrNotPlaying {
		t.Errorf("throw while waiting: error %q, want %q", got, rps.ErrNotPlaying)
	}
	tb.join(tb.b)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, rps.ErrBadThrow},
		{"zero", []byte{0}, rps.ErrBadThrow},
		{"four", []byte{4}, rps.ErrBadThrow},
		{"two bytes", []byte{1, 1}, rps.ErrBadThrow},
		{"first", []byte{byte(rps.Rock)}, ""},
		{"second", []byte{byte(rps.Paper)}, rps.ErrAlreadyThrown},
	} {
		before := len(tb.sender.To("ua", rps.OpError))
		if err := tb.e.Input(tb.id, tb.a, rps.OpThrow, tc.data); err != nil {
			t.Fatal(err)
		}
		tb.clock.Advance(tick)
		errs := tb.sender.To("ua", rps.OpError)
		if got := tb.lastError(tb.a); tc.want != "" && (got != tc.want || len(errs) != before+1) {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.want)
		} else if tc.want == "" && len(errs) != before {
			t.Errorf("%s: refused (%q)", tc.name, got)
		}
	}
	if got := len(tb.sender.To("ub", rps.OpError)); got != 0 {
		t.Errorf("B received %d of A's errors", got)
	}
	// The engine refuses other op codes before they reach the game.
	if err := tb.e.Input(tb.id, tb.a, 9, []byte{1}); !errors.Is(err, match.ErrUnknownOp) {
		t.Errorf("op 9: %v, want ErrUnknownOp", err)
	}
}

func TestRoundClock(t *testing.T) {
	tb := open(t, match.Params{"round_time": "2s"})
	tb.join(tb.a, tb.b)
	// Only A throws: when the round's time is up, A wins it.
	tb.throw(tb.a, rps.Scissors)
	tb.clock.Advance(2*time.Second - tick)
	if s := tb.state(tb.a); s.Round != 1 || s.Players[0].Wins != 0 {
		t.Fatalf("round decided early: %+v", s)
	}
	tb.clock.Advance(tick)
	s := tb.state(tb.b)
	if s.Round != 2 || s.Players[0].Wins != 1 || s.Last.Winner != "ua" || len(s.Last.Hands) != 1 {
		t.Fatalf("after the timeout: %+v", s)
	}
	// Nobody throws: the match is abandoned, with no result to record.
	tb.clock.Advance(2 * time.Second)
	if r := tb.end().Results; r.Reason != "abandoned" || len(r.Players) != 0 {
		t.Errorf("results: %+v", r)
	}
}

func TestForfeit(t *testing.T) {
	tb := open(t, nil)
	tb.join(tb.a, tb.b)
	tb.round(rps.Rock, rps.Scissors)
	if err := tb.e.Leave(context.Background(), tb.id, tb.a); err != nil {
		t.Fatal(err)
	}
	r := tb.end().Results
	if r.Reason != "opponent_left" || len(r.Players) != 2 || r.Players[0].Presence != tb.b || r.Players[0].Placement != 1 ||
		r.Players[1].Presence != tb.a || r.Players[1].Placement != 2 || r.Players[1].Score != 1 {
		t.Errorf("results: %+v", r)
	}
	if s := tb.state(tb.b); s.Status != rps.StatusForfeit || s.Winner != "ub" {
		t.Errorf("state: %+v", s)
	}
}

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		p   match.Params
		key string
	}{
		{match.Params{"wins": "0"}, "wins"},
		{match.Params{"wins": "six"}, "wins"},
		{match.Params{"round_time": "1ms"}, "round_time"},
		{match.Params{"wins": "2", "rounds": "3"}, "rounds"}, // not a parameter of rps
	} {
		e, err := match.NewEngine(match.Config{Sender: &matchtest.Sender{}, Clock: matchtest.NewClock(time.Unix(0, 0))})
		if err != nil {
			t.Fatal(err)
		}
		_ = e.Register(rps.Mode, rps.New)
		var pe *match.ParamError
		if _, err := e.Create(context.Background(), rps.Mode, tc.p); !errors.As(err, &pe) || pe.Key != tc.key {
			t.Errorf("params %v: %v, want a ParamError about %s", tc.p, err, tc.key)
		}
		_ = e.Shutdown(context.Background())
	}
}

func TestSnapshotRestore(t *testing.T) {
	tb := open(t, nil)
	tb.join(tb.a, tb.b)
	tb.round(rps.Rock, rps.Scissors)
	tb.throw(tb.b, rps.Paper) // a secret hand: the snapshot must keep it
	tb.clock.Advance(tick)
	snap, err := tb.e.Snapshot(context.Background(), tb.id)
	if err != nil {
		t.Fatal(err)
	}
	g := rps.New().(*rps.Game)
	if err := g.Restore(snap); err != nil {
		t.Fatal(err)
	}
	again, err := g.Snapshot()
	if err != nil || string(again) != string(snap) {
		t.Fatalf("restored snapshot differs:\n%s\n%s (%v)", again, snap, err)
	}
	for _, bad := range []string{"", "{", `{"status":"lost"}`, `{"status":"playing","wins_needed":2,"round_time":1,"winner":-1,"hands":[7,0]}`} {
		if err := g.Restore([]byte(bad)); err == nil {
			t.Errorf("Restore(%q) accepted", bad)
		}
	}
	if again, _ := g.Snapshot(); string(again) != string(snap) {
		t.Error("a refused Restore changed the state")
	}
}

func TestShutdown(t *testing.T) {
	tb := open(t, nil)
	tb.join(tb.a, tb.b)
	if err := tb.e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := tb.end().Results; r.Reason != "shutdown" || len(r.Players) != 0 {
		t.Errorf("results: %+v", r)
	}
}

// TestHandoff moves a live match to another engine (another game node) in
// the middle of a round: the secret hand, the score and the round clock
// travel in the snapshot, and the game ends on the new engine.
func TestHandoff(t *testing.T) {
	ctx := context.Background()
	tb := open(t, nil)
	tb.join(tb.a, tb.b)
	tb.round(rps.Rock, rps.Scissors) // A leads 1-0
	tb.throw(tb.b, rps.Paper)        // B's hand for round 2, still secret
	tb.clock.Advance(tick)
	snap, err := tb.e.Handoff(ctx, tb.id)
	if err != nil {
		t.Fatal(err)
	}

	sender := &matchtest.Sender{}
	ends := make(chan match.Summary, 1)
	e2, err := match.NewEngine(match.Config{Sender: sender, Clock: tb.clock, OnEnd: func(s match.Summary) { ends <- s }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e2.Shutdown(ctx) })
	if err := e2.Register(rps.Mode, rps.New); err != nil {
		t.Fatal(err)
	}
	if err := e2.Restore(ctx, snap); err != nil {
		t.Fatal(err)
	}
	play := func(p match.Presence, h rps.Hand) {
		t.Helper()
		if err := e2.Input(snap.MatchID, p, rps.OpThrow, []byte{byte(h)}); err != nil {
			t.Fatal(err)
		}
	}
	play(tb.a, rps.Rock) // loses to the paper B threw on the first engine
	tb.clock.Advance(tick)
	f, ok := sender.Last("ua", rps.OpState)
	if !ok {
		t.Fatal("no state from the new engine")
	}
	var s rps.State
	if err := json.Unmarshal(f.Payload, &s); err != nil {
		t.Fatal(err)
	}
	if s.Round != 3 || s.Players[0].Wins != 1 || s.Players[1].Wins != 1 || s.Last.Hands["ub"] != "paper" {
		t.Fatalf("state after the move: %+v", s)
	}
	play(tb.a, rps.Scissors)
	play(tb.b, rps.Paper)
	tb.clock.Advance(tick)
	select {
	case sum := <-ends:
		if r := sum.Results; r.Reason != "winner" || r.Players[0].Presence != tb.a || r.Players[0].Score != 2 {
			t.Errorf("results on the new engine: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the match did not end on the new engine")
	}
	select {
	case s := <-tb.ends:
		t.Errorf("the first engine reported an end: %+v", s)
	default:
	}
}
