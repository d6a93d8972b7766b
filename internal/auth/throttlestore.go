package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/internal/kv"
)

// Defaults of the throttles' in-process fallback.
const (
	// DefaultThrottleFallback is the fraction of every throttle limit
	// applied while the shared store is unreachable: half, as the request
	// rate limits (ratelimit.DefaultFallback) and for the same reason:
	// each node then counts on its own.
	DefaultThrottleFallback = 0.5
	// throttleRetryEvery is how often a degraded throttle store tries the
	// shared store again (one operation at a time).
	throttleRetryEvery = time.Second
)

// fallbackCounters is the throttles' store: the shared one (Redis,
// DynamoDB) while it answers, the in-process one (Deps.FallbackKV) while
// it does not,
// so the throttles never fail open on a store outage. The first failure
// logs once and marks the store degraded; then every operation goes to the
// in-process counters except one per throttleRetryEvery, which tries the
// shared store again, and the first success ends the outage (logged).
// Counts made in-process stay there: when the shared store is back, the
// limits count from its values again.
type fallbackCounters struct {
	shared Counters
	local  Counters
	now    func() time.Time
	log    *slog.Logger

	down      atomic.Bool
	downSince atomic.Int64 // Unix nanoseconds
	nextProbe atomic.Int64 // Unix nanoseconds
	lastErr   atomic.Pointer[string]

	sharedErrors atomic.Int64 // operations the shared store failed
	localOps     atomic.Int64 // operations answered in-process
	outages      atomic.Int64
}

func newFallbackCounters(shared, local Counters, now func() time.Time, log *slog.Logger) *fallbackCounters {
	return &fallbackCounters{shared: shared, local: local, now: now, log: log}
}

// answer reports whether err is the store's answer (a missing key), not
// a failure to reach it.
func answer(err error) bool { return err == nil || errors.Is(err, kv.ErrNotFound) }

// route runs op on the shared store, or on the in-process one while the
// shared one is unreachable.
func route[T any](ctx context.Context, c *fallbackCounters, op func(Counters) (T, error)) (T, error) {
	now := c.now()
	if c.down.Load() {
		probe := c.nextProbe.Load()
		if now.UnixNano() < probe || !c.nextProbe.CompareAndSwap(probe, now.Add(throttleRetryEvery).UnixNano()) {
			c.localOps.Add(1)
			return op(c.local)
		}
	}
	v, err := op(c.shared)
	if answer(err) {
		c.markUp(now)
		return v, err
	}
	if ctx.Err() != nil { // the caller gave up: not the store's fault
		return v, err
	}
	c.markDown(now, err)
	c.localOps.Add(1)
	return op(c.local)
}

func (c *fallbackCounters) markDown(now time.Time, err error) {
	c.sharedErrors.Add(1)
	msg := err.Error()
	c.lastErr.Store(&msg)
	c.nextProbe.Store(now.Add(throttleRetryEvery).UnixNano())
	if c.down.CompareAndSwap(false, true) {
		c.downSince.Store(now.UnixNano())
		c.outages.Add(1)
		c.log.Error("login throttles: key-value store unreachable; counting in-process at a stricter limit until it answers", "err", err)
	}
}

func (c *fallbackCounters) markUp(now time.Time) {
	if c.down.Load() && c.down.CompareAndSwap(true, false) {
		c.log.Info("login throttles: key-value store reachable again; shared counts restored",
			"degraded_for", now.Sub(time.Unix(0, c.downSince.Load())).Round(time.Millisecond))
	}
}

func (c *fallbackCounters) Get(ctx context.Context, key string) (kv.Item, error) {
	return route(ctx, c, func(s Counters) (kv.Item, error) { return s.Get(ctx, key) })
}

func (c *fallbackCounters) Put(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	return route(ctx, c, func(s Counters) (uint64, error) { return s.Put(ctx, key, value, ttl) })
}

func (c *fallbackCounters) Delete(ctx context.Context, key string) error {
	_, err := route(ctx, c, func(s Counters) (struct{}, error) { return struct{}{}, s.Delete(ctx, key) })
	return err
}

func (c *fallbackCounters) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	return route(ctx, c, func(s Counters) (int64, error) { return s.Incr(ctx, key, delta, ttl) })
}

// degraded returns nil while the shared store answers, else why not and
// since when. When a retry is due it tries the shared store itself, so an
// idle node notices the recovery too.
func (c *fallbackCounters) degraded(ctx context.Context, fraction float64) error {
	if !c.down.Load() {
		return nil
	}
	if _, err := c.Get(ctx, "throttle:probe"); answer(err) && !c.down.Load() {
		return nil
	}
	reason := ""
	if p := c.lastErr.Load(); p != nil {
		reason = ": " + *p
	}
	since := time.Unix(0, c.downSince.Load()).UTC().Format(time.RFC3339)
	return fmt.Errorf("key-value store unreachable since %s%s; login throttles and sign-up limits counting in-process at %g of their limits", since, reason, fraction)
}
