package cache_test

import (
	"testing"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/cache/cachetest"
)

func TestMemoryConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.Backend {
		return cache.NewMemory(cache.MemoryOptions{})
	})
}

func TestRedisConformance(t *testing.T) {
	c := machineRedis(t)
	cachetest.Run(t, func(t *testing.T) cache.Backend {
		return newRedis(t, c, 0)
	})
}

func TestNearConformance(t *testing.T) {
	c := machineRedis(t)
	cachetest.Run(t, func(t *testing.T) cache.Backend {
		n := newNear(t, newRedis(t, c, 0), cache.NearOptions{Logger: discard()})
		if !n.Stats().Subscribed {
			t.Fatal("Near not subscribed after NewNear")
		}
		return n
	})
}
