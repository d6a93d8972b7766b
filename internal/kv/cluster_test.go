package kv_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/kv/kvtest"
	"github.com/multijuego/multijuego/internal/redistest"
)

// The Redis store passes the conformance suite on a real Redis Cluster
// (three private nodes): every script touches one key, so one slot.
func TestRedisClusterConformance(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	var addrs []string
	for _, n := range cl.Nodes {
		addrs = append(addrs, n.Addr())
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Close() })
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s, err := kv.NewRedis(kv.RedisOptions{Client: c, Prefix: redistest.Prefix(t), Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
