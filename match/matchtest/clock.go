// Package matchtest helps test match handlers and the engine
// deterministically: a [Clock] stepped by hand whose Advance returns only
// once every match has fully processed the ticks it fired, and a [Sender]
// that records what the engine sends.
package matchtest

import (
	"sync"
	"time"

	"github.com/multijuego/multijuego/match"
)

// Clock is a manual [match.Clock]. Time moves only when Advance is called.
// It is safe for concurrent use; Advance calls are serialised.
type Clock struct {
	adv sync.Mutex // serialises Advance

	mu      sync.Mutex
	now     time.Time
	tickers []*ticker
	due     []*ticker
}

// NewClock returns a manual clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker returns a ticker that fires every d, first at Now()+d.
func (c *Clock) NewTicker(d time.Duration) match.Ticker {
	if d <= 0 {
		panic("matchtest: non-positive ticker period")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &ticker{
		c:       c,
		period:  d,
		next:    c.now.Add(d),
		ch:      make(chan time.Time, 1),
		ack:     make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	c.tickers = append(c.tickers, t)
	return t
}

// Advance moves the clock forward by d. Every tick falling within that span
// is fired in time order (tickers due at the same instant together), and
// Advance waits after each instant until every ticker it fired has been
// fully processed (its consumer called Done) or stopped. So when Advance
// returns, every match has run every Loop due by the new time, and what
// those callbacks caused (frames, kicks, the end of a match) is done.
func (c *Clock) Advance(d time.Duration) {
	c.adv.Lock()
	defer c.adv.Unlock()
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var at time.Time
		found := false
		for _, t := range c.tickers {
			if !t.next.After(target) && (!found || t.next.Before(at)) {
				at, found = t.next, true
			}
		}
		if !found {
			c.now = target
			c.mu.Unlock()
			return
		}
		c.now = at
		c.due = c.due[:0]
		for _, t := range c.tickers {
			if t.next.Equal(at) {
				t.next = t.next.Add(t.period)
				c.due = append(c.due, t)
			}
		}
		due := c.due
		c.mu.Unlock()
		for _, t := range due {
			select {
			case t.ch <- at:
			case <-t.stopped:
			}
		}
		for _, t := range due {
			select {
			case <-t.ack:
			case <-t.stopped:
			}
		}
	}
}

// Tickers returns the number of live tickers (running matches, in an engine
// using this clock).
func (c *Clock) Tickers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickers)
}

type ticker struct {
	c       *Clock
	period  time.Duration
	next    time.Time // guarded by c.mu
	ch      chan time.Time
	ack     chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// C returns the channel Advance sends ticks on.
func (t *ticker) C() <-chan time.Time { return t.ch }

// Done lets Advance know the last tick was processed.
func (t *ticker) Done() {
	select {
	case t.ack <- struct{}{}:
	default:
	}
}

// Stop removes the ticker from the clock; an Advance waiting on it moves on.
func (t *ticker) Stop() {
	t.once.Do(func() {
		t.c.mu.Lock()
		for i, x := range t.c.tickers {
			if x == t {
				t.c.tickers = append(t.c.tickers[:i], t.c.tickers[i+1:]...)
				break
			}
		}
		t.c.mu.Unlock()
		close(t.stopped)
	})
}
