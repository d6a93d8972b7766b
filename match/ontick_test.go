package match_test

import (
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
)

// Config.OnTick is called once per tick, on the match goroutine, with the
// mode and the real time the tick took (the manual clock stands still, so a
// positive duration can only come from the real clock). The tick that ends
// the match is not reported.
func TestOnTickReportsEachTick(t *testing.T) {
	type call struct {
		mode string
		d    time.Duration
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	taken := func() []call {
		mu.Lock()
		defer mu.Unlock()
		return append([]call(nil), calls...)
	}
	v := newEnv(t, match.Config{OnTick: func(mode string, d time.Duration) {
		mu.Lock()
		calls = append(calls, call{mode, d})
		mu.Unlock()
	}})
	const work = 2 * time.Millisecond
	ev := &events{}
	if err := v.e.Register("timed", factory(ev, &hooks{loop: func(d *match.Dispatcher, _ []match.Input) {
		time.Sleep(work) // real time spent in the tick
		if d.Tick() == 4 {
			_ = d.End(match.Results{Reason: "done"})
		}
	}})); err != nil {
		t.Fatal(err)
	}
	v.create(t, "timed", nil)
	if got := taken(); len(got) != 0 {
		t.Fatalf("OnTick called %d times before any tick", len(got))
	}
	for i := 1; i <= 3; i++ {
		v.clock.Advance(100 * time.Millisecond) // returns once the tick is fully processed
		got := taken()
		if len(got) != i {
			t.Fatalf("after %d ticks OnTick was called %d times", i, len(got))
		}
		if c := got[i-1]; c.mode != "timed" || c.d < work {
			t.Errorf("tick %d: OnTick(%q, %v), want mode timed and a duration of at least %v", i, c.mode, c.d, work)
		}
	}
	v.clock.Advance(100 * time.Millisecond) // tick 4 ends the match
	select {
	case <-v.ends:
	case <-time.After(5 * time.Second):
		t.Fatal("the match did not end")
	}
	if got := taken(); len(got) != 3 {
		t.Errorf("OnTick called %d times in all, want 3 (the ending tick is not reported)", len(got))
	}
}
