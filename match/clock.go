package match

import (
	"sync"
	"time"
)

// Clock is the engine's only source of time: the time the dispatcher
// reports, input timestamps, rate limiting, grace periods and the tick
// tickers. [SystemClock] is the real one; matchtest.Clock is stepped by hand
// in tests.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a ticker firing every d, starting d from now.
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks to one match.
type Ticker interface {
	// C returns the channel the ticks arrive on.
	C() <-chan time.Time
	// Done is called by the engine once it has fully processed a tick
	// received from C (the Loop callback and everything it caused). Real
	// tickers ignore it; a manual clock uses it to know when a stepped
	// tick is finished.
	Done()
	// Stop stops the ticker. No tick is delivered after Stop returns.
	Stop()
}

// SystemClock returns the real clock, backed by package time. Like
// [time.Ticker], its tickers drop ticks for a match that falls behind rather
// than queueing them.
//
// Tickers of the same period share one timer: a wheel of a few slots per
// period (1 ms apart, at most 50), each new ticker joining the least loaded
// slot. A server with hundreds of matches at 20 Hz then wakes a handful of
// times per period instead of once per match and tick (each OS-level
// wake-up costs a context switch), while matches stay spread over the
// period rather than all ticking, and sending, at once.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

// Now returns time.Now().
func (systemClock) Now() time.Time { return time.Now() }

// NewTicker returns a ticker of period d on the shared wheel of that
// period. Its first tick comes when its slot next comes round (within d).
func (systemClock) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("match: non-positive ticker period")
	}
	wheels.mu.Lock()
	defer wheels.mu.Unlock()
	w := wheels.m[d]
	if w == nil {
		if wheels.m == nil {
			wheels.m = map[time.Duration]*wheel{}
		}
		w = newWheel(d)
		wheels.m[d] = w
		go w.run() // exits when its last ticker stops
	}
	t := &wheelTicker{w: w, c: make(chan time.Time, 1)}
	w.add(t)
	return t
}

// wheels holds the running wheel of each period.
var wheels struct {
	mu sync.Mutex
	m  map[time.Duration]*wheel
}

// wheel fires the tickers of one period from one goroutine.
type wheel struct {
	period, slot time.Duration
	mu           sync.Mutex
	slots        [][]*wheelTicker
	n            int           // tickers on the wheel
	quit         chan struct{} // closed when the last ticker stops
}

func newWheel(period time.Duration) *wheel {
	n := min(max(int(period/time.Millisecond), 1), 50)
	return &wheel{period: period, slot: period / time.Duration(n), slots: make([][]*wheelTicker, n), quit: make(chan struct{})}
}

func (w *wheel) add(t *wheelTicker) {
	w.mu.Lock()
	defer w.mu.Unlock()
	best := 0
	for i := range w.slots {
		if len(w.slots[i]) < len(w.slots[best]) {
			best = i
		}
	}
	t.slot = best
	w.slots[best] = append(w.slots[best], t)
	w.n++
}

func (w *wheel) run() {
	tk := time.NewTicker(w.slot)
	defer tk.Stop()
	start := time.Now()
	next := 0 // the next slot number (counted from start) to fire
	for {
		select {
		case <-w.quit:
			return
		case now := <-tk.C:
			due := int(now.Sub(start) / w.slot)
			if due-next >= len(w.slots) {
				next = due - len(w.slots) + 1 // a period late: each slot fires once
			}
			w.mu.Lock()
			for ; next <= due; next++ {
				for _, t := range w.slots[next%len(w.slots)] {
					select {
					case t.c <- now:
					default: // the match is behind: drop, like time.Ticker
					}
				}
			}
			w.mu.Unlock()
		}
	}
}

// wheelTicker is one match's ticker on a wheel.
type wheelTicker struct {
	w    *wheel
	c    chan time.Time
	slot int // under w.mu
	gone bool
}

// C returns the channel the ticks arrive on.
func (t *wheelTicker) C() <-chan time.Time { return t.c }

// Done does nothing: real time does not wait for the consumer.
func (t *wheelTicker) Done() {}

// Stop takes the ticker off its wheel; the wheel's goroutine ends with its
// last ticker.
func (t *wheelTicker) Stop() {
	wheels.mu.Lock()
	defer wheels.mu.Unlock()
	w := t.w
	w.mu.Lock()
	if t.gone {
		w.mu.Unlock()
		return
	}
	t.gone = true
	s := w.slots[t.slot]
	for i, x := range s {
		if x == t {
			s[i] = s[len(s)-1]
			s[len(s)-1] = nil
			w.slots[t.slot] = s[:len(s)-1]
			break
		}
	}
	w.n--
	last := w.n == 0
	w.mu.Unlock()
	select {
	case <-t.c: // no tick is received after Stop
	default:
	}
	if last {
		close(w.quit)
		delete(wheels.m, w.period)
	}
}
