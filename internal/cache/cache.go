// Package cache is multijuego's cache for frequently read data: store and
// fetch by key with an optional time-to-live, invalidate (remove an entry
// everywhere), expire (set or change an entry's time-to-live), and
// consistency across nodes.
//
// Backend is the byte-level contract. Its implementations (in-process
// memory for the embedded default, Redis standalone or Cluster at scale, and
// a per-node near-cache in front of Redis kept coherent across nodes) all
// pass one conformance suite (cachetest). Typed is the layer services use:
// a codec, namespaced and versioned keys, GetOrLoad with single-flight, and
// metrics.
//
// Wiring: NewMemory for one node; ParseRedisURL and NewRedis for Redis;
// NewNear over a Redis for a coherent per-node near tier; NewTyped over any
// of them, with NewMetrics for Prometheus.
package cache

import (
	"context"
	"errors"
	"time"
)

// TTL rules, the same for every backend:
//   - ttl > 0: the entry expires after ttl (rounded up to the millisecond).
//   - ttl == 0: the entry does not expire.
//   - ttl < 0 or ttl > MaxTTL: ErrInvalidTTL, and nothing is written.
const MaxTTL = 10 * 365 * 24 * time.Hour

// Limits on keys and values, the same for every backend.
const (
	MaxKeyBytes   = 1024
	MaxValueBytes = 1 << 20 // 1 MiB
)

var (
	// ErrInvalidTTL is returned for a negative TTL or one above MaxTTL.
	ErrInvalidTTL = errors.New("cache: ttl must be between 0 (no expiry) and 10 years")
	// ErrInvalidKey is returned for an empty key or one over MaxKeyBytes.
	ErrInvalidKey = errors.New("cache: key must be 1 to 1024 bytes")
	// ErrTooLarge is returned for a value over MaxValueBytes.
	ErrTooLarge = errors.New("cache: value larger than 1 MiB")
)

// Backend stores opaque bytes by key. Keys and values are binary-safe.
// Every method honours ctx and the backend's own operation timeout.
type Backend interface {
	// Get returns the value and true, or nil and false when the key is
	// missing or expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// GetMulti returns the present keys' values (missing keys are absent
	// from the map) in one round trip where the backend allows.
	GetMulti(ctx context.Context, keys []string) (map[string][]byte, error)
	// Set stores value under key with the TTL rules above.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes the keys (missing keys are not an error). On a
	// near-cache this is the cross-node invalidation.
	Delete(ctx context.Context, keys ...string) error
	// Expire sets or changes the TTL of an existing entry (ttl == 0 removes
	// the expiry); it returns false when the key is missing.
	Expire(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// TTL returns the remaining time-to-live: (d, true) for an entry that
	// expires, (0, true) for one that does not, (0, false) when missing.
	TTL(ctx context.Context, key string) (time.Duration, bool, error)
	// Close releases the backend's resources.
	Close() error
}
