package arena_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

var start = time.Unix(1_900_000_000, 0)

type world struct {
	t      testing.TB
	e      *match.Engine
	clock  *matchtest.Clock
	sender *matchtest.Sender
	h      *arena.Arena
	id     string
	ends   chan match.Summary
	seq    map[string]uint32
}

func newWorld(t testing.TB, sender match.Sender, params match.Params, users ...string) *world {
	t.Helper()
	return newWorldWith(t, nil, sender, params, users...)
}

// newWorldWith is newWorld with config changing the engine's configuration.
func newWorldWith(t testing.TB, config func(*match.Config), sender match.Sender, params match.Params, users ...string) *world {
	t.Helper()
	w := &world{
		t:     t,
		clock: matchtest.NewClock(start),
		ends:  make(chan match.Summary, 1),
		seq:   map[string]uint32{},
	}
	if s, ok := sender.(*matchtest.Sender); ok {
		w.sender = s
	}
	cfg := match.Config{
		Sender: sender, Clock: w.clock,
		RateLimit: match.RateLimit{PerSecond: -1},
		OnEnd:     func(s match.Summary) { w.ends <- s },
	}
	if config != nil {
		config(&cfg)
	}
	e, err := match.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.e = e
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	_ = e.Register(arena.Mode, func() match.Handler {
		w.h = arena.New().(*arena.Arena)
		return w.h
	})
	if w.id, err = e.Create(context.Background(), arena.Mode, params); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := e.Join(context.Background(), w.id, pres(u), nil); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func pres(u string) match.Presence {
	return match.Presence{UserID: u, SessionID: "s-" + u, Username: u}
}

// steer sends user's next input.
func (w *world) steer(u string, dx, dy int8) {
	w.t.Helper()
	w.seq[u]++
	if err := w.e.Input(w.id, pres(u), arena.OpInput, arena.AppendInput(nil, arena.Input{Seq: w.seq[u], DX: dx, DY: dy})); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) ticks(n int) {
	w.clock.Advance(time.Duration(n) * time.Second / arena.DefaultTickRate)
}

// state decodes the last state user received.
func (w *world) state(u string) (arena.State, matchtest.Sent) {
	w.t.Helper()
	f, ok := w.sender.Last(u, arena.OpState)
	if !ok {
		w.t.Fatalf("no state for %s", u)
	}
	var s arena.State
	if err := arena.DecodeState(f.Payload, &s); err != nil {
		w.t.Fatal(err)
	}
	return s, f
}

func (w *world) player(u string, slot uint8) arena.PlayerState {
	w.t.Helper()
	s, _ := w.state(u)
	for _, p := range s.Players {
		if p.Slot == slot {
			return p
		}
	}
	w.t.Fatalf("slot %d not in state", slot)
	return arena.PlayerState{}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-3 }

func TestMovementIsServerAuthoritative(t *testing.T) {
	w := newWorld(t, &matchtest.Sender{}, match.Params{"max_players": "2"}, "a", "b")
	// Slot 0 spawns at (850, 500), slot 1 at (150, 500).
	w.ticks(1)
	a0 := w.player("a", 0)
	if !near(float64(a0.X), 850) || !near(float64(a0.Y), 500) || a0.VX != 0 || a0.LastSeq != 0 {
		t.Fatalf("spawn: %+v", a0)
	}
	step := arena.MaxSpeed / arena.DefaultTickRate // 15 units per tick

	// A full diagonal is clamped to the maximum speed.
	w.steer("a", 127, 127)
	w.ticks(1)
	a1 := w.player("b", 0)
	moved := math.Hypot(float64(a1.X-a0.X), float64(a1.Y-a0.Y))
	speed := math.Hypot(float64(a1.VX), float64(a1.VY))
	if !near(moved, step) || math.Abs(speed-arena.MaxSpeed) > 0.01 || a1.LastSeq != 1 {
		t.Errorf("diagonal: moved %.3f at %.3f u/s, seq %d; want %.1f at %.0f", moved, speed, a1.LastSeq, step, arena.MaxSpeed)
	}

	// Flooding inputs in one tick moves one tick's worth, in the newest direction.
	for range 5 {
		w.steer("a", -127, 0)
	}
	w.ticks(1)
	a2 := w.player("a", 0)
	if !near(float64(a2.X), float64(a1.X)-step) || !near(float64(a2.Y), float64(a1.Y)) || a2.LastSeq != 6 {
		t.Errorf("flood: %+v after %+v", a2, a1)
	}

	// Stale and malformed inputs are ignored.
	_ = w.e.Input(w.id, pres("a"), arena.OpInput, arena.AppendInput(nil, arena.Input{Seq: 3, DX: 127}))
	_ = w.e.Input(w.id, pres("a"), arena.OpInput, []byte{1, 2, 3})
	// Op codes other than OpInput are refused by the engine (InputOps).
	if err := w.e.Input(w.id, pres("a"), 77, nil); !errors.Is(err, match.ErrUnknownOp) {
		t.Errorf("unknown op: %v", err)
	}
	w.ticks(1)
	a3 := w.player("a", 0)
	if a3.LastSeq != 6 || !near(float64(a3.X), float64(a2.X)-step) {
		t.Errorf("after stale input: %+v", a3)
	}
	if w.h.Stats.StaleInputs != 1 || w.h.Stats.BadInputs != 1 {
		t.Errorf("stats: %+v", w.h.Stats)
	}

	// Walls hold: b runs left for two seconds.
	w.steer("b", -127, 0)
	w.ticks(40)
	b := w.player("a", 1)
	if b.X != arena.Radius || b.VX != 0 || b.Y != 500 {
		t.Errorf("at the wall: %+v", b)
	}

	// A disconnected player stops and is flagged.
	if err := w.e.Disconnect(context.Background(), w.id, pres("a")); err != nil {
		t.Fatal(err)
	}
	w.ticks(1)
	a4 := w.player("b", 0)
	if a4.VX != 0 || a4.Flags&arena.FlagDisconnected == 0 {
		t.Errorf("disconnected: %+v", a4)
	}
}

func TestTagging(t *testing.T) {
	w := newWorld(t, &matchtest.Sender{}, match.Params{"max_players": "2"}, "a", "b")
	w.ticks(1)
	if a := w.player("a", 0); a.Flags&arena.FlagIt == 0 {
		t.Fatalf("slot 0 is not it: %+v", a)
	}
	// a (it) runs at b, 700 units away.
	w.steer("a", -127, 0)
	tagTick := 0
	for i := range 60 {
		w.ticks(1)
		if w.player("a", 1).Flags&arena.FlagIt != 0 {
			tagTick = i
			break
		}
	}
	if tagTick == 0 {
		t.Fatal("a never tagged b")
	}
	if a := w.player("a", 0); a.Score != 1 || a.Flags&arena.FlagIt != 0 {
		t.Errorf("tagger after the tag: %+v", a)
	}
	a, b := w.player("a", 0), w.player("a", 1)
	if d := math.Hypot(float64(a.X-b.X), float64(a.Y-b.Y)); d < 2*arena.Radius-0.01 {
		t.Errorf("players overlap after the tag: distance %.2f", d)
	}
	// b chases a at once, but cannot tag back within the cooldown.
	w.steer("a", 0, 0)
	w.steer("b", 127, 0)
	w.ticks(10)
	if b := w.player("b", 1); b.Score != 0 || b.Flags&arena.FlagIt == 0 {
		t.Errorf("b tagged back during the cooldown: %+v", b)
	}
	w.ticks(12)
	if b := w.player("b", 1); b.Score != 1 || b.Flags&arena.FlagIt != 0 {
		t.Errorf("b did not tag a after the cooldown: %+v", b)
	}
}

func TestEndsAtTimeLimit(t *testing.T) {
	w := newWorld(t, &matchtest.Sender{}, match.Params{"time_limit": "10s", "max_players": "4"}, "a", "b", "c")
	w.clock.Advance(9950 * time.Millisecond)
	s, f := w.state("c")
	if s.Phase != arena.PhasePlaying || s.TimeLeftMs != 50 || s.Tick != 199 || f.Tick != 199 ||
		s.ServerTimeMs != start.Add(9950*time.Millisecond).UnixMilli() {
		t.Fatalf("before the limit: %+v (frame tick %d)", s, f.Tick)
	}
	w.ticks(1)
	s, _ = w.state("c")
	if s.Phase != arena.PhaseEnded || s.Tick != 200 {
		t.Errorf("final state: %+v", s)
	}
	sum := <-w.ends
	r := sum.Results
	if sum.Mode != arena.Mode || r.Reason != "time_limit" || len(r.Players) != 3 {
		t.Fatalf("results: %+v", r)
	}
	// Nobody scored; a (slot 0) was it the whole game so ranks last.
	got := []string{}
	for _, p := range r.Players {
		got = append(got, p.Presence.UserID+":"+string(rune('0'+p.Placement)))
	}
	if want := []string{"b:1", "c:1", "a:3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("placements %v, want %v", got, want)
	}
	if r.Players[2].Stats["it_seconds"] != 10 {
		t.Errorf("stats: %+v", r.Players[2].Stats)
	}
	for _, c := range w.sender.Closed() {
		if c.Reason != match.ReasonMatchEnded {
			t.Errorf("close: %+v", c)
		}
	}
}

func TestLastPlayerStandingWins(t *testing.T) {
	w := newWorld(t, &matchtest.Sender{}, nil, "a", "b")
	var roster arena.Roster
	f, _ := w.sender.Last("a", arena.OpRoster)
	if err := json.Unmarshal(f.Payload, &roster); err != nil || len(roster.Players) != 2 || roster.Players[1].UserID != "b" {
		t.Errorf("roster: %s", f.Payload)
	}
	w.ticks(3)
	_ = w.e.Leave(context.Background(), w.id, pres("a"))
	r := (<-w.ends).Results
	if r.Reason != "opponents_left" || len(r.Players) != 1 || r.Players[0].Presence.UserID != "b" || r.Players[0].Placement != 1 {
		t.Errorf("results: %+v", r)
	}
}

func TestWaitsForMinPlayers(t *testing.T) {
	w := newWorld(t, &matchtest.Sender{}, match.Params{"min_players": "3", "time_limit": "10s"}, "a", "b")
	w.clock.Advance(20 * time.Second)
	if s, _ := w.state("a"); s.Phase != arena.PhaseWaiting || s.TimeLeftMs != 10000 {
		t.Errorf("waiting: %+v", s)
	}
	_ = w.e.Join(context.Background(), w.id, pres("c"), nil)
	w.ticks(1)
	if s, _ := w.state("c"); s.Phase != arena.PhasePlaying || s.TimeLeftMs != 9950 {
		t.Errorf("playing: %+v", s)
	}
}

// A match nobody joins is not removed: it waits, past any time limit
// (the clock starts with the game), until the engine shuts down.
func TestEmptyMatchLivesOn(t *testing.T) {
	w := newWorld(t, &matchtest.Sender{}, match.Params{arena.ParamTimeLimit: "10s"})
	w.ticks(20 * 60 * 2)
	if in, ok := w.e.Get(w.id); !ok || in.Label != "waiting" || !in.Open || in.Players != 0 {
		t.Fatalf("after 2 minutes empty: %+v, %v", in, ok)
	}
}

func TestBadParams(t *testing.T) {
	e, _ := match.NewEngine(match.Config{Sender: matchtest.Discard{}, Clock: matchtest.NewClock(start)})
	_ = e.Register(arena.Mode, arena.New)
	for _, tc := range []struct {
		p   match.Params
		key string
	}{
		{match.Params{"max_players": "1"}, "max_players"}, {match.Params{"max_players": "17"}, "max_players"},
		{match.Params{"time_limit": "5s"}, "time_limit"}, {match.Params{"tick_rate": "200"}, "tick_rate"},
		{match.Params{"min_players": "9"}, "min_players"}, {match.Params{"max_players": "x"}, "max_players"},
		// Names the game does not take are refused, not ignored.
		{match.Params{"players": "4"}, "players"}, {match.Params{"duration": "90s", "max_players": "4"}, "duration"},
	} {
		var pe *match.ParamError
		if _, err := e.Create(context.Background(), arena.Mode, tc.p); !errors.As(err, &pe) || pe.Key != tc.key {
			t.Errorf("Create(%v) = %v, want a ParamError about %s", tc.p, err, tc.key)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	in := arena.State{
		Tick: 1<<40 + 7, ServerTimeMs: -12345, TimeLeftMs: 59950, Phase: arena.PhasePlaying,
		Players: []arena.PlayerState{
			{Slot: 0, Flags: arena.FlagIt, Score: 3, LastSeq: 99, X: 1.5, Y: 999.25, VX: -300, VY: 0},
			{Slot: 15, Flags: arena.FlagDisconnected, Score: 65535, LastSeq: math.MaxUint32, X: 20, Y: 20, VX: 212.13, VY: -212.13},
		},
	}
	b := arena.AppendState(nil, &in)
	if len(b) != arena.StateHeaderSize+2*arena.PlayerStateSize {
		t.Fatalf("size %d", len(b))
	}
	var out arena.State
	if err := arena.DecodeState(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	empty := arena.State{Tick: 1}
	if err := arena.DecodeState(arena.AppendState(nil, &empty), &out); err != nil || out.Tick != 1 || len(out.Players) != 0 {
		t.Errorf("empty state: %v %+v", err, out)
	}
	for _, bad := range [][]byte{nil, b[:21], b[:len(b)-1], append(b, 0)} {
		if err := arena.DecodeState(bad, &out); !errors.Is(err, arena.ErrBadState) {
			t.Errorf("DecodeState(%d bytes) = %v", len(bad), err)
		}
	}
}

func TestInputEncoding(t *testing.T) {
	b := arena.AppendInput(nil, arena.Input{Seq: 0x01020304, DX: -127, DY: 5})
	if want := []byte{4, 3, 2, 1, 0x81, 5, 0, 0}; !reflect.DeepEqual(b, want) {
		t.Errorf("encoding % x, want % x", b, want)
	}
	if in, err := arena.DecodeInput(b); err != nil || in != (arena.Input{Seq: 0x01020304, DX: -127, DY: 5}) {
		t.Errorf("decode: %+v %v", in, err)
	}
	if b := arena.AppendInput(nil, arena.Input{DX: -128}); b[4] != 0x81 {
		t.Errorf("-128 encoded as %x", b[4])
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0x80, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 1, 0}, make([]byte, 9)} {
		if _, err := arena.DecodeInput(bad); !errors.Is(err, arena.ErrBadInput) {
			t.Errorf("DecodeInput(% x) = %v", bad, err)
		}
	}
}

func FuzzDecodeInput(f *testing.F) {
	f.Add(arena.AppendInput(nil, arena.Input{Seq: 1, DX: 127, DY: -127}))
	f.Add([]byte{0, 0, 0, 0, 0x80, 0x80, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := arena.DecodeInput(b)
		if err != nil {
			return
		}
		if again := arena.AppendInput(nil, in); string(again) != string(b) {
			t.Fatalf("re-encoding % x gave % x", b, again)
		}
		if in.DX < -127 || in.DY < -127 {
			t.Fatalf("direction out of range: %+v", in)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	s := arena.State{Tick: 9, Players: []arena.PlayerState{{Slot: 1, X: 3}}}
	f.Add(arena.AppendState(nil, &s))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s arena.State
		if arena.DecodeState(b, &s) != nil {
			return
		}
		if again := arena.AppendState(nil, &s); string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// benchWorld is an arena match with 8 players in play.
func benchWorld(b testing.TB) (*world, []match.Presence, [][]byte) {
	w := newWorld(b, matchtest.Discard{}, match.Params{"time_limit": "24h"}, "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7")
	ps := make([]match.Presence, 8)
	bufs := make([][]byte, 8)
	for i := range ps {
		ps[i] = pres("p" + string(rune('0'+i)))
		bufs[i] = make([]byte, 0, arena.InputSize)
	}
	return w, ps, bufs
}

// tick sends one input per player and runs one tick.
func (w *world) benchTick(ps []match.Presence, bufs [][]byte, n int) {
	for i, p := range ps {
		in := arena.Input{Seq: uint32(n + 1), DX: int8((n+i*13)%255 - 127), DY: int8((n*7+i*31)%255 - 127)}
		bufs[i] = arena.AppendInput(bufs[i][:0], in)
		if err := w.e.Input(w.id, p, arena.OpInput, bufs[i]); err != nil {
			w.t.Fatal(err)
		}
	}
	w.clock.Advance(time.Second / arena.DefaultTickRate)
}

// BenchmarkArenaTick measures one tick of an 8-player arena match, with
// each player's input, through the engine (input queue, Loop, state
// encoding, broadcast to 8 recipients).
func BenchmarkArenaTick(b *testing.B) {
	w, ps, bufs := benchWorld(b)
	for n := range 100 { // warm up: buffers and pools reach their size
		w.benchTick(ps, bufs, n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		w.benchTick(ps, bufs, 100+n)
	}
	b.StopTimer()
	if _, ok := w.e.Get(w.id); !ok {
		b.Fatal("the match ended during the benchmark")
	}
}

// A tag is reported as a key moment (match.event "tag") with who tagged
// whom.
func TestTagIsEmitted(t *testing.T) {
	var mu sync.Mutex
	var got []match.Event
	w := newWorldWith(t, func(c *match.Config) {
		c.OnEvent = func(e match.Event) { mu.Lock(); got = append(got, e); mu.Unlock() }
	}, &matchtest.Sender{}, match.Params{"max_players": "2"}, "a", "b")
	w.ticks(1)
	w.steer("a", -127, 0) // a is it: run at b
	for range 60 {
		w.ticks(1)
		if w.player("a", 1).Flags&arena.FlagIt != 0 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Name != "tag" || string(got[0].Data) != `{"by":"a","tagged":"b"}` || got[0].MatchID != w.id {
		t.Fatalf("events: %+v", got)
	}
}
