package cache

import "time"

// checkKey enforces the key rule of every backend.
func checkKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyBytes {
		return ErrInvalidKey
	}
	return nil
}

// checkKeys checks every key of a multi-key call.
func checkKeys(keys []string) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	return nil
}

// checkTTL enforces the TTL rules and returns the TTL rounded up to the
// millisecond (0 for no expiry).
func checkTTL(ttl time.Duration) (time.Duration, error) {
	if ttl < 0 || ttl > MaxTTL {
		return 0, ErrInvalidTTL
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl, nil
}

// checkSet checks the arguments of a Set.
func checkSet(key string, value []byte, ttl time.Duration) (time.Duration, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if len(value) > MaxValueBytes {
		return 0, ErrTooLarge
	}
	return checkTTL(ttl)
}
