package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/redistest"
)

var ctx = context.Background()

// machineRedis returns a client on the shared test Redis, closed when the
// test ends.
func machineRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	return newClient(t, redistest.URL(t))
}

func newClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	c, err := cache.ParseRedisURL(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newRedis returns a Redis backend under a fresh prefix whose keys are
// removed when the test ends.
func newRedis(t testing.TB, c redis.UniversalClient, timeout time.Duration) *cache.Redis {
	t.Helper()
	return newRedisPrefix(t, c, redistest.Prefix(t), timeout)
}

func newRedisPrefix(t testing.TB, c redis.UniversalClient, prefix string, timeout time.Duration) *cache.Redis {
	t.Helper()
	r, err := cache.NewRedis(cache.RedisOptions{Client: c, Prefix: prefix, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropPrefix(c, prefix) })
	return r
}

// dropPrefix deletes the keys a test left in the shared Redis.
func dropPrefix(c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for _, k := range keys {
		c.Del(ctx, k) // one by one: keys may be on different Cluster slots
	}
}

func newNear(t testing.TB, r *cache.Redis, opts cache.NearOptions) *cache.Near {
	t.Helper()
	opts.Redis = r
	n, err := cache.NewNear(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// counter returns the value of a cache counter for one cache name.
func counter(t testing.TB, reg *prometheus.Registry, name, cacheName string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "multijuego_cache_"+name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "cache" && l.GetValue() == cacheName {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func newMetrics(t testing.TB) (*prometheus.Registry, *cache.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := cache.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, m
}
