package match_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
)

// An operator ends a match from outside: players are closed with
// ReasonEndedByOperator, the handler gets no further callback, and the
// summary carries the reason and no placements.
func TestEndByOperator(t *testing.T) {
	v := newEnv(t, match.Config{})
	ev := &events{}
	_ = v.e.Register("m", factory(ev, &hooks{}))
	id := v.create(t, "m", nil)
	for _, u := range []string{"a", "b"} {
		if err := v.e.Join(context.Background(), id, pres(u), nil); err != nil {
			t.Fatal(err)
		}
	}
	v.clock.Advance(100 * time.Millisecond)
	if in, ok := v.e.Get(id); !ok || len(in.PlayerIDs) != 2 || in.PlayerIDs[0] != "a" || in.PlayerIDs[1] != "b" {
		t.Fatalf("info = %+v", in)
	}
	ev.take()
	if err := v.e.End(context.Background(), id, "ended_by_operator: test"); err != nil {
		t.Fatal(err)
	}
	var closes []string
	for _, c := range v.sender.Closed() {
		closes = append(closes, c.Who.UserID+" "+string(c.Reason))
	}
	equalStrings(t, "closes", closes, []string{"a ended_by_operator", "b ended_by_operator"})
	s := <-v.ends
	if s.ID != id || s.Results.Reason != "ended_by_operator: test" || len(s.Results.Players) != 0 {
		t.Errorf("summary: %+v", s)
	}
	v.clock.Advance(time.Second)
	if got := ev.take(); len(got) != 0 {
		t.Errorf("callbacks after End: %q", got)
	}
	if err := v.e.End(context.Background(), id, "again"); !errors.Is(err, match.ErrNotFound) {
		t.Fatalf("End of an ended match: %v", err)
	}
}

// TestEmptyTimeout: a match nobody is seated in ends after EmptyTimeout
// with reason empty, whether nobody ever joined or everyone left; a seated
// player keeps it open, and the clock starts again when the last one
// leaves.
func TestEmptyTimeout(t *testing.T) {
	v := newEnv(t, match.Config{EmptyTimeout: 5 * time.Second})
	ev := &events{}
	if err := v.e.Register("m", factory(ev, &hooks{settings: match.Settings{TickRate: 10, MaxPlayers: 2}})); err != nil {
		t.Fatal(err)
	}
	never := v.create(t, "m", nil)
	joined := v.create(t, "m", nil)
	a := match.Presence{UserID: "a", SessionID: "a-s1"}
	v.clock.Advance(4 * time.Second)
	if err := v.e.Join(context.Background(), joined, a, nil); err != nil {
		t.Fatal(err)
	}
	v.clock.Advance(1200 * time.Millisecond)
	wantEnd(t, v, never, match.ReasonEmpty, "the match nobody joined")
	v.clock.Advance(10 * time.Second) // a is seated: the other match stays
	if _, ok := v.e.Get(joined); !ok {
		t.Fatal("a match with a seated player ended")
	}
	if err := v.e.Leave(context.Background(), joined, a); err != nil {
		t.Fatal(err)
	}
	v.clock.Advance(4 * time.Second)
	if _, ok := v.e.Get(joined); !ok {
		t.Fatal("ended before EmptyTimeout after the last player left")
	}
	v.clock.Advance(1200 * time.Millisecond)
	wantEnd(t, v, joined, match.ReasonEmpty, "the match everyone left")
}

// wantEnd waits for the next match to end and checks it is id, ended
// with reason.
func wantEnd(t *testing.T, v *env, id string, reason match.Reason, what string) {
	t.Helper()
	select {
	case s := <-v.ends:
		if s.ID != id || s.Results.Reason != string(reason) {
			t.Fatalf("%s: ended %+v, want match %s with reason %s", what, s, id, reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}

// TestAbandonedMatchEnds: a match whose players all dropped (sockets gone,
// nobody back) ends with reason empty after DisconnectGrace (the seats
// are freed) plus EmptyTimeout, and not before.
func TestAbandonedMatchEnds(t *testing.T) {
	v := newEnv(t, match.Config{EmptyTimeout: 5 * time.Second, DisconnectGrace: 3 * time.Second})
	ev := &events{}
	if err := v.e.Register("m", factory(ev, &hooks{settings: match.Settings{TickRate: 10, MaxPlayers: 2}})); err != nil {
		t.Fatal(err)
	}
	id := v.create(t, "m", nil)
	ctx := context.Background()
	for _, p := range []match.Presence{{UserID: "a", SessionID: "a-s1"}, {UserID: "b", SessionID: "b-s1"}} {
		if err := v.e.Join(ctx, id, p, nil); err != nil {
			t.Fatal(err)
		}
		if err := v.e.Disconnect(ctx, id, p); err != nil {
			t.Fatal(err)
		}
	}
	v.clock.Advance(7 * time.Second) // seats freed at 3 s, empty for 4 s
	if _, ok := v.e.Get(id); !ok {
		t.Fatal("ended before disconnect_grace + empty_timeout")
	}
	v.clock.Advance(1200 * time.Millisecond)
	wantEnd(t, v, id, match.ReasonEmpty, "the abandoned match")
}
