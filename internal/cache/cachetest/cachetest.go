// Package cachetest is the conformance suite of cache.Backend: every
// implementation must pass it unchanged.
package cachetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/cache"
)

// Run is the conformance suite. open returns a new, empty backend for one
// subtest (subtests run in parallel, so backends sharing a store must use
// distinct key prefixes); Run closes it when the subtest ends. TTL tests use
// real time (Redis keeps its own clock), so backends must run on time.Now.
func Run(t *testing.T, open func(t *testing.T) cache.Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, cache.Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"BinarySafe", testBinarySafe},
		{"Missing", testMissing},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"TTLRules", testTTLRules},
		{"ShortTTLExpires", testShortTTLExpires},
		{"Expire", testExpire},
		{"TTL", testTTL},
		{"GetMulti", testGetMulti},
		{"Sizes", testSizes},
		{"InvalidKeys", testInvalidKeys},
		{"CanceledContext", testCanceledContext},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := open(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, b)
		})
	}
}

var ctx = context.Background()

// ttlSlack is how far a TTL read back may be below the one set.
const ttlSlack = 5 * time.Second

func mustSet(t *testing.T, b cache.Backend, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := b.Set(ctx, key, value, ttl); err != nil {
		t.Fatalf("Set(%q, %d bytes, %v): %v", key, len(value), ttl, err)
	}
}

// wantValue checks that key holds want.
func wantValue(t *testing.T, b cache.Backend, key string, want []byte) {
	t.Helper()
	got, ok, err := b.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !ok {
		t.Fatalf("Get(%q): got missing, want %q", key, short(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q): got %q, want %q", key, short(got), short(want))
	}
}

// wantMissing checks that key is missing.
func wantMissing(t *testing.T, b cache.Backend, key string) {
	t.Helper()
	got, ok, err := b.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if ok || got != nil {
		t.Fatalf("Get(%q): got %q, %v; want nil, false", key, short(got), ok)
	}
}

// wantTTL checks TTL(key): present with a remaining time in (lo, hi], where
// hi == 0 means no expiry.
func wantTTL(t *testing.T, b cache.Backend, key string, lo, hi time.Duration) {
	t.Helper()
	d, ok, err := b.TTL(ctx, key)
	if err != nil {
		t.Fatalf("TTL(%q): %v", key, err)
	}
	if !ok {
		t.Fatalf("TTL(%q): got missing, want present", key)
	}
	if hi == 0 {
		if d != 0 {
			t.Fatalf("TTL(%q): got %v, want 0 (no expiry)", key, d)
		}
		return
	}
	if d <= lo || d > hi {
		t.Fatalf("TTL(%q): got %v, want in (%v, %v]", key, d, lo, hi)
	}
}

func short(b []byte) []byte {
	if len(b) > 32 {
		return append(b[:32:32], "..."...)
	}
	return b
}

func testRoundTrip(t *testing.T, b cache.Backend) {
	mustSet(t, b, "k", []byte("hello"), 0)
	wantValue(t, b, "k", []byte("hello"))
	// An empty value is present, not missing.
	mustSet(t, b, "empty", []byte{}, 0)
	got, ok, err := b.Get(ctx, "empty")
	if err != nil || !ok || len(got) != 0 {
		t.Fatalf("Get(empty): got %q, %v, %v; want empty, true, nil", got, ok, err)
	}
	// Values are copies: changing the caller's slices changes nothing.
	v := []byte("abc")
	mustSet(t, b, "copy", v, 0)
	v[0] = 'X'
	got, _, _ = b.Get(ctx, "copy")
	got[1] = 'Y'
	wantValue(t, b, "copy", []byte("abc"))
}

func testBinarySafe(t *testing.T, b cache.Backend) {
	keys := []string{"nul\x00key", "\xff\xfe\xfd", "space key", "\x00", "ключ", "{tag}:x"}
	value := []byte("a\x00b\xff\xfe\x80\r\n\x00")
	for i, k := range keys {
		v := append([]byte(fmt.Sprint(i)), value...)
		mustSet(t, b, k, v, time.Hour)
	}
	for i, k := range keys {
		wantValue(t, b, k, append([]byte(fmt.Sprint(i)), value...))
	}
	// "nul\x00key" must not be confused with "nul".
	wantMissing(t, b, "nul")
	got, err := b.GetMulti(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("GetMulti: got %d keys, want %d", len(got), len(keys))
	}
	if err := b.Delete(ctx, keys[0], keys[1]); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, b, keys[0])
	wantMissing(t, b, keys[1])
	wantValue(t, b, keys[2], append([]byte("2"), value...))
}

func testMissing(t *testing.T, b cache.Backend) {
	wantMissing(t, b, "never-set")
	if d, ok, err := b.TTL(ctx, "never-set"); err != nil || ok || d != 0 {
		t.Fatalf("TTL(missing): got %v, %v, %v; want 0, false, nil", d, ok, err)
	}
}

func testOverwrite(t *testing.T, b cache.Backend) {
	mustSet(t, b, "k", []byte("one"), time.Hour)
	mustSet(t, b, "k", []byte("two-longer"), time.Hour)
	wantValue(t, b, "k", []byte("two-longer"))
	mustSet(t, b, "k", []byte("3"), time.Hour)
	wantValue(t, b, "k", []byte("3"))
	// Overwriting with ttl 0 removes the previous expiry.
	mustSet(t, b, "k", []byte("4"), 0)
	wantTTL(t, b, "k", 0, 0)
	// And overwriting with a ttl sets one.
	mustSet(t, b, "k", []byte("5"), time.Minute)
	wantTTL(t, b, "k", time.Minute-ttlSlack, time.Minute)
}

func testDelete(t *testing.T, b cache.Backend) {
	for i := range 6 {
		mustSet(t, b, fmt.Sprintf("d%d", i), []byte{byte(i)}, 0)
	}
	if err := b.Delete(ctx, "d0", "d1", "d2", "missing", "d3"); err != nil {
		t.Fatalf("Delete(many + missing): %v", err)
	}
	for i := range 4 {
		wantMissing(t, b, fmt.Sprintf("d%d", i))
	}
	wantValue(t, b, "d4", []byte{4})
	wantValue(t, b, "d5", []byte{5})
	if err := b.Delete(ctx, "missing"); err != nil {
		t.Fatalf("Delete(missing): got %v, want nil", err)
	}
	if err := b.Delete(ctx); err != nil {
		t.Fatalf("Delete(): got %v, want nil", err)
	}
	// A deleted key can be set again.
	mustSet(t, b, "d0", []byte("again"), 0)
	wantValue(t, b, "d0", []byte("again"))
}

func testTTLRules(t *testing.T, b cache.Backend) {
	mustSet(t, b, "forever", []byte("v"), 0)
	wantTTL(t, b, "forever", 0, 0)

	mustSet(t, b, "k", []byte("old"), 0)
	for _, ttl := range []time.Duration{-1, -time.Hour, cache.MaxTTL + time.Millisecond, cache.MaxTTL + 1} {
		if err := b.Set(ctx, "k", []byte("new"), ttl); !errors.Is(err, cache.ErrInvalidTTL) {
			t.Fatalf("Set(ttl %v): got %v, want ErrInvalidTTL", ttl, err)
		}
		if err := b.Set(ctx, "fresh", []byte("new"), ttl); !errors.Is(err, cache.ErrInvalidTTL) {
			t.Fatalf("Set(ttl %v): got %v, want ErrInvalidTTL", ttl, err)
		}
	}
	wantValue(t, b, "k", []byte("old"))
	wantTTL(t, b, "k", 0, 0)
	wantMissing(t, b, "fresh")

	nineYears := 9 * 365 * 24 * time.Hour
	mustSet(t, b, "long", []byte("v"), nineYears)
	wantTTL(t, b, "long", nineYears-ttlSlack, nineYears)
	mustSet(t, b, "max", []byte("v"), cache.MaxTTL)
	wantTTL(t, b, "max", cache.MaxTTL-ttlSlack, cache.MaxTTL)
	// Below a millisecond rounds up to one: the entry is written.
	mustSet(t, b, "tiny", []byte("v"), time.Nanosecond)
}

func testShortTTLExpires(t *testing.T, b cache.Backend) {
	set := time.Now()
	mustSet(t, b, "short", []byte("v"), 50*time.Millisecond)
	mustSet(t, b, "stays", []byte("v"), time.Hour)
	if _, err := b.Expire(ctx, "stays", 0); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "expire-short", []byte("v"), 0)
	if ok, err := b.Expire(ctx, "expire-short", 50*time.Millisecond); err != nil || !ok {
		t.Fatalf("Expire(50ms): got %v, %v; want true, nil", ok, err)
	}
	// On a loaded machine the 50 ms may already be over: only then is
	// "missing" the right answer too.
	if got, ok, err := b.Get(ctx, "short"); err != nil || (!ok && time.Since(set) < 50*time.Millisecond) || (ok && string(got) != "v") {
		t.Fatalf("Get(short) within its TTL: %q, %v, %v", got, ok, err)
	}
	time.Sleep(150 * time.Millisecond)
	wantMissing(t, b, "short")
	wantMissing(t, b, "expire-short")
	wantValue(t, b, "stays", []byte("v"))
	if _, ok, err := b.TTL(ctx, "short"); err != nil || ok {
		t.Fatalf("TTL(expired): got present=%v, %v; want missing", ok, err)
	}
	if got, err := b.GetMulti(ctx, []string{"short", "stays"}); err != nil || len(got) != 1 {
		t.Fatalf("GetMulti(expired, live): got %d keys, %v; want 1", len(got), err)
	}
	if ok, err := b.Expire(ctx, "short", time.Hour); err != nil || ok {
		t.Fatalf("Expire(expired): got %v, %v; want false, nil", ok, err)
	}
}

func testExpire(t *testing.T, b cache.Backend) {
	if ok, err := b.Expire(ctx, "missing", time.Hour); err != nil || ok {
		t.Fatalf("Expire(missing, 1h): got %v, %v; want false, nil", ok, err)
	}
	if ok, err := b.Expire(ctx, "missing", 0); err != nil || ok {
		t.Fatalf("Expire(missing, 0): got %v, %v; want false, nil", ok, err)
	}
	wantMissing(t, b, "missing")

	mustSet(t, b, "k", []byte("v"), 0)
	if ok, err := b.Expire(ctx, "k", time.Hour); err != nil || !ok {
		t.Fatalf("Expire(1h): got %v, %v; want true, nil", ok, err)
	}
	wantTTL(t, b, "k", time.Hour-ttlSlack, time.Hour)
	if ok, err := b.Expire(ctx, "k", 2*time.Hour); err != nil || !ok {
		t.Fatalf("Expire(2h): got %v, %v; want true, nil", ok, err)
	}
	wantTTL(t, b, "k", 2*time.Hour-ttlSlack, 2*time.Hour)
	if ok, err := b.Expire(ctx, "k", 0); err != nil || !ok {
		t.Fatalf("Expire(0): got %v, %v; want true, nil", ok, err)
	}
	wantTTL(t, b, "k", 0, 0)
	// Expire(0) on an entry without expiry still reports it present.
	if ok, err := b.Expire(ctx, "k", 0); err != nil || !ok {
		t.Fatalf("Expire(0) again: got %v, %v; want true, nil", ok, err)
	}
	wantValue(t, b, "k", []byte("v"))

	for _, ttl := range []time.Duration{-time.Second, cache.MaxTTL + time.Second} {
		if _, err := b.Expire(ctx, "k", ttl); !errors.Is(err, cache.ErrInvalidTTL) {
			t.Fatalf("Expire(%v): got %v, want ErrInvalidTTL", ttl, err)
		}
	}
	wantTTL(t, b, "k", 0, 0)
}

func testTTL(t *testing.T, b cache.Backend) {
	if d, ok, err := b.TTL(ctx, "missing"); err != nil || ok || d != 0 {
		t.Fatalf("TTL(missing): got %v, %v, %v; want 0, false, nil", d, ok, err)
	}
	mustSet(t, b, "forever", []byte("v"), 0)
	wantTTL(t, b, "forever", 0, 0)
	mustSet(t, b, "minute", []byte("v"), time.Minute)
	wantTTL(t, b, "minute", time.Minute-ttlSlack, time.Minute)
	mustSet(t, b, "ms", []byte("v"), 1500*time.Millisecond)
	wantTTL(t, b, "ms", 0, 1500*time.Millisecond)
}

func testGetMulti(t *testing.T, b cache.Backend) {
	mustSet(t, b, "a", []byte("1"), 0)
	mustSet(t, b, "b", []byte("2"), time.Hour)
	mustSet(t, b, "c", []byte{}, 0)
	got, err := b.GetMulti(ctx, []string{"a", "missing1", "b", "c", "missing2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "b": "2", "c": ""}
	if len(got) != len(want) {
		t.Fatalf("GetMulti: got %d keys %q, want %q", len(got), got, want)
	}
	for k, w := range want {
		v, ok := got[k]
		if !ok || string(v) != w {
			t.Fatalf("GetMulti[%q]: got %q, %v; want %q", k, v, ok, w)
		}
	}
	got, err = b.GetMulti(ctx, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMulti(nil): got %v, %v; want empty", got, err)
	}
	got, err = b.GetMulti(ctx, []string{"missing"})
	if err != nil || len(got) != 0 {
		t.Fatalf("GetMulti(missing): got %v, %v; want empty", got, err)
	}
	// Many keys (in a Cluster, many slots).
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("many-%d", i)
		if i%2 == 0 {
			mustSet(t, b, keys[i], []byte(keys[i]), time.Hour)
		}
	}
	got, err = b.GetMulti(ctx, keys)
	if err != nil || len(got) != 50 {
		t.Fatalf("GetMulti(100 keys, 50 present): got %d, %v; want 50", len(got), err)
	}
	for k, v := range got {
		if string(v) != k {
			t.Fatalf("GetMulti[%q]: got %q, want %q", k, v, k)
		}
	}
}

func testSizes(t *testing.T, b cache.Backend) {
	big := bytes.Repeat([]byte{0xAB}, cache.MaxValueBytes)
	mustSet(t, b, "big", big, time.Minute)
	wantValue(t, b, "big", big)
	tooBig := append(bytes.Clone(big), 1)
	mustSet(t, b, "k", []byte("old"), 0)
	if err := b.Set(ctx, "k", tooBig, 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Fatalf("Set(MaxValueBytes+1): got %v, want ErrTooLarge", err)
	}
	wantValue(t, b, "k", []byte("old"))
	if err := b.Set(ctx, "fresh", tooBig, 0); !errors.Is(err, cache.ErrTooLarge) {
		t.Fatalf("Set(MaxValueBytes+1): got %v, want ErrTooLarge", err)
	}
	wantMissing(t, b, "fresh")

	longKey := strings.Repeat("k", cache.MaxKeyBytes)
	mustSet(t, b, longKey, []byte("v"), 0)
	wantValue(t, b, longKey, []byte("v"))
}

func testInvalidKeys(t *testing.T, b cache.Backend) {
	for _, key := range []string{"", strings.Repeat("k", cache.MaxKeyBytes+1)} {
		name := fmt.Sprintf("key of %d bytes", len(key))
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, cache.ErrInvalidKey) {
				t.Errorf("%s(%s): got %v, want ErrInvalidKey", op, name, err)
			}
		}
		_, _, err := b.Get(ctx, key)
		check("Get", err)
		check("Set", b.Set(ctx, key, []byte("v"), 0))
		check("Delete", b.Delete(ctx, "fine", key))
		_, err = b.Expire(ctx, key, time.Hour)
		check("Expire", err)
		_, _, err = b.TTL(ctx, key)
		check("TTL", err)
		_, err = b.GetMulti(ctx, []string{"fine", key})
		check("GetMulti", err)
	}
}

func testCanceledContext(t *testing.T, b cache.Backend) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Set(c, "k", []byte("v"), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set(canceled ctx): got %v, want context.Canceled", err)
	}
	if _, _, err := b.Get(c, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get(canceled ctx): got %v, want context.Canceled", err)
	}
	if _, err := b.GetMulti(c, []string{"k"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetMulti(canceled ctx): got %v, want context.Canceled", err)
	}
}

func testConcurrent(t *testing.T, b cache.Backend) {
	const workers, ops, keys = 8, 100, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				k := fmt.Sprintf("c%d", (w+i)%keys)
				// A value names its key, so torn or crossed writes show.
				v := []byte(fmt.Sprintf("%s=%d.%d", k, w, i))
				var err error
				switch i % 4 {
				case 0, 1:
					err = b.Set(ctx, k, v, time.Minute)
				case 2:
					var got []byte
					var ok bool
					got, ok, err = b.Get(ctx, k)
					if err == nil && ok && !bytes.HasPrefix(got, []byte(k+"=")) {
						err = fmt.Errorf("Get(%q): got %q, want a value of %q", k, got, k)
					}
				case 3:
					if i%8 == 3 {
						err = b.Delete(ctx, k)
					} else {
						_, err = b.GetMulti(ctx, []string{k, "c0"})
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
