package arena_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// TestSnapshotRestoreRoundTrip plays a match (A) with periodic snapshots,
// restores A's snapshot into a second match (B) at the same tick, and checks
// that from then on both broadcast exactly the same states for the same
// inputs.
func TestSnapshotRestoreRoundTrip(t *testing.T) {
	snaps := make(chan match.Snapshot, 8)
	params := match.Params{"max_players": "4", "time_limit": "30s"}
	users := []string{"a", "b", "c"}
	a := newWorldWith(t, func(c *match.Config) {
		c.SnapshotEvery = 10
		c.OnSnapshot = func(s match.Snapshot) {
			select {
			case snaps <- s:
			default: // the final one, at cleanup
			}
		}
	}, &matchtest.Sender{}, params, users...)
	b := newWorld(t, &matchtest.Sender{}, params, users...)

	// In A, "it" (a, slot 0) runs at b (slot 1) and tags it; c drops out.
	for i := range 40 {
		a.steer("a", -127, 127)
		if i%7 == 0 {
			a.steer("b", int8(i), -int8(i))
		}
		if i == 20 {
			if err := a.e.Disconnect(context.Background(), a.id, pres("c")); err != nil {
				t.Fatal(err)
			}
		}
		a.ticks(1)
	}
	b.ticks(40) // B idles to the same tick
	if s, _ := a.state("a"); s.Players[0].Score != 1 || s.Players[1].Flags&arena.FlagIt == 0 ||
		s.Players[2].Flags&arena.FlagDisconnected == 0 {
		t.Fatalf("A did not play out as planned: %+v", s)
	}
	if first := <-snaps; first.Tick != 0 || first.Players != 0 || first.Label != "waiting" {
		t.Fatalf("the snapshot taken as the match starts: %+v", first)
	}
	var snap match.Snapshot
	for want := uint64(10); want <= 40; want += 10 {
		snap = <-snaps
		if snap.Tick != want || snap.Final || snap.Players != 3 || snap.Mode != arena.Mode ||
			snap.MatchID != a.id || snap.Label != "playing" || len(snap.Data) == 0 {
			t.Fatalf("snapshot: %+v", snap)
		}
	}

	if err := b.h.Restore(snap.Data); err != nil {
		t.Fatal(err)
	}
	b.seq = maps.Clone(a.seq)
	for i := range 30 {
		for _, w := range []*world{a, b} {
			w.steer("b", 127, int8(3*i-45))
			if i%4 == 0 {
				w.steer("a", -127, int8(i))
			}
			w.ticks(1)
		}
		sa, fa := a.state("a")
		_, fb := b.state("a")
		if !bytes.Equal(fa.Payload, fb.Payload) || fa.Tick != fb.Tick {
			t.Fatalf("tick %d after the restore: states differ\nA %+v\nB %+v", i+1, sa, mustState(t, fb.Payload))
		}
	}
	sa, err := a.e.Snapshot(context.Background(), a.id)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.e.Snapshot(context.Background(), b.id)
	if err != nil || !bytes.Equal(sa, sb) {
		t.Errorf("snapshots differ after 30 ticks (%v)", err)
	}
}

func mustState(t *testing.T, b []byte) arena.State {
	t.Helper()
	var s arena.State
	if err := arena.DecodeState(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRestoredPlayersRejoin restores a match into an empty one: the
// players' slots wait for them, and they come back where they stood.
func TestRestoredPlayersRejoin(t *testing.T) {
	params := match.Params{"max_players": "2"}
	src := newWorld(t, &matchtest.Sender{}, params, "a", "b")
	src.steer("a", -127, 60)
	src.steer("b", 50, -127)
	src.ticks(10)
	want, _ := src.state("a")
	snap, err := src.e.Snapshot(context.Background(), src.id)
	if err != nil {
		t.Fatal(err)
	}

	dst := newWorld(t, &matchtest.Sender{}, params)
	dst.ticks(10)
	if err := dst.h.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if err := dst.e.Join(context.Background(), dst.id, pres("z"), nil); !errors.Is(err, match.ErrJoinRejected) {
		t.Errorf("a newcomer took a restored slot: %v", err)
	}
	for _, u := range []string{"b", "a"} {
		if err := dst.e.Join(context.Background(), dst.id, pres(u), nil); err != nil {
			t.Fatal(err)
		}
	}
	var roster arena.Roster
	f, _ := dst.sender.Last("a", arena.OpRoster)
	if err := json.Unmarshal(f.Payload, &roster); err != nil || len(roster.Players) != 2 ||
		roster.Players[0].UserID != "a" || roster.Players[1].UserID != "b" {
		t.Errorf("roster: %s", f.Payload)
	}
	dst.ticks(1)
	got, _ := dst.state("a")
	if got.Phase != arena.PhasePlaying || got.TimeLeftMs != want.TimeLeftMs-50 || len(got.Players) != 2 {
		t.Fatalf("restored state: %+v, was %+v", got, want)
	}
	for i, p := range got.Players {
		w := want.Players[i]
		if p.Slot != w.Slot || p.X != w.X || p.Y != w.Y || p.VX != 0 || p.VY != 0 ||
			p.LastSeq != w.LastSeq || p.Flags != w.Flags || p.Score != w.Score {
			t.Errorf("player %d: %+v, was %+v", i, p, w)
		}
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	w := newWorld(t, matchtest.Discard{}, nil, "a", "b")
	w.steer("a", 100, -20)
	w.ticks(5)
	snap, err := w.e.Snapshot(context.Background(), w.id)
	if err != nil {
		t.Fatal(err)
	}
	h := arena.New().(*arena.Arena)
	if err := h.Restore(snap); err != nil {
		t.Fatal(err)
	}
	before, err := h.Snapshot()
	if err != nil || !bytes.Equal(before, snap) {
		t.Fatalf("re-snapshot differs (%v)", err)
	}

	const p0 = 35 // first player record
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(snap)) }
	setF64 := func(off int, v float64) []byte {
		return mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[off:], math.Float64bits(v)); return b })
	}
	bad := map[string][]byte{
		"nil":           nil,
		"magic":         mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version":       mutate(func(b []byte) []byte { b[2] = 2; return b }),
		"max players":   mutate(func(b []byte) []byte { b[3] = 17; return b }),
		"min players":   mutate(func(b []byte) []byte { b[4] = 9; return b }),
		"tick rate":     mutate(func(b []byte) []byte { b[5] = 0; return b }),
		"phase":         mutate(func(b []byte) []byte { b[6] = 3; return b }),
		"it":            mutate(func(b []byte) []byte { b[7] = 5; return b }),
		"ticks left":    mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 1<<31); return b }),
		"more players":  mutate(func(b []byte) []byte { b[34] = 3; return b }),
		"fewer players": mutate(func(b []byte) []byte { b[34] = 1; return b }),
		"slot":          mutate(func(b []byte) []byte { b[p0] = 9; return b }),
		"flags":         mutate(func(b []byte) []byte { b[p0+1] = 0x81; return b }),
		"score":         mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[p0+6:], math.MaxUint32); return b }),
		"x NaN":         setF64(p0+22, math.NaN()),
		"x off field":   setF64(p0+22, 5000),
		"y infinite":    setF64(p0+30, math.Inf(-1)),
		"speed":         setF64(p0+38, 1e6),
		"direction":     setF64(p0+54, 3),
		"distance":      setF64(p0+70, -1),
		"trailing":      append(bytes.Clone(snap), 0),
		"same user":     bytes.Replace(snap, []byte("\x01\x00b\x03\x00s-b"), []byte("\x01\x00a\x03\x00s-b"), 1),
		"no user":       bytes.Replace(snap, []byte("\x01\x00b\x03\x00s-b\x01\x00b"), []byte("\x00\x00\x03\x00s-b\x02\x00bb"), 1),
	}
	for i := range snap {
		bad["truncated to "+strconv.Itoa(i)] = snap[:i]
	}
	for name, b := range bad {
		if name != "nil" && !strings.HasPrefix(name, "truncated") && bytes.Equal(b, snap) {
			t.Errorf("%s: mutation did not apply", name)
			continue
		}
		if err := h.Restore(b); !errors.Is(err, arena.ErrBadSnapshot) {
			t.Errorf("%s: Restore = %v", name, err)
		}
	}
	if after, _ := h.Snapshot(); !bytes.Equal(after, before) {
		t.Error("a rejected snapshot changed the state")
	}
}

func FuzzRestore(f *testing.F) {
	w := newWorld(f, matchtest.Discard{}, match.Params{"max_players": "3"}, "a", "b", "c")
	w.steer("a", -127, 127)
	w.ticks(40)
	snap, err := w.e.Snapshot(context.Background(), w.id)
	if err != nil {
		f.Fatal(err)
	}
	empty, _ := arena.New().(*arena.Arena).Snapshot()
	f.Add(snap)
	f.Add(snap[:60])
	f.Add(empty)
	f.Add([]byte{})
	f.Add([]byte("AR\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := arena.New().(*arena.Arena)
		if err := h.Restore(b); err != nil {
			if !errors.Is(err, arena.ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			if again, _ := h.Snapshot(); !bytes.Equal(again, empty) {
				t.Fatal("a rejected snapshot changed the state")
			}
			return
		}
		again, err := h.Snapshot()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-snapshot differs (%v)\n in % x\nout % x", err, b, again)
		}
		// The restored game runs without crashing its match.
		w := newWorld(t, matchtest.Discard{}, nil)
		if err := w.h.Restore(b); err != nil {
			t.Fatal(err)
		}
		if err := w.e.Join(context.Background(), w.id, pres("newcomer"), nil); err != nil && !errors.Is(err, match.ErrJoinRejected) {
			t.Fatal(err)
		}
		w.ticks(3)
		select {
		case s := <-w.ends:
			if s.Results.Reason == string(match.ReasonMatchError) {
				t.Fatal("the restored state crashed the match")
			}
		default:
		}
	})
}
