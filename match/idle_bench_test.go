//go:build !race

package match_test

import (
	"context"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// BenchmarkEmptyMatchTick is the cost of one tick of a match nobody is
// seated in (the quiet handler's Loop broadcasts to nobody), the engine's
// part of what idle matches cost until game.empty_timeout ends them; the
// system clock adds its timer wake-up. b.N ticks of 10 matches.
func BenchmarkEmptyMatchTick(b *testing.B) {
	clock := matchtest.NewClock(t0)
	e, err := match.NewEngine(match.Config{Sender: matchtest.Discard{}, Clock: clock, ShutdownGrace: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	}()
	if err := e.Register("quiet", func() match.Handler { return &quietHandler{} }); err != nil {
		b.Fatal(err)
	}
	const matches = 10
	for range matches {
		if _, err := e.Create(context.Background(), "quiet", nil); err != nil {
			b.Fatal(err)
		}
	}
	clock.Advance(100 * time.Millisecond)
	b.ResetTimer()
	for range b.N / matches {
		clock.Advance(100 * time.Millisecond) // one tick of each (10 Hz)
	}
}
