package match_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// snapper adds a Snapshotter to a watcher. Its state is the number of Loops
// it ran; fail, if set, may fail or panic a snapshot.
type snapper struct {
	watcher
	loops int
	fail  func(loops int) error
}

func (s *snapper) Loop(d *match.Dispatcher, in []match.Input) {
	s.loops++
	s.watcher.Loop(d, in)
}

func (s *snapper) Snapshot() ([]byte, error) {
	if s.fail != nil {
		if err := s.fail(s.loops); err != nil {
			return nil, err
		}
	}
	return []byte("loops=" + strconv.Itoa(s.loops)), nil
}

func (s *snapper) Restore(b []byte) error {
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "loops="))
	if err != nil {
		return err
	}
	s.loops = n
	return nil
}

func snapFactory(ev *events, h *hooks, fail func(int) error) match.Factory {
	return func() match.Handler {
		return &snapper{watcher: watcher{&recorder{ev: ev, h: h}}, fail: fail}
	}
}

// snapLog records the snapshots an engine hands out, and logs them into ev
// so their order relative to the callbacks shows.
type snapLog struct {
	ev *events
	mu sync.Mutex
	s  []match.Snapshot
}

func (l *snapLog) on(s match.Snapshot) {
	l.ev.add("snapshot %d %s players=%d final=%t", s.Tick, s.Data, s.Players, s.Final)
	l.mu.Lock()
	l.s = append(l.s, s)
	l.mu.Unlock()
}

func (l *snapLog) take(matchID string) []match.Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out, rest []match.Snapshot
	for _, s := range l.s {
		if s.MatchID == matchID {
			out = append(out, s)
		} else {
			rest = append(rest, s)
		}
	}
	l.s = rest
	return out
}

func TestPeriodicSnapshots(t *testing.T) {
	ev := &events{}
	snaps := &snapLog{ev: ev}
	v := newEnv(t, match.Config{SnapshotEvery: 3, OnSnapshot: snaps.on})
	h := &hooks{settings: match.Settings{TickRate: 10, MaxPlayers: 4}}
	h.loop = func(d *match.Dispatcher, _ []match.Input) {
		switch d.Tick() {
		case 6:
			_ = d.Kick(pres("b"), "")
		case 9:
			_ = d.SetLabel("late")
		case 12:
			_ = d.End(match.Results{Reason: "done"})
		}
	}
	_ = v.e.Register("m", snapFactory(ev, h, nil))
	id := v.create(t, "m", match.Params{"label": "early"})
	for _, u := range []string{"a", "b"} {
		if err := v.e.Join(context.Background(), id, pres(u), nil); err != nil {
			t.Fatal(err)
		}
	}
	ev.take()

	v.clock.Advance(1100 * time.Millisecond) // ticks 1..11
	want := loops(1, 3)
	want = append(want, "snapshot 3 loops=3 players=2 final=false")
	want = append(want, loops(4, 6)...)
	want = append(want, "leave b kicked", "snapshot 6 loops=6 players=1 final=false")
	want = append(want, loops(7, 9)...)
	want = append(want, "snapshot 9 loops=9 players=1 final=false")
	want = append(want, loops(10, 11)...)
	equalStrings(t, "events", ev.take(), want)
	got := snaps.take(id)
	if len(got) != 4 { // tick 0 (as the match starts), 3, 6, 9
		t.Fatalf("%d snapshots, want 4: %+v", len(got), got)
	}
	for i, s := range got {
		tick := uint64(3 * i)
		label := "early"
		if tick >= 9 {
			label = "late"
		}
		if s.MatchID != id || s.Mode != "m" || s.Label != label || s.Tick != tick || s.Final ||
			!s.Taken.Equal(t0.Add(time.Duration(tick)*100*time.Millisecond)) ||
			string(s.Data) != fmt.Sprintf("loops=%d", tick) {
			t.Errorf("snapshot %d: %+v", i, s)
		}
	}

	// The match ends on a snapshot tick: only the final snapshot is taken,
	// before OnEnd.
	v.clock.Advance(100 * time.Millisecond)
	sum := <-v.ends
	equalStrings(t, "events", ev.take(), []string{"loop 12 []", "snapshot 12 loops=12 players=1 final=true"})
	got = snaps.take(id)
	if len(got) != 1 || !got[0].Final || got[0].Tick != 12 || got[0].Label != "late" ||
		got[0].Players != 1 || !got[0].Taken.Equal(t0.Add(1200*time.Millisecond)) {
		t.Errorf("final snapshot: %+v", got)
	}
	if sum.ID != id || sum.Results.Reason != "done" || sum.Ticks != 12 {
		t.Errorf("summary: %+v", sum)
	}
}

func TestSnapshotFailures(t *testing.T) {
	ev := &events{}
	snaps := &snapLog{ev: ev}
	v := newEnv(t, match.Config{SnapshotEvery: 2, OnSnapshot: snaps.on})
	h := &hooks{settings: match.Settings{TickRate: 10, MaxPlayers: 4}}
	_ = v.e.Register("flaky", snapFactory(ev, h, func(loops int) error {
		switch loops {
		case 2:
			return errors.New("disk on fire")
		case 6:
			panic("snap boom")
		}
		return nil
	}))
	_ = v.e.Register("steady", snapFactory(ev, h, nil))
	flaky, steady := v.create(t, "flaky", nil), v.create(t, "steady", nil)
	a, b := pres("a"), pres("b")
	if err := v.e.Join(context.Background(), flaky, a, nil); err != nil {
		t.Fatal(err)
	}
	if err := v.e.Join(context.Background(), steady, b, nil); err != nil {
		t.Fatal(err)
	}

	// An error skips that snapshot, logged; the match goes on.
	v.clock.Advance(400 * time.Millisecond)
	if got := snaps.take(flaky); len(got) != 2 || got[0].Tick != 0 || got[1].Tick != 4 || string(got[1].Data) != "loops=4" {
		t.Errorf("flaky snapshots: %+v", got)
	}
	logs := v.logs.String()
	for _, want := range []string{"match_id=" + flaky, "disk on fire", "tick=2"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if _, ok := v.e.Get(flaky); !ok {
		t.Fatal("a snapshot error ended the match")
	}

	// A panic ends only that match, like a handler's, with no final
	// snapshot.
	v.clock.Advance(200 * time.Millisecond)
	sum := <-v.ends
	if sum.ID != flaky || sum.Results.Reason != string(match.ReasonMatchError) {
		t.Errorf("summary: %+v", sum)
	}
	if c := v.sender.Closed(); len(c) != 1 || c[0].Who != a || c[0].Reason != match.ReasonMatchError {
		t.Errorf("closes: %+v", c)
	}
	if got := snaps.take(flaky); len(got) != 0 {
		t.Errorf("snapshots of the crashed match: %+v", got)
	}
	if logs := v.logs.String(); !strings.Contains(logs, "snap boom") {
		t.Errorf("the panic was not logged:\n%s", logs)
	}
	if _, ok := v.e.Get(flaky); ok {
		t.Error("the crashed match is still listed")
	}
	var ticks []uint64
	for _, s := range snaps.take(steady) {
		ticks = append(ticks, s.Tick)
	}
	if fmt.Sprint(ticks) != "[0 2 4 6]" {
		t.Errorf("steady snapshots at ticks %v", ticks)
	}
	if b, err := v.e.Snapshot(context.Background(), steady); err != nil || string(b) != "loops=6" {
		t.Errorf("Engine.Snapshot = %q, %v", b, err)
	}
}

func TestFinalSnapshotOnly(t *testing.T) {
	if _, err := match.NewEngine(match.Config{Sender: matchtest.Discard{}, SnapshotEvery: -1}); err == nil {
		t.Error("negative SnapshotEvery accepted")
	}
	ev := &events{}
	snaps := &snapLog{ev: ev}
	v := newEnv(t, match.Config{OnSnapshot: snaps.on, ShutdownGrace: time.Second})
	h := &hooks{
		settings:  match.Settings{TickRate: 10, MaxPlayers: 4},
		terminate: func(d *match.Dispatcher, _ time.Duration) { _ = d.End(match.Results{Reason: "bye"}) },
	}
	_ = v.e.Register("snap", snapFactory(ev, h, nil))
	_ = v.e.Register("plain", factory(ev, h)) // not a Snapshotter
	_ = v.e.Register("broken", snapFactory(ev, h, func(int) error { panic("final boom") }))
	id := v.create(t, "snap", nil)
	plain, broken := v.create(t, "plain", nil), v.create(t, "broken", nil)
	if err := v.e.Join(context.Background(), broken, pres("c"), nil); err != nil {
		t.Fatal(err)
	}
	v.clock.Advance(time.Second)
	if got := snaps.take(id); len(got) != 0 {
		t.Fatalf("periodic snapshots with SnapshotEvery 0: %+v", got)
	}
	if err := v.e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := snaps.take(id); len(got) != 1 || !got[0].Final || got[0].Tick != 10 || string(got[0].Data) != "loops=10" {
		t.Errorf("final snapshot: %+v", got)
	}
	if got := snaps.take(plain); len(got) != 0 {
		t.Errorf("snapshots of a handler that is not a Snapshotter: %+v", got)
	}
	// A panic in the final snapshot is logged; the match ends as it was.
	if got := snaps.take(broken); len(got) != 0 {
		t.Errorf("snapshots of the broken match: %+v", got)
	}
	if c := v.sender.Closed(); len(c) != 1 || c[0].Reason != match.ReasonMatchEnded {
		t.Errorf("closes: %+v", c)
	}
	for range 3 {
		if s := <-v.ends; s.Results.Reason != "bye" {
			t.Errorf("summary: %+v", s)
		}
	}
	if logs := v.logs.String(); !strings.Contains(logs, "final boom") || !strings.Contains(logs, "match_id="+broken) {
		t.Errorf("the final snapshot's panic was not logged:\n%s", logs)
	}
}
