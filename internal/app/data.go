package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/kv"
)

// KVBackend is the key-value store the configuration selects.
func (c Config) KVBackend() string {
	switch {
	case c.KV != "":
		return c.KV
	case c.RedisURL != "":
		return "redis"
	}
	return "memory"
}

var redisLogOnce sync.Once

// volatile holds the shared volatile-data services: the cache, the
// key-value store and the Redis connection behind them.
type volatile struct {
	redis redis.UniversalClient // nil without redis_url; owned here, closed last
	kv    kv.Store
	// throttleKV holds the login throttles' counts while a shared kv is
	// unreachable (auth.Deps.FallbackKV); nil when kv is in-process.
	throttleKV *kv.Memory
	cache      cache.Backend
	metrics    *cache.Metrics
	ready      []gateway.ReadyCheck
}

func openVolatile(ctx context.Context, c Config, reg prometheus.Registerer, log *slog.Logger) (v *volatile, err error) {
	v = &volatile{}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	if c.RedisURL != "" {
		// go-redis logs through one package-level logger; set it once.
		redisLogOnce.Do(func() { redis.SetLogger(&redisLog{log: log}) })
		tlsCfg, err := c.RedisTLS.Config("")
		if err != nil {
			return nil, fmt.Errorf("redis_tls: %w", err)
		}
		if v.redis, err = cache.ParseRedisURL(c.RedisURL, tlsCfg); err != nil {
			return nil, fmt.Errorf("redis_url: %w", err)
		}
		client := v.redis
		// Every node shares this Redis: failing readiness on it would take
		// every node out of the balancer at once. The node keeps serving
		// what does not need Redis, and its rate limits go on in-process
		// (rate_limits check): report it as degraded.
		v.ready = append(v.ready, gateway.ReadyCheck{Name: "redis", Degrades: true, Check: func(ctx context.Context) error { return client.Ping(ctx).Err() }})
	}
	switch c.KVBackend() {
	case "memory":
		v.kv = kv.NewMemory(kv.MemoryOptions{})
	case "redis":
		if v.kv, err = kv.NewRedis(kv.RedisOptions{Client: v.redis, Prefix: c.RedisPrefix + "kv:", Timeout: c.Cache.Timeout}); err != nil {
			return nil, err
		}
	case "dynamodb":
		if v.kv, err = kv.NewDynamo(ctx, kv.DynamoOptions{Endpoint: c.DynamoDBEndpoint, Table: c.DynamoDBTable, Region: c.DynamoDBRegion,
			Timeout: c.Cache.Timeout, CreateTable: true}); err != nil {
			return nil, fmt.Errorf("dynamodb: %w", err)
		}
		store := v.kv
		v.ready = append(v.ready, gateway.ReadyCheck{Name: "dynamodb", Check: func(ctx context.Context) error {
			if _, err := store.Get(ctx, "readyz"); err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			return nil
		}})
	}
	if c.KVBackend() != "memory" {
		v.throttleKV = kv.NewMemory(kv.MemoryOptions{})
	}
	if v.metrics, err = cache.NewMetrics(reg); err != nil {
		return nil, err
	}
	switch {
	case c.RedisURL == "":
		v.cache = cache.NewMemory(cache.MemoryOptions{MaxBytes: c.Cache.MaxBytes, Metrics: v.metrics})
	default:
		r, err := cache.NewRedis(cache.RedisOptions{Client: v.redis, Prefix: c.RedisPrefix + "cache:", Timeout: c.Cache.Timeout})
		if err != nil {
			return nil, err
		}
		v.cache = r
		if c.Cache.Near {
			near, err := cache.NewNear(cache.NearOptions{Redis: r, MaxBytes: c.Cache.MaxBytes, MaxAge: c.Cache.NearMaxAge, Metrics: v.metrics, Logger: log})
			if err != nil {
				r.Close()
				return nil, err
			}
			v.cache = near
		}
	}
	cacheKind := "memory"
	if c.RedisURL != "" {
		cacheKind = "redis"
		if c.Cache.Near {
			cacheKind = "redis+near"
		}
	}
	log.Info("volatile data", "kv", c.KVBackend(), "cache", cacheKind)
	return v, nil
}

// Close closes the stores, then the Redis connection they share.
func (v *volatile) Close() error {
	var errs []error
	if v.cache != nil {
		errs = append(errs, v.cache.Close())
	}
	if v.kv != nil {
		errs = append(errs, v.kv.Close())
	}
	if v.throttleKV != nil {
		errs = append(errs, v.throttleKV.Close())
	}
	if v.redis != nil {
		errs = append(errs, v.redis.Close())
	}
	return errors.Join(errs...)
}

// redisLog routes go-redis's own log lines (failed dials and the like) into
// our logger, at most one line per second with a count of the lines
// suppressed, so a dead Redis does not flood the logs.
type redisLog struct {
	log        *slog.Logger
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.WarnContext(ctx, "redis client", "msg", fmt.Sprintf(format, v...), "suppressed", n)
}
