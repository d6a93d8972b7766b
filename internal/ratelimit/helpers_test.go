package ratelimit_test

import (
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/ratelimit"
	"github.com/multijuego/multijuego/internal/redistest"
)

func redisClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	c, err := cache.ParseRedisURL(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func sharedRedis(t testing.TB) redis.UniversalClient { return redisClient(t, redistest.URL(t)) }

func newRedis(t testing.TB, c redis.UniversalClient, rules ratelimit.Rules, clk *clock, log *slog.Logger) *ratelimit.Redis {
	t.Helper()
	l, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: c, Prefix: redistest.Prefix(t), Rules: rules, Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
