package cache_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/cache"
)

// clock is a stepped clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestMemoryLRUEvictionByBytes(t *testing.T) {
	reg, m := newMetrics(t)
	clk := newClock()
	mem := cache.NewMemory(cache.MemoryOptions{MaxBytes: 100, Now: clk.Now, Metrics: m, Name: "lru"})
	val := bytes.Repeat([]byte("v"), 18) // 2-byte keys: 20 bytes an entry, 5 fit
	for i := range 5 {
		if err := mem.Set(ctx, fmt.Sprintf("k%d", i), val, 0); err != nil {
			t.Fatal(err)
		}
		clk.Step(time.Second)
	}
	if got := mem.Bytes(); got != 100 {
		t.Fatalf("Bytes: got %d, want 100", got)
	}
	if got := mem.Evictions(); got != 0 {
		t.Fatalf("Evictions before going over: got %d, want 0", got)
	}
	// Reading k0 makes k1 the least recently used.
	if _, ok, _ := mem.Get(ctx, "k0"); !ok {
		t.Fatal("k0 missing")
	}
	if err := mem.Set(ctx, "k5", val, 0); err != nil {
		t.Fatal(err)
	}
	present := func(want ...string) {
		t.Helper()
		for _, k := range []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6"} {
			_, ok, _ := mem.Get(ctx, k)
			if w := contains(want, k); ok != w {
				t.Fatalf("%s present: got %v, want %v (want present %v)", k, ok, w, want)
			}
		}
	}
	present("k0", "k2", "k3", "k4", "k5")
	if got := mem.Evictions(); got != 1 {
		t.Fatalf("Evictions: got %d, want 1", got)
	}
	// The Gets above touched k0, k2..k5 in that order: k0 is now coldest.
	// A 40-byte entry replacing a 20-byte one needs 20 more bytes: k0 goes.
	if err := mem.Set(ctx, "k5", bytes.Repeat([]byte("w"), 38), 0); err != nil {
		t.Fatal(err)
	}
	present("k2", "k3", "k4", "k5")
	if got, want := mem.Evictions(), uint64(2); got != want {
		t.Fatalf("Evictions: got %d, want %d", got, want)
	}
	if got := mem.Bytes(); got != 100 {
		t.Fatalf("Bytes: got %d, want 100", got)
	}
	// An entry over MaxBytes is not kept, and replaces the old value.
	if err := mem.Set(ctx, "k3", bytes.Repeat([]byte("x"), 99), 0); err != nil {
		t.Fatal(err)
	}
	present("k2", "k4", "k5")
	if got, want := mem.Evictions(), uint64(3); got != want {
		t.Fatalf("Evictions: got %d, want %d", got, want)
	}
	if got := counter(t, reg, "evictions_total", "lru"); got != 3 {
		t.Fatalf("evictions_total{cache=lru}: got %v, want 3", got)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestMemoryExpiryOnSteppedClock(t *testing.T) {
	clk := newClock()
	mem := cache.NewMemory(cache.MemoryOptions{MaxBytes: 1000, Now: clk.Now})
	if err := mem.Set(ctx, "k", []byte("v"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Sub-millisecond TTLs round up to the millisecond.
	if err := mem.Set(ctx, "tiny", []byte("v"), time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if d, ok, _ := mem.TTL(ctx, "tiny"); !ok || d != time.Millisecond {
		t.Fatalf("TTL(tiny): got %v, %v; want 1ms, true", d, ok)
	}
	clk.Step(10*time.Second - time.Nanosecond)
	if d, ok, _ := mem.TTL(ctx, "k"); !ok || d != time.Nanosecond {
		t.Fatalf("TTL just before expiry: got %v, %v; want 1ns, true", d, ok)
	}
	if _, ok, _ := mem.Get(ctx, "k"); !ok {
		t.Fatal("Get just before expiry: got missing, want present")
	}
	clk.Step(time.Nanosecond)
	if _, ok, _ := mem.Get(ctx, "k"); ok {
		t.Fatal("Get at expiry: got present, want missing")
	}
	if ok, _ := mem.Expire(ctx, "k", time.Hour); ok {
		t.Fatal("Expire after expiry: got true, want false")
	}

	// Lazy cleanup: expired entries at the cold end go on the next write,
	// and are not evictions.
	for i := range 3 {
		if err := mem.Set(ctx, fmt.Sprintf("e%d", i), []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	clk.Step(2 * time.Second)
	before := mem.Len()
	if err := mem.Set(ctx, "new", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if after := mem.Len(); after >= before+1 {
		t.Fatalf("Len after a write over expired entries: got %d, want below %d", after, before+1)
	}
	if got := mem.Evictions(); got != 0 {
		t.Fatalf("Evictions: got %d, want 0 (expired entries are not evictions)", got)
	}
}
