package kv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds each operation of the Redis and DynamoDB stores
// when their options leave Timeout at 0.
const DefaultTimeout = 3 * time.Second

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Client is the connection: standalone, Sentinel or Cluster. It belongs
	// to the caller; Close does not close it.
	Client redis.UniversalClient
	// Prefix is put before every key, e.g. "kv:".
	Prefix string
	// Timeout bounds each operation (0: DefaultTimeout).
	Timeout time.Duration
}

// Redis is the Store on Redis (5 or later), standalone or Cluster.
//
// Each item is one hash, {v: value, ver: version, exp: expiry in Unix
// milliseconds (absent: no expiry)}, whose key expires at exp
// (PEXPIREAT). Keeping exp in the hash lets Get be a single HMGET that
// returns the exact expiry, the same on every node. Redis deletes an
// expired key on access, so a script never sees one and versions restart at
// 1 by themselves. Writes are Lua scripts (EVALSHA, loaded on first use)
// that touch only their own key, so each is one round trip, atomic, and
// valid on a Cluster. Expiries come from the server's clock (TIME).
type Redis struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on opts.Client.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Client == nil {
		return nil, errors.New("kv: NewRedis needs a Client")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Redis{c: opts.Client, prefix: opts.Prefix, timeout: opts.Timeout}, nil
}

// luaSetItem is shared by the write scripts: setitem(key, value, ttl_ms)
// writes v and exp and sets or clears the key's expiry (ttl_ms "0": none).
// It returns nothing; the caller has already set ver.
const luaSetItem = `
local function setitem(k, v, ttl)
  if ttl == '0' then
    redis.call('HSET', k, 'v', v)
    redis.call('HDEL', k, 'exp')
    redis.call('PERSIST', k)
  else
    local t = redis.call('TIME')
    local at = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ttl))
    redis.call('HSET', k, 'v', v, 'exp', at)
    redis.call('PEXPIREAT', k, at)
  end
end
`

var (
	// KEYS[1]; ARGV: value, ttl_ms. Returns the new version.
	redisPut = redis.NewScript(luaSetItem + `
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
setitem(KEYS[1], ARGV[1], ARGV[2])
return ver
`)
	// KEYS[1]; ARGV: value, ttl_ms. Returns 1, or 0 when a live item exists.
	redisPutIfAbsent = redis.NewScript(luaSetItem + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'ver', 1)
setitem(KEYS[1], ARGV[1], ARGV[2])
return 1
`)
	// KEYS[1]; ARGV: value, ttl_ms, expected version. Returns the new
	// version, 0 on a version mismatch, -1 when there is no live item.
	redisCAS = redis.NewScript(luaSetItem + `
local ver = redis.call('HGET', KEYS[1], 'ver')
if not ver then return -1 end
if ver ~= ARGV[3] then return 0 end
ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
setitem(KEYS[1], ARGV[1], ARGV[2])
return ver
`)
	// KEYS[1]; ARGV: delta, ttl_ms. Returns {0, new value} or {1} (not a
	// counter) or {2} (overflow). The value is read back as a string: Lua
	// numbers are doubles and would round counters above 2^53.
	redisIncr = redis.NewScript(luaSetItem + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'ver', 1)
  setitem(KEYS[1], ARGV[1], ARGV[2])
  return {0, ARGV[1]}
end
local r = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[1])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow') then return {2} end
  return {1}
end
redis.call('HINCRBY', KEYS[1], 'ver', 1)
return {0, redis.call('HGET', KEYS[1], 'v')}
`)
)

func (r *Redis) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) (Item, error) {
	if err := checkKey(key); err != nil {
		return Item{}, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	vals, err := r.c.HMGet(ctx, r.prefix+key, "v", "ver", "exp").Result()
	if err != nil {
		return Item{}, fmt.Errorf("kv: redis get: %w", err)
	}
	v, ok := vals[0].(string)
	if !ok {
		return Item{}, ErrNotFound
	}
	ver, _ := vals[1].(string)
	it := Item{Value: []byte(v)}
	if it.Version, err = strconv.ParseUint(ver, 10, 64); err != nil {
		return Item{}, fmt.Errorf("kv: redis get: bad version %q", ver)
	}
	if exp, ok := vals[2].(string); ok {
		ms, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return Item{}, fmt.Errorf("kv: redis get: bad expiry %q", exp)
		}
		it.ExpiresAt = time.UnixMilli(ms)
	}
	return it, nil
}

func ttlArg(ttl time.Duration) string { return strconv.FormatInt(ttlMillis(ttl), 10) }

// Put implements Store.
func (r *Redis) Put(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	ver, err := redisPut.Run(ctx, r.c, []string{r.prefix + key}, value, ttlArg(ttl)).Uint64()
	if err != nil {
		return 0, fmt.Errorf("kv: redis put: %w", err)
	}
	return ver, nil
}

// PutIfAbsent implements Store.
func (r *Redis) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	ok, err := redisPutIfAbsent.Run(ctx, r.c, []string{r.prefix + key}, value, ttlArg(ttl)).Int()
	if err != nil {
		return 0, fmt.Errorf("kv: redis put if absent: %w", err)
	}
	if ok == 0 {
		return 0, ErrExists
	}
	return 1, nil
}

// CompareAndSet implements Store.
func (r *Redis) CompareAndSet(ctx context.Context, key string, value []byte, ttl time.Duration, expect uint64) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	ver, err := redisCAS.Run(ctx, r.c, []string{r.prefix + key}, value, ttlArg(ttl),
		strconv.FormatUint(expect, 10)).Int64()
	switch {
	case err != nil:
		return 0, fmt.Errorf("kv: redis compare and set: %w", err)
	case ver == -1:
		return 0, ErrNotFound
	case ver == 0:
		return 0, ErrVersionMismatch
	}
	return uint64(ver), nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if err := r.c.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("kv: redis delete: %w", err)
	}
	return nil
}

// Incr implements Store.
func (r *Redis) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if err := checkTTL(ttl); err != nil {
		return 0, err
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	res, err := redisIncr.Run(ctx, r.c, []string{r.prefix + key}, strconv.FormatInt(delta, 10), ttlArg(ttl)).Slice()
	if err != nil {
		return 0, fmt.Errorf("kv: redis incr: %w", err)
	}
	code, _ := res[0].(int64)
	switch {
	case code == 1:
		return 0, ErrNotCounter
	case code == 2:
		return 0, ErrOverflow
	case code != 0 || len(res) != 2:
		return 0, fmt.Errorf("kv: redis incr: unexpected reply %v", res)
	}
	s, _ := res[1].(string)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("kv: redis incr: bad counter %q", s)
	}
	return n, nil
}

// Close implements Store. It does nothing: the client belongs to the
// caller.
func (r *Redis) Close() error { return nil }
