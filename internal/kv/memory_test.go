package kv_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/kv"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func TestMemoryInjectedClock(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := kv.NewMemory(kv.MemoryOptions{Now: clk.Now})
	defer m.Close()
	if _, err := m.Put(ctx, "k", []byte("v"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := m.Incr(ctx, "c", 1, 10*time.Second); err != nil || n != 1 {
		t.Fatalf("Incr: got %d, %v; want 1, nil", n, err)
	}
	it, err := m.Get(ctx, "k")
	if want := clk.Now().Add(10 * time.Second); err != nil || !it.ExpiresAt.Equal(want) {
		t.Fatalf("Get: got %v, %v; want ExpiresAt %v", it.ExpiresAt, err, want)
	}
	clk.Advance(10*time.Second - time.Millisecond)
	if n, err := m.Incr(ctx, "c", 1, time.Hour); err != nil || n != 2 {
		t.Fatalf("Incr just before expiry: got %d, %v; want 2, nil", n, err)
	}
	clk.Advance(time.Millisecond) // exactly at the expiry: gone
	for _, k := range []string{"k", "c"} {
		if _, err := m.Get(ctx, k); !errors.Is(err, kv.ErrNotFound) {
			t.Fatalf("Get(%s) at its expiry: got %v, want ErrNotFound", k, err)
		}
	}
	if m.Len() != 0 {
		t.Fatalf("Len after expired reads: got %d, want 0 (dropped when met)", m.Len())
	}
}

func TestMemoryJanitor(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := kv.NewMemory(kv.MemoryOptions{Now: clk.Now, SweepInterval: 5 * time.Millisecond})
	defer m.Close()
	for _, k := range []string{"a", "b", "c"} {
		if _, err := m.Put(ctx, k, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Put(ctx, "keep", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Put(ctx, "later", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for m.Len() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("Len after the janitor's sweeps: got %d, want 2", m.Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMemoryFull(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := kv.NewMemory(kv.MemoryOptions{MaxItems: 3, Now: clk.Now})
	defer m.Close()
	if _, err := m.Put(ctx, "a", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Incr(ctx, "counter", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := m.PutIfAbsent(ctx, "short", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	// Full: new keys are refused by every write, live items stay.
	if _, err := m.Put(ctx, "new", []byte("v"), 0); !errors.Is(err, kv.ErrFull) {
		t.Fatalf("Put of a new key when full: got %v, want ErrFull", err)
	}
	if _, err := m.PutIfAbsent(ctx, "new", []byte("v"), 0); !errors.Is(err, kv.ErrFull) {
		t.Fatalf("PutIfAbsent of a new key when full: got %v, want ErrFull", err)
	}
	if _, err := m.Incr(ctx, "new", 1, 0); !errors.Is(err, kv.ErrFull) {
		t.Fatalf("Incr of a new key when full: got %v, want ErrFull", err)
	}
	// Existing keys can still be written.
	if _, err := m.Put(ctx, "a", []byte("w"), 0); err != nil {
		t.Fatalf("Put of an existing key when full: got %v, want nil", err)
	}
	if n, err := m.Incr(ctx, "counter", 1, 0); err != nil || n != 2 {
		t.Fatalf("Incr of an existing key when full: got %d, %v; want 2, nil", n, err)
	}
	// Once an item has expired, it makes room.
	clk.Advance(time.Second)
	if _, err := m.Put(ctx, "new", []byte("v"), 0); err != nil {
		t.Fatalf("Put of a new key after an expiry: got %v, want nil", err)
	}
	if _, err := m.Put(ctx, "newer", []byte("v"), 0); !errors.Is(err, kv.ErrFull) {
		t.Fatalf("Put of a new key when full again: got %v, want ErrFull", err)
	}
	// So does a Delete.
	if err := m.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Put(ctx, "newer", []byte("v"), 0); err != nil {
		t.Fatalf("Put of a new key after a Delete: got %v, want nil", err)
	}
	if it, err := m.Get(ctx, "counter"); err != nil || string(it.Value) != "2" {
		t.Fatalf("the counter: got %q, %v; want \"2\" (never evicted)", it.Value, err)
	}
}

func TestMemoryClose(t *testing.T) {
	t.Parallel()
	m := kv.NewMemory(kv.MemoryOptions{SweepInterval: time.Millisecond})
	for range 2 {
		if err := m.Close(); err != nil {
			t.Fatalf("Close: got %v, want nil", err)
		}
	}
	if _, err := m.Put(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatalf("Put after Close: got %v, want nil", err)
	}
}

func TestMemoryCanceledContext(t *testing.T) {
	t.Parallel()
	m := kv.NewMemory(kv.MemoryOptions{})
	defer m.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Put(cctx, "k", []byte("v"), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a canceled context: got %v, want context.Canceled", err)
	}
}
