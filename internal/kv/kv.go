// Package kv is multijuego's key-value store with time-to-live, for volatile
// data that must be shared by every node: the token deny list, presence,
// resume tokens, matchmaking tickets, rate-limit counters and leases.
//
// Store is the contract. Its implementations (in-process memory for the
// embedded default, Redis, and DynamoDB) all pass one conformance suite
// (kvtest).
package kv

import (
	"context"
	"errors"
	"time"
)

// TTL rules, the same for every backend:
//   - ttl > 0: the item expires after ttl (millisecond precision; DynamoDB
//     filters expired items on read, as its own TTL deletes them lazily).
//   - ttl == 0: the item does not expire.
//   - ttl < 0 or ttl > MaxTTL: ErrInvalidTTL, and nothing is written.
const MaxTTL = 10 * 365 * 24 * time.Hour

// Limits, the same for every backend (DynamoDB's item limit is 400 KB).
const (
	MaxKeyBytes   = 1024
	MaxValueBytes = 300 << 10
)

var (
	// ErrNotFound: the key is missing or expired.
	ErrNotFound = errors.New("kv: not found")
	// ErrExists: PutIfAbsent found a live item.
	ErrExists = errors.New("kv: already exists")
	// ErrVersionMismatch: CompareAndSet found another version.
	ErrVersionMismatch = errors.New("kv: version mismatch")
	// ErrInvalidTTL: negative or above MaxTTL.
	ErrInvalidTTL = errors.New("kv: ttl must be between 0 (no expiry) and 10 years")
	// ErrInvalidKey: empty or over MaxKeyBytes.
	ErrInvalidKey = errors.New("kv: key must be 1 to 1024 bytes")
	// ErrTooLarge: value over MaxValueBytes.
	ErrTooLarge = errors.New("kv: value too large")
	// ErrNotCounter: Incr on an item that does not hold a counter. An item
	// holds a counter when its value is the canonical decimal form of an
	// int64 ("42", "-7"; not "+7", "007" or " 7"), whether Incr or Put
	// wrote it.
	ErrNotCounter = errors.New("kv: item is not a counter")
	// ErrOverflow: Incr would take the counter beyond the int64 range; the
	// counter is left unchanged.
	ErrOverflow = errors.New("kv: counter overflow")
	// ErrFull: the in-process store holds its maximum number of items and
	// none has expired; writes to existing keys still succeed, new keys are
	// refused (nothing is ever evicted: counters and leases must not vanish).
	ErrFull = errors.New("kv: store full")
)

// Item is a stored value with its version. Versions start at 1 and grow by
// one with every write of the key; an expired or deleted key starts again.
type Item struct {
	Value     []byte
	Version   uint64
	ExpiresAt time.Time // zero when the item does not expire
}

// Store is a key-value store with TTL and conditional writes. Keys and
// values are binary-safe.
type Store interface {
	// Get returns the live item or ErrNotFound.
	Get(ctx context.Context, key string) (Item, error)
	// Put writes unconditionally and returns the new version.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error)
	// PutIfAbsent writes only when no live item exists (an expired item
	// counts as absent): version 1, or ErrExists.
	PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error)
	// CompareAndSet writes only when the live item has version expect, and
	// returns the new version; ErrVersionMismatch otherwise, ErrNotFound
	// when there is no live item.
	CompareAndSet(ctx context.Context, key string, value []byte, ttl time.Duration, expect uint64) (uint64, error)
	// Delete removes the key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Incr adds delta to a counter and returns the new value. A missing or
	// expired counter starts at 0 and gets ttl; a live counter keeps its
	// expiry (fixed windows for rate limits).
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Close releases the store's resources.
	Close() error
}
