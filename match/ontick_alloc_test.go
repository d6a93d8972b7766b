//go:build !race

package match_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// quietHandler broadcasts a small state every tick and allocates nothing.
type quietHandler struct{ state [16]byte }

func (h *quietHandler) Init(*match.Dispatcher, match.Params) (match.Settings, error) {
	return match.Settings{TickRate: 10, MaxPlayers: 4}, nil
}
func (h *quietHandler) JoinAttempt(*match.Dispatcher, match.Presence, map[string]string) error {
	return nil
}
func (h *quietHandler) Join(*match.Dispatcher, match.Presence)                {}
func (h *quietHandler) Leave(*match.Dispatcher, match.Presence, match.Reason) {}
func (h *quietHandler) Terminate(*match.Dispatcher, time.Duration)            {}
func (h *quietHandler) Loop(d *match.Dispatcher, _ []match.Input) {
	h.state[0]++
	_ = d.Broadcast(1, h.state[:])
}

// The OnTick hook (timing the tick and calling the callback) adds no
// allocation to a tick. The race detector's sync.Pool drops items at random,
// so this runs without it only.
func TestOnTickDoesNotAllocate(t *testing.T) {
	clock := matchtest.NewClock(t0)
	var n atomic.Int64
	var sum atomic.Int64
	e, err := match.NewEngine(match.Config{
		Sender: matchtest.Discard{}, Clock: clock, ShutdownGrace: -1,
		OnTick: func(mode string, d time.Duration) {
			if mode == "quiet" {
				n.Add(1)
				sum.Add(int64(d))
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	}()
	if err := e.Register("quiet", func() match.Handler { return &quietHandler{} }); err != nil {
		t.Fatal(err)
	}
	id, err := e.Create(context.Background(), "quiet", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b"} {
		if err := e.Join(context.Background(), id, pres(u), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 { // warm up the frame pool
		clock.Advance(100 * time.Millisecond)
	}
	allocs := testing.AllocsPerRun(200, func() { clock.Advance(100 * time.Millisecond) })
	if allocs > 0 {
		t.Errorf("%.2f allocations per tick with OnTick set, want 0", allocs)
	}
	if got := n.Load(); got != 50+201 || sum.Load() <= 0 {
		t.Errorf("OnTick saw %d ticks (total %v), want %d ticks and a positive total", got, time.Duration(sum.Load()), 50+201)
	}
}
