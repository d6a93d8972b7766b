package kv

import (
	"math"
	"strconv"
	"time"
)

// checkKey enforces the key limits of every backend.
func checkKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyBytes {
		return ErrInvalidKey
	}
	return nil
}

// checkTTL enforces the TTL rules of every backend.
func checkTTL(ttl time.Duration) error {
	if ttl < 0 || ttl > MaxTTL {
		return ErrInvalidTTL
	}
	return nil
}

// checkWrite validates the arguments of a write before anything is sent.
func checkWrite(key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueBytes {
		return ErrTooLarge
	}
	return checkTTL(ttl)
}

// ttlMillis is ttl in whole milliseconds, rounded up so that a positive TTL
// never becomes 0 (no expiry).
func ttlMillis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// parseCounter reads a counter value: the canonical decimal form of an
// int64, the only form Redis's HINCRBY accepts too.
func parseCounter(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != string(b) {
		return 0, false
	}
	return n, true
}

// addOverflows reports whether n+delta leaves the int64 range.
func addOverflows(n, delta int64) bool {
	if delta > 0 {
		return n > math.MaxInt64-delta
	}
	return n < math.MinInt64-delta
}
