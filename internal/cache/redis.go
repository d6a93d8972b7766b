package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisTimeout bounds every operation of a Redis backend whose
// Timeout is 0.
const DefaultRedisTimeout = 500 * time.Millisecond

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Client is the connection, standalone (*redis.Client) or Cluster
	// (*redis.ClusterClient). It must have ContextTimeoutEnabled set, or
	// socket reads would ignore Timeout (ParseRedisURL sets it). The client
	// belongs to the caller: Close does not close it.
	Client redis.UniversalClient
	// Prefix is put in front of every key, so several caches (or tests) can
	// share one Redis.
	Prefix string
	// Timeout bounds every operation (connection wait, retries and the round
	// trip); 0 means DefaultRedisTimeout.
	Timeout time.Duration
}

// Redis is the Backend on Redis, standalone or Cluster. Every operation is
// one round trip (GetMulti and cluster-wide Delete are one pipeline, which a
// Cluster client splits into one round trip per node, in parallel) and is
// bounded by the Timeout option. TTLs have millisecond precision (PX,
// PEXPIRE, PTTL). It is safe for concurrent use and starts no goroutine.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	cluster bool
}

// NewRedis returns a Redis backend on opts.Client.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Client == nil {
		return nil, errors.New("cache: RedisOptions.Client is nil")
	}
	if opts.Timeout < 0 {
		return nil, errors.New("cache: RedisOptions.Timeout is negative")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	r := &Redis{client: opts.Client, prefix: opts.Prefix, timeout: opts.Timeout}
	var ctxTimeouts bool
	switch c := opts.Client.(type) {
	case *redis.Client:
		ctxTimeouts = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		ctxTimeouts = c.Options().ContextTimeoutEnabled
		r.cluster = true
	case *redis.Ring:
		ctxTimeouts = c.Options().ContextTimeoutEnabled
		r.cluster = true // keys of one call may be on different shards
	default:
		ctxTimeouts = true // unknown implementation: trust it
	}
	if !ctxTimeouts {
		return nil, errors.New("cache: the Redis client must have ContextTimeoutEnabled, or operations could outlast the timeout")
	}
	return r, nil
}

// Client returns the underlying client.
func (r *Redis) Client() redis.UniversalClient { return r.client }

// Prefix returns the key prefix.
func (r *Redis) Prefix() string { return r.prefix }

// Timeout returns the per-operation timeout.
func (r *Redis) Timeout() time.Duration { return r.timeout }

func (r *Redis) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

func redisErr(op string, err error) error {
	return fmt.Errorf("cache: redis %s: %w", op, err)
}

// Get implements Backend.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	v, err := r.client.Get(ctx, r.prefix+key).Bytes()
	switch {
	case err == redis.Nil:
		return nil, false, nil
	case err != nil:
		return nil, false, redisErr("get", err)
	}
	return v, true, nil
}

// GetMulti implements Backend with a pipeline of GETs rather than MGET, so
// keys may live in different Cluster slots.
func (r *Redis) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := checkKeys(keys); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	p := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.Get(ctx, r.prefix+k)
	}
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return nil, redisErr("getmulti", err)
	}
	for i, c := range cmds {
		v, err := c.Bytes()
		switch {
		case err == redis.Nil:
		case err != nil:
			return nil, redisErr("getmulti", err)
		default:
			out[keys[i]] = v
		}
	}
	return out, nil
}

// Set implements Backend (SET with PX, or without expiry for ttl 0, which
// also clears a previous TTL).
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := checkSet(key, value, ttl)
	if err != nil {
		return err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if err := r.queueSet(ctx, r.client, key, value, ttl).Err(); err != nil {
		return redisErr("set", err)
	}
	return nil
}

// queueSet issues the SET of a checked key, value and rounded ttl on c (the
// client or a pipeline).
func (r *Redis) queueSet(ctx context.Context, c redis.Cmdable, key string, value []byte, ttl time.Duration) *redis.StatusCmd {
	return c.Set(ctx, r.prefix+key, value, ttl) // PX, or EX for whole seconds
}

// Delete implements Backend: one DEL, or in Cluster mode a pipeline of one
// DEL per key (a multi-key DEL must stay within one slot).
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if err := checkKeys(keys); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if len(keys) == 1 || !r.cluster {
		if err := r.client.Del(ctx, r.prefixed(keys)...).Err(); err != nil {
			return redisErr("delete", err)
		}
		return nil
	}
	p := r.client.Pipeline()
	r.queueDelete(ctx, p, keys)
	if _, err := p.Exec(ctx); err != nil {
		return redisErr("delete", err)
	}
	return nil
}

// queueDelete queues the deletion of checked keys on a pipeline.
func (r *Redis) queueDelete(ctx context.Context, p redis.Pipeliner, keys []string) {
	if !r.cluster {
		p.Del(ctx, r.prefixed(keys)...)
		return
	}
	for _, k := range keys {
		p.Del(ctx, r.prefix+k)
	}
}

func (r *Redis) prefixed(keys []string) []string {
	pk := make([]string, len(keys))
	for i, k := range keys {
		pk[i] = r.prefix + k
	}
	return pk
}

// Expire implements Backend: PEXPIRE, or for ttl 0 PERSIST and EXISTS in
// one pipeline (PERSIST alone cannot tell a missing key from one without
// expiry).
func (r *Redis) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	ttl, err := checkTTL(ttl)
	if err != nil {
		return false, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if ttl > 0 {
		ok, err := r.client.PExpire(ctx, r.prefix+key, ttl).Result()
		if err != nil {
			return false, redisErr("expire", err)
		}
		return ok, nil
	}
	p := r.client.Pipeline()
	exists := r.queueExpire(ctx, p, key, ttl)
	if _, err := p.Exec(ctx); err != nil {
		return false, redisErr("expire", err)
	}
	return exists(), nil
}

// queueExpire queues the Expire of a checked key and rounded ttl on a
// pipeline; the returned function reports, after Exec, whether the key
// existed.
func (r *Redis) queueExpire(ctx context.Context, p redis.Pipeliner, key string, ttl time.Duration) func() bool {
	if ttl > 0 {
		c := p.PExpire(ctx, r.prefix+key, ttl)
		return c.Val
	}
	p.Persist(ctx, r.prefix+key)
	c := p.Exists(ctx, r.prefix+key)
	return func() bool { return c.Val() == 1 }
}

// TTL implements Backend (PTTL). A key in its last millisecond reports 1ms.
func (r *Redis) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	if err := checkKey(key); err != nil {
		return 0, false, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	d, err := r.client.PTTL(ctx, r.prefix+key).Result()
	if err != nil {
		return 0, false, redisErr("ttl", err)
	}
	d, ok := pttl(d)
	return d, ok, nil
}

// pttl maps a PTTL reply: -2 (as 2ns) missing, -1 no expiry.
func pttl(d time.Duration) (time.Duration, bool) {
	switch {
	case d == -2:
		return 0, false
	case d == -1:
		return 0, true
	case d <= 0:
		return time.Millisecond, true
	}
	return d, true
}

// getWithTTL reads the values and remaining TTLs of checked keys in one
// pipeline (GET and PTTL of one key share a slot). ttls[i] is 0 for an entry
// without expiry; missing keys have ok[i] false.
func (r *Redis) getWithTTL(ctx context.Context, keys []string) (vals [][]byte, ttls []time.Duration, ok []bool, err error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	p := r.client.Pipeline()
	gets := make([]*redis.StringCmd, len(keys))
	ttlCmds := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		gets[i] = p.Get(ctx, r.prefix+k)
		ttlCmds[i] = p.PTTL(ctx, r.prefix+k)
	}
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return nil, nil, nil, redisErr("get", err)
	}
	vals = make([][]byte, len(keys))
	ttls = make([]time.Duration, len(keys))
	ok = make([]bool, len(keys))
	for i := range keys {
		v, err := gets[i].Bytes()
		switch {
		case err == redis.Nil:
			continue
		case err != nil:
			return nil, nil, nil, redisErr("get", err)
		}
		d, present := pttl(ttlCmds[i].Val())
		if ttlCmds[i].Err() != nil || !present {
			continue // expired between the GET and the PTTL
		}
		vals[i], ttls[i], ok[i] = v, d, true
	}
	return vals, ttls, ok, nil
}

// Close implements Backend. The client belongs to the caller and stays
// open.
func (r *Redis) Close() error { return nil }

// ParseRedisURL returns a client for a Redis URL:
//
//	redis://[user:pass@]HOST:PORT[/DB][?options]     standalone (rediss:// for TLS)
//	redis://HOST:PORT,redis://HOST:PORT              Cluster, from seed nodes
//	redis-cluster://[user:pass@]HOST:PORT,HOST:PORT  Cluster, from seed nodes
//
// Query options are go-redis's (dial_timeout, pool_size, ...); Cluster
// options come from the first seed. The client has ContextTimeoutEnabled
// set, as NewRedis requires. A Cluster has only database 0. t, when not
// nil, is the TLS of every connection (a CA, a client certificate); the URL
// must then be rediss://.
func ParseRedisURL(s string, t *tls.Config) (redis.UniversalClient, error) {
	s = strings.TrimSpace(s)
	if t != nil && !strings.HasPrefix(s, "rediss") {
		return nil, fmt.Errorf("cache: redis URL %q: TLS settings need a rediss:// URL", redactURL(s))
	}
	switch {
	case strings.HasPrefix(s, "redis-cluster://"), strings.HasPrefix(s, "rediss-cluster://"):
		scheme, rest, _ := strings.Cut(s, "-cluster://")
		// Split [userinfo@]hosts[/path][?query].
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		authority, tail := rest[:end], rest[end:]
		userinfo, hosts := "", authority
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			userinfo, hosts = authority[:i+1], authority[i+1:]
		}
		var seeds []string
		for _, h := range strings.Split(hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				seeds = append(seeds, h)
			}
		}
		if len(seeds) == 0 {
			return nil, fmt.Errorf("cache: redis URL %q names no host", redactURL(s))
		}
		opt, err := parseClusterSeed(scheme + "://" + userinfo + seeds[0] + tail)
		if err != nil {
			return nil, err
		}
		opt.Addrs = append(opt.Addrs, seeds[1:]...)
		return newCluster(opt, t), nil
	case strings.Contains(s, ","):
		var opt *redis.ClusterOptions
		for _, u := range strings.Split(s, ",") {
			o, err := parseClusterSeed(strings.TrimSpace(u))
			if err != nil {
				return nil, err
			}
			if opt == nil {
				opt = o
			} else {
				opt.Addrs = append(opt.Addrs, o.Addrs...)
			}
		}
		return newCluster(opt, t), nil
	default:
		opt, err := redis.ParseURL(s)
		if err != nil {
			return nil, fmt.Errorf("cache: redis URL %q: %w", redactURL(s), err)
		}
		opt.ContextTimeoutEnabled = true
		opt.TLSConfig = withServerName(t, opt.TLSConfig)
		return redis.NewClient(opt), nil
	}
}

// parseClusterSeed parses one redis:// or rediss:// seed URL, whose
// database must be 0.
func parseClusterSeed(s string) (*redis.ClusterOptions, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("cache: redis URL %q: %w", redactURL(s), err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("cache: redis URL %q: cluster seeds must be redis:// or rediss://", redactURL(s))
	}
	if db := strings.Trim(u.Path, "/"); db != "" && db != "0" {
		return nil, fmt.Errorf("cache: redis URL %q: a Redis Cluster has only database 0", redactURL(s))
	}
	u.Path = ""
	opt, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("cache: redis URL %q: %w", redactURL(s), err)
	}
	return opt, nil
}

func newCluster(opt *redis.ClusterOptions, t *tls.Config) redis.UniversalClient {
	opt.ContextTimeoutEnabled = true
	opt.TLSConfig = withServerName(t, opt.TLSConfig)
	return redis.NewClusterClient(opt)
}

// withServerName is t with the server name go-redis took from the URL
// (parsed), or parsed when t is nil.
func withServerName(t, parsed *tls.Config) *tls.Config {
	if t == nil {
		return parsed
	}
	t = t.Clone()
	if t.ServerName == "" && parsed != nil {
		t.ServerName = parsed.ServerName
	}
	return t
}

// redactURL hides passwords in error messages.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.LastIndex(s, "@"); j > i {
			return s[:i+3] + "xxxxx" + s[j:]
		}
	}
	return s
}
