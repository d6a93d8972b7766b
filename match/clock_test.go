package match

import (
	"testing"
	"time"
)

func wheelCount() int {
	wheels.mu.Lock()
	defer wheels.mu.Unlock()
	return len(wheels.m)
}

// TestSystemClockWheel: tickers of one period share a wheel, spread over
// its slots; each ticks at its period; Stop ends the ticks, and the wheel's
// goroutine ends with its last ticker.
func TestSystemClockWheel(t *testing.T) {
	before := wheelCount()
	const period = 20 * time.Millisecond
	var ts []Ticker
	for range 40 { // 20 slots of 1 ms
		ts = append(ts, SystemClock().NewTicker(period))
	}
	if got := wheelCount(); got != before+1 {
		t.Fatalf("%d wheels for one period", got-before)
	}
	w := ts[0].(*wheelTicker).w
	w.mu.Lock()
	for i, s := range w.slots {
		if len(s) != 2 {
			t.Errorf("slot %d holds %d tickers, want 2 (least loaded first)", i, len(s))
		}
	}
	w.mu.Unlock()

	// Count the ticks of one ticker over 20 periods.
	start := time.Now()
	n := 0
	for time.Since(start) < 20*period {
		select {
		case <-ts[0].C():
			n++
		case <-time.After(5 * period):
			t.Fatal("no tick")
		}
	}
	if n < 15 || n > 22 {
		t.Errorf("%d ticks in 20 periods", n)
	}
	for _, tk := range ts {
		tk.Stop()
		tk.Stop() // idempotent
	}
	select {
	case <-ts[0].C():
		t.Fatal("a tick after Stop")
	case <-time.After(3 * period):
	}
	if got := wheelCount(); got != before {
		t.Fatalf("the wheel outlived its tickers (%d wheels)", got)
	}
	select {
	case <-w.quit:
	default:
		t.Fatal("wheel goroutine not told to quit")
	}
}
