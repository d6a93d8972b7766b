package cache_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/logtest"
)

type profile struct {
	Name  string `json:"name"`
	Level int    `json:"level"`
}

func TestTypedRoundTrip(t *testing.T) {
	reg, m := newMetrics(t)
	c := cache.NewTyped[profile](cache.NewMemory(cache.MemoryOptions{}), "profiles", 1, cache.TypedOptions{Metrics: m})
	want := profile{"ana", 7}
	if err := c.Set(ctx, "ana", want, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(ctx, "ana")
	if err != nil || !ok || got != want {
		t.Fatalf("Get: got %+v, %v, %v; want %+v, true, nil", got, ok, err, want)
	}
	if _, ok, _ := c.Get(ctx, "bob"); ok {
		t.Fatal("Get(bob): got present, want missing")
	}
	multi, err := c.GetMulti(ctx, []string{"ana", "bob"})
	if err != nil || len(multi) != 1 || multi["ana"] != want {
		t.Fatalf("GetMulti: got %+v, %v; want only ana", multi, err)
	}
	if ok, err := c.Expire(ctx, "ana", time.Minute); err != nil || !ok {
		t.Fatalf("Expire: got %v, %v; want true, nil", ok, err)
	}
	if d, ok, err := c.TTL(ctx, "ana"); err != nil || !ok || d <= 0 || d > time.Minute {
		t.Fatalf("TTL: got %v, %v, %v; want (0, 1m]", d, ok, err)
	}
	if err := c.Delete(ctx, "ana"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Get(ctx, "ana"); ok {
		t.Fatal("Get after Delete: got present, want missing")
	}
	if _, _, err := c.Get(ctx, ""); !errors.Is(err, cache.ErrInvalidKey) {
		t.Fatalf("Get(\"\"): got %v, want ErrInvalidKey", err)
	}
	if _, _, err := c.Get(ctx, strings.Repeat("k", cache.MaxKeyBytes)); !errors.Is(err, cache.ErrInvalidKey) {
		t.Fatalf("Get(key that overflows with the prefix): got %v, want ErrInvalidKey", err)
	}
	if got, want := counter(t, reg, "hits_total", "profiles"), 2.0; got != want {
		t.Fatalf("hits: got %v, want %v", got, want)
	}
	if got, want := counter(t, reg, "misses_total", "profiles"), 3.0; got != want {
		t.Fatalf("misses: got %v, want %v", got, want)
	}
}

func TestTypedNamespaceAndVersionIsolation(t *testing.T) {
	b := cache.NewMemory(cache.MemoryOptions{})
	v1 := cache.NewTyped[profile](b, "profiles", 1, cache.TypedOptions{})
	v2 := cache.NewTyped[string](b, "profiles", 2, cache.TypedOptions{})
	other := cache.NewTyped[profile](b, "players", 1, cache.TypedOptions{})
	if err := v1.Set(ctx, "ana", profile{"ana", 1}, 0); err != nil {
		t.Fatal(err)
	}
	if err := v2.Set(ctx, "bob", "v2 bob", 0); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := v2.Get(ctx, "ana"); ok {
		t.Fatal("v2 read v1's entry")
	}
	if _, ok, _ := v1.Get(ctx, "bob"); ok {
		t.Fatal("v1 read v2's entry")
	}
	if _, ok, _ := other.Get(ctx, "ana"); ok {
		t.Fatal("namespace players read profiles' entry")
	}
	raw, ok, err := b.Get(ctx, "profiles:v1:ana")
	if err != nil || !ok || string(raw) != `{"name":"ana","level":1}` {
		t.Fatalf("backend key profiles:v1:ana: got %q, %v, %v", raw, ok, err)
	}
	if got := v2.Key("bob"); got != "profiles:v2:bob" {
		t.Fatalf("Key: got %q, want profiles:v2:bob", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NewTyped with ':' in the namespace did not panic")
		}
	}()
	cache.NewTyped[string](b, "a:b", 1, cache.TypedOptions{})
}

func TestTypedCorruptBytesAreAMiss(t *testing.T) {
	reg, m := newMetrics(t)
	b := cache.NewMemory(cache.MemoryOptions{})
	c := cache.NewTyped[profile](b, "profiles", 1, cache.TypedOptions{Metrics: m, Logger: discard()})
	for _, k := range []string{"a", "b", "c"} {
		if err := b.Set(ctx, c.Key(k), []byte("\x00not json"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok, err := c.Get(ctx, "a"); err != nil || ok {
		t.Fatalf("Get(corrupt): got %+v, %v, %v; want miss, nil", v, ok, err)
	}
	if _, ok, _ := b.Get(ctx, c.Key("a")); ok {
		t.Fatal("corrupt entry a not deleted")
	}
	if got, err := c.GetMulti(ctx, []string{"b"}); err != nil || len(got) != 0 {
		t.Fatalf("GetMulti(corrupt): got %v, %v; want empty, nil", got, err)
	}
	calls := 0
	v, err := c.GetOrLoad(ctx, "c", time.Hour, func(context.Context) (profile, error) {
		calls++
		return profile{"c", 3}, nil
	})
	if err != nil || v != (profile{"c", 3}) || calls != 1 {
		t.Fatalf("GetOrLoad(corrupt): got %+v, %v, %d loads; want {c 3}, nil, 1", v, err, calls)
	}
	if _, ok, _ := c.Get(ctx, "c"); !ok {
		t.Fatal("GetOrLoad did not replace the corrupt entry")
	}
	if got := counter(t, reg, "misses_total", "profiles"); got != 3 {
		t.Fatalf("misses: got %v, want 3", got)
	}
}

func TestTypedGetOrLoadStampedeMemory(t *testing.T) {
	testStampede(t, cache.NewMemory(cache.MemoryOptions{}))
}

func TestTypedGetOrLoadStampedeRedis(t *testing.T) {
	// A long timeout: 1,000 concurrent GETs queue for the connection pool.
	testStampede(t, newRedis(t, machineRedis(t), 5*time.Second))
}

// testStampede: 1,000 concurrent misses of one key call the loader once.
func testStampede(t *testing.T, b cache.Backend) {
	reg, m := newMetrics(t)
	c := cache.NewTyped[profile](b, "stampede", 1, cache.TypedOptions{Metrics: m})
	var loads atomic.Int64
	loader := func(context.Context) (profile, error) {
		loads.Add(1)
		time.Sleep(20 * time.Millisecond)
		return profile{"x", 1}, nil
	}
	const n = 1000
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			v, err := c.GetOrLoad(ctx, "key", time.Minute, loader)
			if err == nil && v != (profile{"x", 1}) {
				err = errors.New("wrong value")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := loads.Load(); got != 1 {
		t.Fatalf("loader calls for %d concurrent misses: got %d, want 1", n, got)
	}
	if got := counter(t, reg, "loads_total", "stampede"); got != 1 {
		t.Fatalf("loads_total: got %v, want 1", got)
	}
	if got := counter(t, reg, "backend_errors_total", "stampede"); got != 0 {
		t.Fatalf("backend_errors_total: got %v, want 0", got)
	}
}

func TestTypedLoaderErrorAndCancel(t *testing.T) {
	reg, m := newMetrics(t)
	c := cache.NewTyped[int](cache.NewMemory(cache.MemoryOptions{}), "n", 1, cache.TypedOptions{Metrics: m})
	boom := errors.New("boom")
	if _, err := c.GetOrLoad(ctx, "k", 0, func(context.Context) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("GetOrLoad(failing loader): got %v, want boom", err)
	}
	if _, ok, _ := c.Get(ctx, "k"); ok {
		t.Fatal("a failed load was cached")
	}
	if got := counter(t, reg, "load_errors_total", "n"); got != 1 {
		t.Fatalf("load_errors_total: got %v, want 1", got)
	}
	if _, err := c.GetOrLoad(ctx, "k", -1, func(context.Context) (int, error) { return 1, nil }); !errors.Is(err, cache.ErrInvalidTTL) {
		t.Fatalf("GetOrLoad(ttl -1): got %v, want ErrInvalidTTL", err)
	}

	// A caller giving up does not fail the others sharing the flight.
	release := make(chan struct{})
	loader := func(ctx context.Context) (int, error) {
		<-release
		return 42, ctx.Err()
	}
	impatient, cancel := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() {
		_, err := c.GetOrLoad(impatient, "slow", time.Minute, loader)
		first <- err
	}()
	second := make(chan int, 1)
	go func() {
		v, _ := c.GetOrLoad(ctx, "slow", time.Minute, loader)
		second <- v
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: got %v, want context.Canceled", err)
	}
	close(release)
	if v := <-second; v != 42 {
		t.Fatalf("other caller: got %d, want 42", v)
	}
}

// failing is a Backend whose every operation fails after delay.
type failing struct {
	delay time.Duration
	calls atomic.Int64
}

var errDown = errors.New("backend down")

func (f *failing) fail(ctx context.Context) error {
	f.calls.Add(1)
	select {
	case <-time.After(f.delay):
		return errDown
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (f *failing) Get(ctx context.Context, _ string) ([]byte, bool, error) {
	return nil, false, f.fail(ctx)
}
func (f *failing) GetMulti(ctx context.Context, _ []string) (map[string][]byte, error) {
	return nil, f.fail(ctx)
}
func (f *failing) Set(ctx context.Context, _ string, _ []byte, _ time.Duration) error {
	return f.fail(ctx)
}
func (f *failing) Delete(ctx context.Context, _ ...string) error { return f.fail(ctx) }
func (f *failing) Expire(ctx context.Context, _ string, _ time.Duration) (bool, error) {
	return false, f.fail(ctx)
}
func (f *failing) TTL(ctx context.Context, _ string) (time.Duration, bool, error) {
	return 0, false, f.fail(ctx)
}
func (f *failing) Close() error { return nil }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestTypedDegradesWhenBackendFails(t *testing.T) {
	reg, m := newMetrics(t)
	var logs logtest.Buffer
	b := &failing{delay: 5 * time.Millisecond}
	c := cache.NewTyped[string](b, "deg", 1, cache.TypedOptions{
		Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil)), LogEvery: time.Hour,
	})
	for i := range 20 {
		v, err := c.GetOrLoad(ctx, "k", time.Minute, func(context.Context) (string, error) { return "loaded", nil })
		if err != nil || v != "loaded" {
			t.Fatalf("GetOrLoad %d with the backend down: got %q, %v; want loaded, nil", i, v, err)
		}
	}
	// One failed read per call, no write-back.
	if got := b.calls.Load(); got != 20 {
		t.Fatalf("backend calls: got %d, want 20 (reads only, writes skipped)", got)
	}
	if got := counter(t, reg, "backend_errors_total", "deg"); got != 20 {
		t.Fatalf("backend_errors_total: got %v, want 20", got)
	}
	if got := counter(t, reg, "loads_total", "deg"); got != 20 {
		t.Fatalf("loads_total: got %v, want 20", got)
	}
	// Direct writes report the error.
	if err := c.Set(ctx, "k", "v", 0); !errors.Is(err, errDown) {
		t.Fatalf("Set with the backend down: got %v, want errDown", err)
	}
	if lines := strings.Count(logs.String(), "\n"); lines != 1 {
		t.Fatalf("log lines for 21 errors within LogEvery: got %d, want 1:\n%s", lines, logs.String())
	}
}
