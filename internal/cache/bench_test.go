package cache_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/cache"
)

var benchValue = []byte(`{"name":"ana","level":7,"guild":"norte","rating":1830}`)

// BenchmarkRedisGet compares a Get through the Redis backend with a raw
// go-redis GET of the same key on the same client.
func BenchmarkRedisGet(b *testing.B) {
	c := machineRedis(b)
	r := newRedis(b, c, 0)
	if err := r.Set(ctx, "k", benchValue, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.Run("backend", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := r.Get(ctx, "k"); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Get(ctx, r.Prefix()+"k").Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNearGet compares a near-tier hit with a Redis round trip.
func BenchmarkNearGet(b *testing.B) {
	r := newRedis(b, machineRedis(b), 0)
	n := newNear(b, r, cache.NearOptions{Logger: discard()})
	if err := n.Set(ctx, "k", benchValue, time.Hour); err != nil {
		b.Fatal(err)
	}
	if _, _, err := n.Get(ctx, "k"); err != nil { // fills the near tier
		b.Fatal(err)
	}
	b.Run("near-hit", func(b *testing.B) {
		before := n.Stats().Hits
		for b.Loop() {
			if _, ok, err := n.Get(ctx, "k"); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
		if hits := n.Stats().Hits - before; hits == 0 {
			b.Fatal("no near hits")
		}
	})
	b.Run("redis", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := r.Get(ctx, "k"); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkGetOrLoadStampede: each op is 1,000 concurrent GetOrLoad misses
// of one fresh key; loads/op is the loader calls per op (want 1).
func BenchmarkGetOrLoadStampede(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchStampede(b, cache.NewMemory(cache.MemoryOptions{})) })
	b.Run("redis", func(b *testing.B) { benchStampede(b, newRedis(b, machineRedis(b), 5*time.Second)) })
}

func benchStampede(b *testing.B, backend cache.Backend) {
	const n = 1000
	c := cache.NewTyped[string](backend, "bench", 1, cache.TypedOptions{Logger: discard()})
	var loads atomic.Int64
	loader := func(context.Context) (string, error) {
		loads.Add(1)
		time.Sleep(time.Millisecond) // a database query
		return "value", nil
	}
	i := 0
	for b.Loop() {
		key := fmt.Sprintf("k%d", i)
		i++
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				if _, err := c.GetOrLoad(ctx, key, time.Minute, loader); err != nil {
					b.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	b.ReportMetric(float64(loads.Load())/float64(i), "loads/op")
}
