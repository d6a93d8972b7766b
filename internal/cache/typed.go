package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// Codec turns values into bytes and back.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default Codec (encoding/json).
type JSON struct{}

// Marshal implements Codec.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// DefaultLogEvery is how often, at most, a Typed logs backend errors.
const DefaultLogEvery = 10 * time.Second

// TypedOptions configures NewTyped.
type TypedOptions struct {
	// Codec encodes values; nil means JSON.
	Codec Codec
	// Metrics records hits, misses, loads, errors and latency under Name
	// (default: the namespace); nil records nothing.
	Metrics *Metrics
	Name    string
	// Logger receives backend and decoding errors, at most one line per
	// LogEvery (default DefaultLogEvery) with the count of lines
	// suppressed; nil means slog.Default().
	Logger   *slog.Logger
	LogEvery time.Duration
}

// Typed is the cache services use: values of type T under keys
// "namespace:v<version>:key" in a Backend, so a schema change (a new
// version) never reads old bytes as new values. It is safe for concurrent
// use.
//
// Errors. Get, GetMulti, Set, Delete, Expire and TTL return backend errors
// (counted and logged); GetOrLoad degrades instead, see there. Bytes that
// do not decode count as a miss and the entry is deleted.
type Typed[T any] struct {
	b      Backend
	prefix string
	codec  Codec
	rec    recorder
	obs    map[string]prometheus.Observer
	log    *slog.Logger
	limit  logLimiter
	group  singleflight.Group
}

// NewTyped returns the cache of namespace at schema version on b. It panics
// if namespace is empty or contains ':' (keys of two namespaces could then
// collide) or version is negative: both are constants of the calling code.
func NewTyped[T any](b Backend, namespace string, version int, opts TypedOptions) *Typed[T] {
	if namespace == "" || strings.Contains(namespace, ":") || version < 0 {
		panic(fmt.Sprintf("cache: invalid namespace %q or version %d", namespace, version))
	}
	if opts.Codec == nil {
		opts.Codec = JSON{}
	}
	if opts.Name == "" {
		opts.Name = namespace
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = DefaultLogEvery
	}
	c := &Typed[T]{
		b:      b,
		prefix: namespace + ":v" + strconv.Itoa(version) + ":",
		codec:  opts.Codec,
		rec:    opts.Metrics.recorder(opts.Name),
		obs:    make(map[string]prometheus.Observer),
		log:    opts.Logger.With("cache", opts.Name),
		limit:  logLimiter{every: opts.LogEvery},
	}
	for _, op := range []string{"get", "get_multi", "set", "delete", "expire", "ttl", "load"} {
		c.obs[op] = c.rec.observer(op)
	}
	return c
}

// Key returns the backend key of key.
func (c *Typed[T]) Key(key string) string { return c.prefix + key }

func (c *Typed[T]) key(key string) (string, error) {
	if key == "" || len(c.prefix)+len(key) > MaxKeyBytes {
		return "", ErrInvalidKey
	}
	return c.prefix + key, nil
}

// Get returns the value of key, or false when it is missing.
func (c *Typed[T]) Get(ctx context.Context, key string) (T, bool, error) {
	var zero T
	k, err := c.key(key)
	if err != nil {
		return zero, false, err
	}
	v, ok, err := c.get(ctx, k)
	if err != nil {
		return zero, false, err
	}
	if ok {
		inc(c.rec.hits)
	} else {
		inc(c.rec.misses)
	}
	return v, ok, nil
}

// get reads and decodes one entry; undecodable bytes are a miss, and the
// entry is deleted.
func (c *Typed[T]) get(ctx context.Context, k string) (T, bool, error) {
	var v T
	start := time.Now()
	b, ok, err := c.b.Get(ctx, k)
	observeSince(c.obs["get"], start)
	if err != nil {
		c.backendError(ctx, "get", err)
		return v, false, err
	}
	if !ok {
		return v, false, nil
	}
	if err := c.codec.Unmarshal(b, &v); err != nil {
		c.corrupt(ctx, k, err)
		var zero T
		return zero, false, nil
	}
	return v, true, nil
}

// GetMulti returns the present keys' values.
func (c *Typed[T]) GetMulti(ctx context.Context, keys []string) (map[string]T, error) {
	ks := make([]string, len(keys))
	for i, key := range keys {
		k, err := c.key(key)
		if err != nil {
			return nil, err
		}
		ks[i] = k
	}
	start := time.Now()
	bs, err := c.b.GetMulti(ctx, ks)
	observeSince(c.obs["get_multi"], start)
	if err != nil {
		c.backendError(ctx, "get_multi", err)
		return nil, err
	}
	out := make(map[string]T, len(bs))
	for i, k := range ks {
		b, ok := bs[k]
		if !ok {
			continue
		}
		var v T
		if err := c.codec.Unmarshal(b, &v); err != nil {
			c.corrupt(ctx, k, err)
			continue
		}
		out[keys[i]] = v
	}
	add(c.rec.hits, len(out))
	add(c.rec.misses, len(keys)-len(out))
	return out, nil
}

// Set stores v under key with the TTL rules of Backend.
func (c *Typed[T]) Set(ctx context.Context, key string, v T, ttl time.Duration) error {
	k, err := c.key(key)
	if err != nil {
		return err
	}
	b, err := c.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache: encode %s: %w", k, err)
	}
	return c.set(ctx, k, b, ttl)
}

func (c *Typed[T]) set(ctx context.Context, k string, b []byte, ttl time.Duration) error {
	start := time.Now()
	err := c.b.Set(ctx, k, b, ttl)
	observeSince(c.obs["set"], start)
	if err != nil && !isUsageError(err) {
		c.backendError(ctx, "set", err)
	}
	return err
}

// Delete removes keys: the invalidation (on a Near, on every node).
func (c *Typed[T]) Delete(ctx context.Context, keys ...string) error {
	ks := make([]string, len(keys))
	for i, key := range keys {
		k, err := c.key(key)
		if err != nil {
			return err
		}
		ks[i] = k
	}
	start := time.Now()
	err := c.b.Delete(ctx, ks...)
	observeSince(c.obs["delete"], start)
	if err != nil {
		c.backendError(ctx, "delete", err)
	}
	return err
}

// Expire sets or changes the TTL of key (0 removes it); false when missing.
func (c *Typed[T]) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	k, err := c.key(key)
	if err != nil {
		return false, err
	}
	start := time.Now()
	ok, err := c.b.Expire(ctx, k, ttl)
	observeSince(c.obs["expire"], start)
	if err != nil && !isUsageError(err) {
		c.backendError(ctx, "expire", err)
	}
	return ok, err
}

// TTL returns the remaining TTL of key, as Backend.TTL.
func (c *Typed[T]) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	k, err := c.key(key)
	if err != nil {
		return 0, false, err
	}
	start := time.Now()
	d, ok, err := c.b.TTL(ctx, k)
	observeSince(c.obs["ttl"], start)
	if err != nil {
		c.backendError(ctx, "ttl", err)
	}
	return d, ok, err
}

// GetOrLoad returns the cached value of key, or calls loader, caches its
// value for ttl and returns it.
//
// Concurrent misses of one key on this node share one loader call
// (single-flight), and share its value: treat it as read-only. The loader
// runs detached from the cancellation of any one caller (so one caller
// giving up does not fail the others) and must bound its own work; a caller
// whose ctx ends stops waiting with ctx's error.
//
// Degradation: when the backend fails (Redis down or slow), the loader's
// value is returned anyway and not written back, and the error is counted
// and logged; no call waits on the backend longer than its timeout. Only
// invalid arguments (ErrInvalidKey, ErrInvalidTTL) and the loader's own
// error are returned.
func (c *Typed[T]) GetOrLoad(ctx context.Context, key string, ttl time.Duration, loader func(context.Context) (T, error)) (T, error) {
	var zero T
	k, err := c.key(key)
	if err != nil {
		return zero, err
	}
	if _, err := checkTTL(ttl); err != nil {
		return zero, err
	}
	v, ok, err := c.get(ctx, k)
	if ok {
		inc(c.rec.hits)
		return v, nil
	}
	inc(c.rec.misses)
	backendUp := err == nil
	ch := c.group.DoChan(k, func() (any, error) {
		return c.load(context.WithoutCancel(ctx), k, ttl, loader, backendUp)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		v, _ := r.Val.(T) // a nil interface value is T's zero value
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// load is the single flight of GetOrLoad.
func (c *Typed[T]) load(ctx context.Context, k string, ttl time.Duration, loader func(context.Context) (T, error), backendUp bool) (T, error) {
	if backendUp {
		// A flight that ended between our miss and this one may have
		// filled the entry.
		v, ok, err := c.get(ctx, k)
		if ok {
			return v, nil
		}
		backendUp = err == nil
	}
	inc(c.rec.loads)
	start := time.Now()
	v, err := loader(ctx)
	observeSince(c.obs["load"], start)
	if err != nil {
		inc(c.rec.loadErrors)
		var zero T
		return zero, err
	}
	if !backendUp {
		return v, nil // the backend just failed: do not wait on it again
	}
	b, err := c.codec.Marshal(v)
	if err != nil {
		c.logf(ctx, slog.LevelWarn, "cache: cannot encode loaded value", "key", k, "err", err)
		return v, nil
	}
	_ = c.set(ctx, k, b, ttl) // counted and logged; the value is good anyway
	return v, nil
}

// isUsageError reports the caller's mistakes, which are not backend faults.
func isUsageError(err error) bool {
	return errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrInvalidTTL) || errors.Is(err, ErrTooLarge)
}

func (c *Typed[T]) backendError(ctx context.Context, op string, err error) {
	inc(c.rec.backendErrors)
	c.logf(ctx, slog.LevelWarn, "cache: backend error", "op", op, "err", err)
}

// corrupt handles bytes that do not decode: the entry is deleted (best
// effort) and the read is a miss.
func (c *Typed[T]) corrupt(ctx context.Context, k string, err error) {
	c.logf(ctx, slog.LevelWarn, "cache: undecodable entry deleted", "key", k, "err", err)
	if err := c.b.Delete(ctx, k); err != nil {
		c.backendError(ctx, "delete", err)
	}
}

func (c *Typed[T]) logf(ctx context.Context, level slog.Level, msg string, args ...any) {
	if suppressed, ok := c.limit.allow(time.Now()); ok {
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		c.log.Log(ctx, level, msg, args...)
	}
}

// logLimiter lets one line through per interval and counts the others.
type logLimiter struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, with the number of lines suppressed
// since the last one.
func (l *logLimiter) allow(now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}
