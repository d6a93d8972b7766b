package cache_test

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/cache"
)

func TestParseRedisURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		cluster []string // nil: standalone
		addr    string
		db      int
	}{
		{url: "redis://127.0.0.1:6379/0", addr: "127.0.0.1:6379"},
		{url: "redis://:secret@cache.internal:6380/3?dial_timeout=2s", addr: "cache.internal:6380", db: 3},
		{url: "redis://10.0.0.1:7000,redis://10.0.0.2:7000, redis://10.0.0.3:7000", cluster: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}},
		{url: "redis-cluster://10.0.0.1:7000,10.0.0.2:7001", cluster: []string{"10.0.0.1:7000", "10.0.0.2:7001"}},
		{url: "redis-cluster://user:pw@10.0.0.1:7000,10.0.0.2:7001/?pool_size=5", cluster: []string{"10.0.0.1:7000", "10.0.0.2:7001"}},
	} {
		c, err := cache.ParseRedisURL(tc.url, nil)
		if err != nil {
			t.Errorf("ParseRedisURL(%q): %v", tc.url, err)
			continue
		}
		switch c := c.(type) {
		case *redis.Client:
			o := c.Options()
			if tc.cluster != nil || o.Addr != tc.addr || o.DB != tc.db || !o.ContextTimeoutEnabled {
				t.Errorf("ParseRedisURL(%q): got standalone %s db %d ctx timeouts %v; want %v %s db %d", tc.url, o.Addr, o.DB, o.ContextTimeoutEnabled, tc.cluster, tc.addr, tc.db)
			}
		case *redis.ClusterClient:
			o := c.Options()
			if !reflect.DeepEqual(o.Addrs, tc.cluster) || !o.ContextTimeoutEnabled {
				t.Errorf("ParseRedisURL(%q): got cluster %v ctx timeouts %v; want %v", tc.url, o.Addrs, o.ContextTimeoutEnabled, tc.cluster)
			}
			if strings.Contains(tc.url, "pw@") && o.Password != "pw" {
				t.Errorf("ParseRedisURL(%q): got password %q, want pw", tc.url, o.Password)
			}
		default:
			t.Errorf("ParseRedisURL(%q): got %T", tc.url, c)
		}
		_ = c.Close()
	}
	for _, bad := range []string{"http://x:1", "redis://a:1/2,redis://b:1/2", "redis-cluster://", "redis-cluster://a:1/5", "redis://:secret@a:1,mysql://b:1"} {
		c, err := cache.ParseRedisURL(bad, nil)
		if err == nil {
			_ = c.Close()
			t.Errorf("ParseRedisURL(%q): got no error", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseRedisURL(%q): error shows the password: %v", bad, err)
		}
	}
}

func TestNewRedisNeedsContextTimeouts(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := cache.NewRedis(cache.RedisOptions{Client: c}); err == nil {
		t.Fatal("NewRedis accepted a client without ContextTimeoutEnabled")
	}
	if _, err := cache.NewRedis(cache.RedisOptions{}); err == nil {
		t.Fatal("NewRedis accepted a nil client")
	}
}

// blackhole accepts connections and never answers, like a hung Redis.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "redis://" + l.Addr().String() + "/0"
}

func TestRedisTimeoutBoundsEveryOp(t *testing.T) {
	const timeout = 100 * time.Millisecond
	const margin = 150 * time.Millisecond
	r, err := cache.NewRedis(cache.RedisOptions{Client: newClient(t, blackhole(t)), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]func() error{
		"Get":      func() error { _, _, err := r.Get(ctx, "k"); return err },
		"GetMulti": func() error { _, err := r.GetMulti(ctx, []string{"a", "b"}); return err },
		"Set":      func() error { return r.Set(ctx, "k", []byte("v"), time.Second) },
		"Delete":   func() error { return r.Delete(ctx, "a", "b") },
		"Expire":   func() error { _, err := r.Expire(ctx, "k", 0); return err },
		"TTL":      func() error { _, _, err := r.TTL(ctx, "k"); return err },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		took := time.Since(start)
		if err == nil {
			t.Errorf("%s on a hung Redis: got no error", name)
		}
		if took > timeout+margin {
			t.Errorf("%s on a hung Redis took %v, want at most %v (+ margin)", name, took, timeout)
		}
	}

	// GetOrLoad degrades within the timeout too.
	c := cache.NewTyped[string](r, "hung", 1, cache.TypedOptions{Logger: discard()})
	start := time.Now()
	v, err := c.GetOrLoad(ctx, "k", time.Minute, func(context.Context) (string, error) { return "loaded", nil })
	if took := time.Since(start); err != nil || v != "loaded" || took > timeout+margin {
		t.Fatalf("GetOrLoad on a hung Redis: got %q, %v in %v; want loaded, nil within %v", v, err, took, timeout)
	}
	// The caller's own deadline wins when shorter.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, _, err := r.Get(short, "k"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Millisecond+margin {
		t.Fatalf("Get with a 10ms ctx: got %v after %v", err, time.Since(start))
	}
}
