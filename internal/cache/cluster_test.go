package cache_test

import (
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/cache/cachetest"
	"github.com/multijuego/multijuego/internal/redistest"
)

// The Redis backend and the near-cache pass the conformance suite on a real
// Redis Cluster (three private nodes), reached through a redis-cluster:// URL.
func TestRedisClusterConformance(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	c := newClient(t, cl.URL())
	open := func(t *testing.T) *cache.Redis {
		r, err := cache.NewRedis(cache.RedisOptions{Client: c, Prefix: redistest.Prefix(t), Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("Redis", func(t *testing.T) {
		cachetest.Run(t, func(t *testing.T) cache.Backend { return open(t) })
	})
	t.Run("Near", func(t *testing.T) {
		cachetest.Run(t, func(t *testing.T) cache.Backend {
			return newNear(t, open(t), cache.NearOptions{Logger: discard()})
		})
	})
}
