package ratelimit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/ratelimit"
)

// clock is the package's fake clock: tests move time by hand.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// contractRules are the rules every backend is tested with.
var contractRules = ratelimit.Rules{
	"ten":   {Limit: 10, Period: time.Second},           // burst 10, one token per 100ms
	"burst": {Limit: 60, Period: time.Minute, Burst: 3}, // one per second, bursts of 3
	"off":   {},
	"slow":  {Limit: 1, Period: time.Hour},
}

type newLimiter func(t *testing.T, rules ratelimit.Rules, clk *clock) ratelimit.Limiter

// testContract is the one suite every Limiter passes.
func testContract(t *testing.T, mk newLimiter) {
	ctx := context.Background()
	allow := func(t *testing.T, l ratelimit.Limiter, class, subject string) ratelimit.Decision {
		t.Helper()
		d, err := l.Allow(ctx, class, subject)
		if err != nil {
			t.Fatalf("Allow(%s, %s): %v", class, subject, err)
		}
		return d
	}
	t.Run("burst then refuse", func(t *testing.T) {
		clk := newClock()
		l := mk(t, contractRules, clk)
		for i := range 3 {
			if d := allow(t, l, "burst", "a"); !d.Allowed {
				t.Fatalf("event %d refused, want allowed (burst 3)", i+1)
			}
		}
		d := allow(t, l, "burst", "a")
		if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
			t.Fatalf("4th event: got %+v, want refused with 0 < RetryAfter <= 1s", d)
		}
		clk.Advance(d.RetryAfter)
		if d := allow(t, l, "burst", "a"); !d.Allowed {
			t.Fatalf("after RetryAfter: got %+v, want allowed", d)
		}
		if d := allow(t, l, "burst", "a"); d.Allowed {
			t.Fatal("one token refilled, two events allowed")
		}
	})
	t.Run("burst defaults to limit", func(t *testing.T) {
		clk := newClock()
		l := mk(t, contractRules, clk)
		n := 0
		for allow(t, l, "ten", "a").Allowed {
			if n++; n > 100 {
				t.Fatal("no limit")
			}
		}
		if n != 10 {
			t.Fatalf("allowed %d at once, want 10", n)
		}
	})
	t.Run("steady rate", func(t *testing.T) {
		clk := newClock()
		l := mk(t, contractRules, clk)
		n := 0
		for range 200 { // 20 s at 10 attempts per second: 10 + 20 s x 1/s
			if allow(t, l, "burst", "a").Allowed {
				n++
			}
			clk.Advance(100 * time.Millisecond)
		}
		if n < 21 || n > 23 {
			t.Fatalf("allowed %d in 20s, want about 3 + 20", n)
		}
	})
	t.Run("refused events are not counted", func(t *testing.T) {
		clk := newClock()
		l := mk(t, contractRules, clk)
		allow(t, l, "slow", "a")
		for range 50 {
			allow(t, l, "slow", "a")
		}
		clk.Advance(time.Hour)
		if d := allow(t, l, "slow", "a"); !d.Allowed {
			t.Fatalf("after one period: got %+v, want allowed", d)
		}
	})
	t.Run("subjects and classes apart", func(t *testing.T) {
		clk := newClock()
		l := mk(t, contractRules, clk)
		allow(t, l, "slow", "a")
		if allow(t, l, "slow", "a").Allowed {
			t.Fatal("second slow event allowed")
		}
		if !allow(t, l, "slow", "b").Allowed {
			t.Fatal("subject b limited by a's events")
		}
		if !allow(t, l, "burst", "a").Allowed {
			t.Fatal("class burst limited by class slow")
		}
		// Subjects that could collide if keys were only concatenated.
		allow(t, l, "slow", "x:y")
		if !allow(t, l, "slow", "x").Allowed || !allow(t, l, "slow", "").Allowed {
			t.Fatal("subjects x:y, x and empty share a bucket")
		}
	})
	t.Run("off and unknown", func(t *testing.T) {
		l := mk(t, contractRules, newClock())
		for range 1000 {
			if !allow(t, l, "off", "a").Allowed {
				t.Fatal("an off rule refused")
			}
		}
		if _, err := l.Allow(ctx, "nope", "a"); !errors.Is(err, ratelimit.ErrUnknownClass) {
			t.Fatalf("unknown class: got %v, want ErrUnknownClass", err)
		}
	})
	t.Run("retry after is exact", func(t *testing.T) {
		clk := newClock()
		l := mk(t, contractRules, clk)
		allow(t, l, "slow", "a")
		clk.Advance(20 * time.Minute)
		d := allow(t, l, "slow", "a")
		if d.Allowed || d.RetryAfter < 40*time.Minute-time.Millisecond || d.RetryAfter > 40*time.Minute {
			t.Fatalf("got %+v, want refused, RetryAfter 40m", d)
		}
	})
	t.Run("concurrent checks count exactly", func(t *testing.T) {
		clk := newClock()
		l := mk(t, contractRules, clk)
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 10 {
					if d, err := l.Allow(ctx, "ten", "shared"); err == nil && d.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := allowed.Load(); n != 10 {
			t.Fatalf("80 concurrent events: %d allowed, want exactly 10", n)
		}
	})
	t.Run("AllowAll counts each check", func(t *testing.T) {
		clk := newClock()
		l := mk(t, contractRules, clk).(interface {
			AllowAll(context.Context, []ratelimit.Check) ([]ratelimit.Decision, error)
		})
		checks := []ratelimit.Check{{Class: "burst", Subject: "a"}, {Class: "slow", Subject: "a"}, {Class: "off", Subject: "a"}}
		var got [][2]bool
		for range 4 {
			ds, err := l.AllowAll(ctx, checks)
			if err != nil || len(ds) != 3 || !ds[2].Allowed {
				t.Fatalf("AllowAll = %+v, %v; want 3 decisions, the off class allowed", ds, err)
			}
			got = append(got, [2]bool{ds[0].Allowed, ds[1].Allowed})
		}
		// burst: 3 then refused; slow: 1 then refused; each counted on its own.
		want := [][2]bool{{true, true}, {true, false}, {true, false}, {false, false}}
		if !slices.Equal(got, want) {
			t.Fatalf("AllowAll decisions (burst, slow) over 4 calls: %v, want %v", got, want)
		}
		if d, _ := l.AllowAll(ctx, []ratelimit.Check{{Class: "nope", Subject: "a"}}); d != nil {
			t.Fatal("AllowAll with an unknown class returned decisions")
		}
		if _, err := l.AllowAll(ctx, []ratelimit.Check{{Class: "nope", Subject: "a"}}); !errors.Is(err, ratelimit.ErrUnknownClass) {
			t.Fatalf("AllowAll with an unknown class: %v, want ErrUnknownClass", err)
		}
	})
}

func TestMemoryContract(t *testing.T) {
	testContract(t, func(t *testing.T, rules ratelimit.Rules, clk *clock) ratelimit.Limiter {
		return ratelimit.NewMemory(ratelimit.MemoryOptions{Rules: rules, Now: clk.Now})
	})
}

func TestRedisContract(t *testing.T) {
	client := sharedRedis(t)
	testContract(t, func(t *testing.T, rules ratelimit.Rules, clk *clock) ratelimit.Limiter {
		l := newRedis(t, client, rules, clk, nil)
		t.Cleanup(func() {
			if l.FallbackChecks.Load() != 0 {
				t.Errorf("%d checks fell back to memory: the Redis contract was not tested", l.FallbackChecks.Load())
			}
		})
		return l
	})
}
