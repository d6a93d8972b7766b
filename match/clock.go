package match

import "time"

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
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

// Now returns time.Now().
func (systemClock) Now() time.Time { return time.Now() }

// NewTicker wraps a time.Ticker.
func (systemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ t *time.Ticker }

// C returns the time.Ticker's channel.
func (t systemTicker) C() <-chan time.Time { return t.t.C }

// Done does nothing: real time does not wait for the consumer.
func (t systemTicker) Done() {}

// Stop stops the time.Ticker.
func (t systemTicker) Stop() { t.t.Stop() }
