package cache_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/redistest"
)

// coherenceBound is how long a test waits for another node's write to show.
const coherenceBound = time.Second

// twoNodes returns two Near caches on the machine Redis, each with its own
// client (two nodes), sharing a prefix and channel.
func twoNodes(t *testing.T, opts cache.NearOptions) (a, b *cache.Near) {
	t.Helper()
	url := redistest.URL(t)
	prefix := redistest.Prefix(t)
	if opts.Logger == nil {
		opts.Logger = discard()
	}
	a = newNear(t, newRedisPrefix(t, newClient(t, url), prefix, 0), opts)
	b = newNear(t, newRedisPrefix(t, newClient(t, url), prefix, 0), opts)
	return a, b
}

// waitFor polls cond until it holds or bound passes, and returns the time
// it took.
func waitFor(t *testing.T, what string, bound time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not seen within %v", what, bound)
		}
		time.Sleep(50 * time.Microsecond)
	}
	return time.Since(start)
}

// cachedNear reads key twice on n and checks that the second read was a
// near hit.
func cachedNear(t *testing.T, n *cache.Near, key, want string) {
	t.Helper()
	for i := range 2 {
		v, ok, err := n.Get(ctx, key)
		if err != nil || !ok || string(v) != want {
			t.Fatalf("Get(%q) #%d: got %q, %v, %v; want %q", key, i, v, ok, err, want)
		}
	}
	before := n.Stats().Hits
	if _, _, err := n.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n.Stats().Hits != before+1 {
		t.Fatalf("Get(%q) was not served by the near tier", key)
	}
}

func TestNearCrossNodeInvalidation(t *testing.T) {
	a, b := twoNodes(t, cache.NearOptions{})
	get := func(key string) (string, bool) {
		v, ok, err := a.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return string(v), ok
	}

	// Set on B: A stops serving its near copy.
	if err := b.Set(ctx, "k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	cachedNear(t, a, "k", "v1")
	if err := b.Set(ctx, "k", []byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, "B's Set on A", coherenceBound, func() bool { v, _ := get("k"); return v == "v2" })
	t.Logf("B's Set seen on A after %v", d)

	// Delete on B.
	cachedNear(t, a, "k", "v2")
	if err := b.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, "B's Delete on A", coherenceBound, func() bool { _, ok := get("k"); return !ok })
	t.Logf("B's Delete seen on A after %v", d)

	// Expire on B: A's near copy must not outlive the new expiry.
	if err := b.Set(ctx, "e", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	cachedNear(t, a, "e", "v")
	inv := a.Stats().Invalidations
	if ok, err := b.Expire(ctx, "e", 30*time.Millisecond); err != nil || !ok {
		t.Fatalf("Expire: got %v, %v; want true, nil", ok, err)
	}
	d = waitFor(t, "B's Expire on A", coherenceBound, func() bool { return a.Stats().Invalidations > inv })
	t.Logf("B's Expire seen on A after %v", d)
	waitFor(t, "expiry on A", coherenceBound, func() bool { _, ok := get("e"); return !ok })

	// The writer's own near tier never serves the old value.
	_ = b.Set(ctx, "own", []byte("1"), 0)
	cachedNear(t, b, "own", "1")
	_ = b.Set(ctx, "own", []byte("2"), 0)
	if v, _, _ := b.Get(ctx, "own"); string(v) != "2" {
		t.Fatalf("writer's Get after its Set: got %q, want 2", v)
	}
}

func TestNearMaxAgeBoundsLostInvalidations(t *testing.T) {
	url := redistest.URL(t)
	raw := newClient(t, url)
	r := newRedis(t, newClient(t, url), 0)
	const maxAge = 200 * time.Millisecond
	n := newNear(t, r, cache.NearOptions{MaxAge: maxAge, Logger: discard()})
	if err := n.Set(ctx, "k", []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	cachedNear(t, n, "k", "old")
	// A write that bypasses the channel (another program, or a lost
	// message).
	if err := raw.Set(ctx, r.Prefix()+"k", "new", 0).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if v, _, _ := n.Get(ctx, "k"); string(v) != "old" {
		t.Fatalf("Get right after an unpublished write: got %q, want the near copy old", v)
	}
	waitFor(t, "unpublished write", maxAge+time.Second, func() bool {
		v, _, _ := n.Get(ctx, "k")
		return string(v) == "new"
	})
	if d := time.Since(start); d > maxAge+200*time.Millisecond {
		t.Fatalf("stale near copy served for %v, want at most MaxAge %v (+ margin)", d, maxAge)
	}
	t.Logf("unpublished write seen after %v (MaxAge %v)", time.Since(start), maxAge)
}

// TestNearRedisDown: a Typed cache over a Near over a private Redis keeps
// serving from the loader while Redis is down, within the timeout, and
// caches again after Redis comes back.
func TestNearRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 200 * time.Millisecond
	r, err := cache.NewRedis(cache.RedisOptions{Client: newClient(t, srv.URL()), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	n := newNear(t, r, cache.NearOptions{HealthInterval: 200 * time.Millisecond, Logger: discard()})
	reg, m := newMetrics(t)
	c := cache.NewTyped[string](n, "fault", 1, cache.TypedOptions{Metrics: m, Logger: discard()})
	var loads int
	load := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { loads++; return v, nil }
	}
	getOrLoad := func(key, v string) string {
		t.Helper()
		start := time.Now()
		got, err := c.GetOrLoad(ctx, key, time.Minute, load(v))
		if took := time.Since(start); took > timeout+300*time.Millisecond {
			t.Fatalf("GetOrLoad(%q) took %v, want at most the timeout %v (+ margin)", key, took, timeout)
		}
		if err != nil {
			t.Fatalf("GetOrLoad(%q): %v", key, err)
		}
		return got
	}

	getOrLoad("a", "A") // load, write to Redis
	getOrLoad("a", "A") // Redis hit, kept near
	getOrLoad("a", "A") // near hit
	if loads != 1 || n.Stats().Hits == 0 {
		t.Fatalf("before the fault: got %d loads and %d near hits, want 1 load and near hits", loads, n.Stats().Hits)
	}

	srv.Stop()
	d := waitFor(t, "near tier off after Redis stopped", 2*time.Second, func() bool { return !n.Stats().Subscribed })
	t.Logf("near tier off %v after Redis stopped", d)
	for i := range 5 {
		key := fmt.Sprintf("down-%d", i%2)
		if got := getOrLoad(key, "D"); got != "D" {
			t.Fatalf("GetOrLoad(%q) with Redis down: got %q, want D", key, got)
		}
	}
	if got := counter(t, reg, "backend_errors_total", "fault"); got < 5 {
		t.Fatalf("backend_errors_total with Redis down: got %v, want at least 5", got)
	}

	srv.Restart()
	restarted := time.Now()
	// Redis answers again: the loaded value is cached in Redis, then near.
	waitFor(t, "caching after restart", 3*time.Second, func() bool {
		before := loads
		getOrLoad("b", "B")
		return loads == before
	})
	t.Logf("Redis hits %v after the restart", time.Since(restarted))
	waitFor(t, "near tier back on", 3*time.Second, func() bool { return n.Stats().Subscribed })
	t.Logf("near tier on %v after the restart", time.Since(restarted))
	getOrLoad("b", "B")
	hits := n.Stats().Hits
	getOrLoad("b", "B")
	if n.Stats().Hits != hits+1 {
		t.Fatal("near tier not serving after the restart")
	}

	srv.Stop()
	start := time.Now()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close with Redis down took %v", took)
	}
}

// freezer is a TCP proxy to a Redis that can go silent (a partition: no
// error, no answer), the case only the subscriber's health check detects.
type freezer struct {
	frozen atomic.Bool
	addr   string
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	// While frozen, bytes are held (as TCP would through a partition), not
	// dropped.
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				_ = dst.Close()
				return
			}
			for f.frozen.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				_ = src.Close()
				return
			}
		}
	}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			track(c)
			track(up)
			wg.Go(func() { pipe(up, c) })
			wg.Go(func() { pipe(c, up) })
		}
	})
	t.Cleanup(func() {
		f.frozen.Store(false)
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return f
}

// TestNearSilentSubscription: when the subscription goes silent, the health
// check turns the near tier off within about two HealthIntervals, and the
// node resynchronises (flushes) when it gets through again, so writes whose
// invalidations were lost are not served stale.
func TestNearSilentSubscription(t *testing.T) {
	url := redistest.URL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, opt.Addr)
	prefix := redistest.Prefix(t)
	const health = 100 * time.Millisecond
	viaProxy := newRedisPrefix(t, newClient(t, fmt.Sprintf("redis://%s/%d", f.addr, opt.DB)), prefix, 200*time.Millisecond)
	a := newNear(t, viaProxy, cache.NearOptions{HealthInterval: health, Logger: discard()})
	b := newNear(t, newRedisPrefix(t, newClient(t, url), prefix, 0), cache.NearOptions{Logger: discard()})

	if err := b.Set(ctx, "k", []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	cachedNear(t, a, "k", "old")
	f.frozen.Store(true)
	if err := b.Set(ctx, "k", []byte("new"), 0); err != nil { // A misses this message
		t.Fatal(err)
	}
	d := waitFor(t, "near tier off on a silent subscription", 2*time.Second, func() bool { return !a.Stats().Subscribed })
	t.Logf("silent subscription noticed after %v (HealthInterval %v)", d, health)
	if d > 3*health+200*time.Millisecond {
		t.Fatalf("silent subscription noticed after %v, want about 2 × HealthInterval %v", d, health)
	}
	f.frozen.Store(false)
	d = waitFor(t, "resubscribed", 3*time.Second, func() bool { return a.Stats().Subscribed })
	t.Logf("resubscribed %v after the partition healed", d)
	waitFor(t, "fresh value after resync", time.Second, func() bool {
		v, _, _ := a.Get(ctx, "k")
		return string(v) == "new"
	})
}
