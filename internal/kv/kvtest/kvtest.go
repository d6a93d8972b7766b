// Package kvtest is the conformance suite of kv.Store, and the local
// DynamoDB (dynalite) its DynamoDB run needs.
package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/kv"
)

// Run is the conformance suite. Every Store implementation must pass it
// unchanged. open returns an empty store (or one whose keys no other test
// sees) for one subtest; Run closes it when the subtest ends. The subtests
// run in parallel and take about two seconds of real time, for expiry.
func Run(t *testing.T, open func(t *testing.T) kv.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, kv.Store)
	}{
		{"PutGetVersions", testPutGet},
		{"BinarySafe", testBinarySafe},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"InvalidTTL", testInvalidTTL},
		{"MaxTTL", testMaxTTL},
		{"Expiry", testExpiry},
		{"PutIfAbsent", testPutIfAbsent},
		{"CompareAndSet", testCompareAndSet},
		{"CompareAndSetRace", testCASRace},
		{"Incr", testIncr},
		{"IncrConcurrent", testIncrConcurrent},
		{"IncrKeepsWindow", testIncrWindow},
		{"Limits", testLimits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: got %v, want nil", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// slack is the tolerance on expiry times: backends may take them from
// their own clock.
const slack = time.Second

func mustPut(t *testing.T, s kv.Store, key string, value []byte, ttl time.Duration) uint64 {
	t.Helper()
	ver, err := s.Put(ctx, key, value, ttl)
	if err != nil {
		t.Fatalf("Put(%q): got error %v, want nil", key, err)
	}
	return ver
}

func mustGet(t *testing.T, s kv.Store, key string) kv.Item {
	t.Helper()
	it, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): got error %v, want nil", key, err)
	}
	return it
}

// wantItem checks the live item under key.
func wantItem(t *testing.T, s kv.Store, key string, value []byte, version uint64) kv.Item {
	t.Helper()
	it := mustGet(t, s, key)
	if !bytes.Equal(it.Value, value) || it.Version != version {
		t.Fatalf("Get(%q): got %q v%d, want %q v%d", key, it.Value, it.Version, value, version)
	}
	return it
}

func wantMissing(t *testing.T, s kv.Store, key string) {
	t.Helper()
	if it, err := s.Get(ctx, key); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get(%q): got %q v%d, %v; want ErrNotFound", key, it.Value, it.Version, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// wantExpiry checks that it expires ttl after a moment in [before, after].
func wantExpiry(t *testing.T, it kv.Item, before, after time.Time, ttl time.Duration) {
	t.Helper()
	lo, hi := before.Add(ttl-slack), after.Add(ttl+slack)
	if it.ExpiresAt.Before(lo) || it.ExpiresAt.After(hi) {
		t.Fatalf("ExpiresAt: got %v, want between %v and %v", it.ExpiresAt, lo, hi)
	}
}

func wantNoExpiry(t *testing.T, it kv.Item) {
	t.Helper()
	if !it.ExpiresAt.IsZero() {
		t.Fatalf("ExpiresAt: got %v, want zero (no expiry)", it.ExpiresAt)
	}
}

func testPutGet(t *testing.T, s kv.Store) {
	for want := uint64(1); want <= 3; want++ {
		v := []byte("value " + strconv.FormatUint(want, 10))
		if got := mustPut(t, s, "k", v, 0); got != want {
			t.Fatalf("Put #%d: got version %d, want %d", want, got, want)
		}
		wantNoExpiry(t, wantItem(t, s, "k", v, want))
	}
	before := time.Now()
	if got := mustPut(t, s, "k", []byte("with ttl"), time.Hour); got != 4 {
		t.Fatalf("Put with ttl: got version %d, want 4", got)
	}
	wantExpiry(t, wantItem(t, s, "k", []byte("with ttl"), 4), before, time.Now(), time.Hour)
	// ttl 0 removes the expiry.
	mustPut(t, s, "k", []byte("forever"), 0)
	wantNoExpiry(t, wantItem(t, s, "k", []byte("forever"), 5))
	// The store keeps its own copy of the value.
	v := []byte("mine")
	mustPut(t, s, "copy", v, 0)
	v[0] = 'X'
	it := wantItem(t, s, "copy", []byte("mine"), 1)
	it.Value[0] = 'Y'
	wantItem(t, s, "copy", []byte("mine"), 1)
}

func testBinarySafe(t *testing.T, s kv.Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	keys := []string{
		"\x00", "\xff", "\xfe", "a\x00b", "\xff\xfe\x00 \r\n:{}*?[]", "日本語", "k ",
		"~b64:/w==", // what a DynamoDB encoding of "\xff" could look like
		string(all[1:]),
	}
	values := [][]byte{all, {}, []byte("\x00"), []byte("\xff\xfe"), []byte("日本語"), []byte(" "), []byte("{}"), []byte("x"), []byte("y")}
	for i, k := range keys {
		mustPut(t, s, k, values[i], 0)
	}
	for i, k := range keys {
		it := wantItem(t, s, k, values[i], 1)
		if it.Value == nil {
			t.Fatalf("Get(%q): got a nil value, want an empty one", k)
		}
	}
}

func testMissing(t *testing.T, s kv.Store) {
	wantMissing(t, s, "nope")
	_, err := s.CompareAndSet(ctx, "nope", []byte("x"), 0, 1)
	wantErr(t, "CompareAndSet on a missing key", err, kv.ErrNotFound)
	if err := s.Delete(ctx, "nope"); err != nil {
		t.Fatalf("Delete of a missing key: got %v, want nil", err)
	}
	wantMissing(t, s, "nope")
}

func testDelete(t *testing.T, s kv.Store) {
	mustPut(t, s, "d", []byte("1"), time.Hour)
	mustPut(t, s, "d", []byte("2"), time.Hour)
	mustPut(t, s, "other", []byte("o"), 0)
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatalf("Delete: got %v, want nil", err)
	}
	wantMissing(t, s, "d")
	if err := s.Delete(ctx, "d"); err != nil {
		t.Fatalf("second Delete: got %v, want nil", err)
	}
	wantItem(t, s, "other", []byte("o"), 1)
	if got := mustPut(t, s, "d", []byte("3"), 0); got != 1 {
		t.Fatalf("Put after Delete: got version %d, want 1", got)
	}
	// A deleted counter starts again.
	if _, err := s.Incr(ctx, "c", 5, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "c", 1, 0); err != nil || n != 1 {
		t.Fatalf("Incr after Delete: got %d, %v; want 1, nil", n, err)
	}
}

func testInvalidTTL(t *testing.T, s kv.Store) {
	mustPut(t, s, "live", []byte("keep"), 0)
	if _, err := s.Incr(ctx, "counter", 7, 0); err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{-1, -time.Second, kv.MaxTTL + 1, kv.MaxTTL + time.Hour, math.MinInt64} {
		for _, key := range []string{"live", "fresh"} {
			what := fmt.Sprintf("ttl %v on %s", ttl, key)
			_, err := s.Put(ctx, key, []byte("bad"), ttl)
			wantErr(t, "Put with "+what, err, kv.ErrInvalidTTL)
			_, err = s.PutIfAbsent(ctx, key, []byte("bad"), ttl)
			wantErr(t, "PutIfAbsent with "+what, err, kv.ErrInvalidTTL)
			_, err = s.CompareAndSet(ctx, key, []byte("bad"), ttl, 1)
			wantErr(t, "CompareAndSet with "+what, err, kv.ErrInvalidTTL)
		}
		_, err := s.Incr(ctx, "counter", 1, ttl)
		wantErr(t, fmt.Sprintf("Incr with ttl %v", ttl), err, kv.ErrInvalidTTL)
		_, err = s.Incr(ctx, "fresh", 1, ttl)
		wantErr(t, fmt.Sprintf("Incr with ttl %v on a missing key", ttl), err, kv.ErrInvalidTTL)
	}
	wantNoExpiry(t, wantItem(t, s, "live", []byte("keep"), 1))
	wantItem(t, s, "counter", []byte("7"), 1)
	wantMissing(t, s, "fresh")
}

func testMaxTTL(t *testing.T, s kv.Store) {
	before := time.Now()
	mustPut(t, s, "put", []byte("x"), kv.MaxTTL)
	if _, err := s.PutIfAbsent(ctx, "pia", []byte("x"), kv.MaxTTL); err != nil {
		t.Fatalf("PutIfAbsent with MaxTTL: got %v, want nil", err)
	}
	if _, err := s.CompareAndSet(ctx, "put", []byte("y"), kv.MaxTTL, 1); err != nil {
		t.Fatalf("CompareAndSet with MaxTTL: got %v, want nil", err)
	}
	if _, err := s.Incr(ctx, "incr", 1, kv.MaxTTL); err != nil {
		t.Fatalf("Incr with MaxTTL: got %v, want nil", err)
	}
	after := time.Now()
	for _, k := range []string{"put", "pia", "incr"} {
		wantExpiry(t, mustGet(t, s, k), before, after, kv.MaxTTL)
	}
	// A sub-millisecond TTL is not "no expiry".
	mustPut(t, s, "tiny", []byte("x"), time.Nanosecond)
	if it, err := s.Get(ctx, "tiny"); err == nil && it.ExpiresAt.IsZero() {
		t.Fatal("Put with a 1ns ttl: got no expiry, want one")
	}
}

// testExpiry uses real time: the TTLs are 1.1s and the test sleeps until
// 1.6s after the writes.
func testExpiry(t *testing.T, s kv.Store) {
	const ttl = 1100 * time.Millisecond
	before := time.Now()
	mustPut(t, s, "put", []byte("1"), ttl)
	if got := mustPut(t, s, "put", []byte("2"), ttl); got != 2 {
		t.Fatalf("second Put: got version %d, want 2", got)
	}
	if _, err := s.PutIfAbsent(ctx, "pia", []byte("1"), ttl); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "cas", []byte("1"), ttl)
	if _, err := s.Incr(ctx, "incr", 1, ttl); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "incr", 1, time.Hour); err != nil || n != 2 {
		t.Fatalf("Incr on a live counter: got %d, %v; want 2, nil", n, err)
	}
	mustPut(t, s, "persist", []byte("1"), ttl)
	mustPut(t, s, "persist", []byte("2"), 0)
	mustPut(t, s, "extend", []byte("1"), ttl)
	if _, err := s.CompareAndSet(ctx, "extend", []byte("2"), time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	wantExpiry(t, wantItem(t, s, "put", []byte("2"), 2), before, time.Now(), ttl)

	time.Sleep(time.Until(before.Add(1600 * time.Millisecond)))

	for _, k := range []string{"put", "pia", "cas", "incr"} {
		wantMissing(t, s, k)
	}
	if got := mustPut(t, s, "put", []byte("3"), 0); got != 1 {
		t.Fatalf("Put after expiry: got version %d, want 1", got)
	}
	if got, err := s.PutIfAbsent(ctx, "pia", []byte("2"), 0); err != nil || got != 1 {
		t.Fatalf("PutIfAbsent after expiry: got %d, %v; want 1, nil", got, err)
	}
	_, err := s.CompareAndSet(ctx, "cas", []byte("2"), 0, 1)
	wantErr(t, "CompareAndSet after expiry", err, kv.ErrNotFound)
	if n, err := s.Incr(ctx, "incr", 5, 0); err != nil || n != 5 {
		t.Fatalf("Incr after expiry: got %d, %v; want 5, nil", n, err)
	}
	wantNoExpiry(t, wantItem(t, s, "incr", []byte("5"), 1))
	wantNoExpiry(t, wantItem(t, s, "persist", []byte("2"), 2))
	wantItem(t, s, "extend", []byte("2"), 2)
}

func testPutIfAbsent(t *testing.T, s kv.Store) {
	before := time.Now()
	if got, err := s.PutIfAbsent(ctx, "p", []byte("first"), time.Hour); err != nil || got != 1 {
		t.Fatalf("PutIfAbsent on a missing key: got %d, %v; want 1, nil", got, err)
	}
	after := time.Now()
	_, err := s.PutIfAbsent(ctx, "p", []byte("second"), 0)
	wantErr(t, "PutIfAbsent on a live key", err, kv.ErrExists)
	wantExpiry(t, wantItem(t, s, "p", []byte("first"), 1), before, after, time.Hour)
	mustPut(t, s, "q", []byte("x"), 0)
	_, err = s.PutIfAbsent(ctx, "q", []byte("y"), 0)
	wantErr(t, "PutIfAbsent on a live key without expiry", err, kv.ErrExists)
	if err := s.Delete(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PutIfAbsent(ctx, "p", []byte("third"), 0); err != nil || got != 1 {
		t.Fatalf("PutIfAbsent after Delete: got %d, %v; want 1, nil", got, err)
	}
	wantNoExpiry(t, wantItem(t, s, "p", []byte("third"), 1))
}

func testCompareAndSet(t *testing.T, s kv.Store) {
	mustPut(t, s, "c", []byte("v1"), 0)
	if got, err := s.CompareAndSet(ctx, "c", []byte("v2"), 0, 1); err != nil || got != 2 {
		t.Fatalf("CompareAndSet(expect 1): got %d, %v; want 2, nil", got, err)
	}
	wantItem(t, s, "c", []byte("v2"), 2)
	for _, expect := range []uint64{0, 1, 3, math.MaxUint64} {
		_, err := s.CompareAndSet(ctx, "c", []byte("bad"), 0, expect)
		wantErr(t, fmt.Sprintf("CompareAndSet(expect %d) on v2", expect), err, kv.ErrVersionMismatch)
	}
	wantItem(t, s, "c", []byte("v2"), 2)
	before := time.Now()
	if got, err := s.CompareAndSet(ctx, "c", []byte("v3"), time.Hour, 2); err != nil || got != 3 {
		t.Fatalf("CompareAndSet(expect 2) with ttl: got %d, %v; want 3, nil", got, err)
	}
	wantExpiry(t, wantItem(t, s, "c", []byte("v3"), 3), before, time.Now(), time.Hour)
	if _, err := s.CompareAndSet(ctx, "c", []byte("v4"), 0, 3); err != nil {
		t.Fatal(err)
	}
	wantNoExpiry(t, wantItem(t, s, "c", []byte("v4"), 4))
	_, err := s.CompareAndSet(ctx, "missing", []byte("x"), 0, 1)
	wantErr(t, "CompareAndSet on a missing key", err, kv.ErrNotFound)
	wantMissing(t, s, "missing")
	// A counter can be replaced by CompareAndSet, and counted again.
	if _, err := s.Incr(ctx, "n", 10, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CompareAndSet(ctx, "n", []byte("100"), 0, 1); err != nil || got != 2 {
		t.Fatalf("CompareAndSet on a counter: got %d, %v; want 2, nil", got, err)
	}
	if n, err := s.Incr(ctx, "n", 1, 0); err != nil || n != 101 {
		t.Fatalf("Incr after CompareAndSet: got %d, %v; want 101, nil", n, err)
	}
}

// testCASRace: in each round 20 writers read the same version, then all
// try to replace it; exactly one may win.
func testCASRace(t *testing.T, s kv.Store) {
	const writers, rounds = 20, 3
	mustPut(t, s, "race", []byte("start"), 0)
	for round := 1; round <= rounds; round++ {
		var ready, done sync.WaitGroup
		var mu sync.Mutex
		var wins, mismatches int
		var failures []error
		ready.Add(writers)
		done.Add(writers)
		for w := range writers {
			go func() {
				defer done.Done()
				it, err := s.Get(ctx, "race")
				ready.Done()
				ready.Wait() // everyone has read before anyone writes
				if err == nil {
					_, err = s.CompareAndSet(ctx, "race", []byte(fmt.Sprintf("r%d w%d", round, w)), 0, it.Version)
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, kv.ErrVersionMismatch):
					mismatches++
				default:
					failures = append(failures, err)
				}
			}()
		}
		done.Wait()
		if len(failures) > 0 || wins != 1 || mismatches != writers-1 {
			t.Fatalf("round %d: got %d wins, %d mismatches, errors %v; want 1, %d, none",
				round, wins, mismatches, failures, writers-1)
		}
	}
	if it := mustGet(t, s, "race"); it.Version != rounds+1 || !strings.HasPrefix(string(it.Value), fmt.Sprintf("r%d ", rounds)) {
		t.Fatalf("after the race: got %q v%d, want r%d's value v%d", it.Value, it.Version, rounds, rounds+1)
	}
}

func testIncr(t *testing.T, s kv.Store) {
	steps := []struct{ delta, want int64 }{{5, 5}, {-7, -2}, {0, -2}, {1, -1}}
	for i, st := range steps {
		if n, err := s.Incr(ctx, "n", st.delta, 0); err != nil || n != st.want {
			t.Fatalf("Incr #%d by %d: got %d, %v; want %d, nil", i+1, st.delta, n, err, st.want)
		}
	}
	wantNoExpiry(t, wantItem(t, s, "n", []byte("-1"), uint64(len(steps))))
	if n, err := s.Incr(ctx, "zero", 0, 0); err != nil || n != 0 {
		t.Fatalf("Incr by 0 on a missing key: got %d, %v; want 0, nil", n, err)
	}
	wantItem(t, s, "zero", []byte("0"), 1)

	// A value written by Put is a counter when it is a canonical int64.
	mustPut(t, s, "put", []byte("41"), 0)
	if n, err := s.Incr(ctx, "put", 1, 0); err != nil || n != 42 {
		t.Fatalf("Incr on Put \"41\": got %d, %v; want 42, nil", n, err)
	}
	wantItem(t, s, "put", []byte("42"), 2)
	for _, v := range []string{"abc", "", "007", "+1", " 1", "1 ", "1.5", "0x10", "-0", "9223372036854775808", "1e3"} {
		mustPut(t, s, "bad", []byte(v), 0)
		_, err := s.Incr(ctx, "bad", 1, 0)
		wantErr(t, fmt.Sprintf("Incr on %q", v), err, kv.ErrNotCounter)
		wantItem(t, s, "bad", []byte(v), mustGet(t, s, "bad").Version)
	}
	// Beyond 2^53 (exact) and at the int64 limits.
	mustPut(t, s, "big", []byte("9007199254740993"), 0)
	if n, err := s.Incr(ctx, "big", 2, 0); err != nil || n != 9007199254740995 {
		t.Fatalf("Incr beyond 2^53: got %d, %v; want 9007199254740995, nil", n, err)
	}
	for _, c := range []struct {
		start string
		delta int64
	}{{"9223372036854775807", 1}, {"9223372036854775800", 100}, {"-9223372036854775808", -1}, {"-1", math.MinInt64}} {
		// Once as written by Put, once as written by Incr.
		ver := mustPut(t, s, "edge", []byte(c.start), 0)
		for _, how := range []string{"Put", "Incr"} {
			_, err := s.Incr(ctx, "edge", c.delta, 0)
			wantErr(t, fmt.Sprintf("Incr %s (by %s) by %d", c.start, how, c.delta), err, kv.ErrOverflow)
			wantItem(t, s, "edge", []byte(c.start), ver)
			if _, err := s.Incr(ctx, "edge", 0, 0); err != nil {
				t.Fatalf("Incr %s by 0: got %v, want nil", c.start, err)
			}
			ver++
		}
	}
	mustPut(t, s, "max", []byte("9223372036854775806"), 0)
	if n, err := s.Incr(ctx, "max", 1, 0); err != nil || n != math.MaxInt64 {
		t.Fatalf("Incr to MaxInt64: got %d, %v; want %d, nil", n, err, int64(math.MaxInt64))
	}
	if n, err := s.Incr(ctx, "max", math.MinInt64, 0); err != nil || n != -1 {
		t.Fatalf("Incr MaxInt64 by MinInt64: got %d, %v; want -1, nil", n, err)
	}
}

// testIncrConcurrent: 20 goroutines add 1 25 times each; every result is
// distinct and the counter ends at 500.
func testIncrConcurrent(t *testing.T, s kv.Store) {
	const workers, each = 20, 25
	results := make(chan int64, workers*each)
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				n, err := s.Incr(ctx, "hits", 1, time.Hour)
				if err != nil {
					errs <- err
					return
				}
				results <- n
			}
		}()
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatalf("Incr: got error %v, want nil", err)
	}
	seen := make(map[int64]bool)
	for n := range results {
		if n < 1 || n > workers*each || seen[n] {
			t.Fatalf("Incr returned %d: want distinct values in 1..%d", n, workers*each)
		}
		seen[n] = true
	}
	wantItem(t, s, "hits", []byte(strconv.Itoa(workers*each)), workers*each)
}

func testIncrWindow(t *testing.T, s kv.Store) {
	if _, err := s.Incr(ctx, "w", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	first := mustGet(t, s, "w").ExpiresAt
	if first.IsZero() {
		t.Fatal("ExpiresAt of a new counter with ttl: got zero, want one")
	}
	time.Sleep(20 * time.Millisecond)
	for _, ttl := range []time.Duration{2 * time.Hour, 0, time.Millisecond} {
		if _, err := s.Incr(ctx, "w", 1, ttl); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, "w").ExpiresAt; !got.Equal(first) {
			t.Fatalf("ExpiresAt after Incr with ttl %v: got %v, want %v (unchanged)", ttl, got, first)
		}
	}
	wantItem(t, s, "w", []byte("4"), 4)
	// A counter without expiry keeps none.
	if _, err := s.Incr(ctx, "forever", 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "forever", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	wantNoExpiry(t, wantItem(t, s, "forever", []byte("2"), 2))
}

func testLimits(t *testing.T, s kv.Store) {
	big := bytes.Repeat([]byte("0123456789abcdef"), kv.MaxValueBytes/16)
	if len(big) != kv.MaxValueBytes {
		t.Fatalf("test value: got %d bytes, want %d", len(big), kv.MaxValueBytes)
	}
	mustPut(t, s, "big", big, time.Hour)
	wantItem(t, s, "big", big, 1)
	if _, err := s.CompareAndSet(ctx, "big", big, 0, 1); err != nil {
		t.Fatalf("CompareAndSet of %d bytes: got %v, want nil", len(big), err)
	}
	if _, err := s.PutIfAbsent(ctx, "big2", big, 0); err != nil {
		t.Fatalf("PutIfAbsent of %d bytes: got %v, want nil", len(big), err)
	}
	tooBig := append(big, 'x')
	for _, key := range []string{"big", "fresh"} {
		_, err := s.Put(ctx, key, tooBig, 0)
		wantErr(t, "Put of MaxValueBytes+1 on "+key, err, kv.ErrTooLarge)
		_, err = s.PutIfAbsent(ctx, key, tooBig, 0)
		wantErr(t, "PutIfAbsent of MaxValueBytes+1 on "+key, err, kv.ErrTooLarge)
		_, err = s.CompareAndSet(ctx, key, tooBig, 0, 2)
		wantErr(t, "CompareAndSet of MaxValueBytes+1 on "+key, err, kv.ErrTooLarge)
	}
	wantItem(t, s, "big", big, 2)
	wantMissing(t, s, "fresh")

	for _, key := range []string{strings.Repeat("k", kv.MaxKeyBytes), strings.Repeat("\xff", kv.MaxKeyBytes)} {
		mustPut(t, s, key, []byte("long key"), 0)
		wantItem(t, s, key, []byte("long key"), 1)
	}
	for _, key := range []string{"", strings.Repeat("k", kv.MaxKeyBytes+1)} {
		what := fmt.Sprintf("key of %d bytes", len(key))
		_, err := s.Get(ctx, key)
		wantErr(t, "Get of "+what, err, kv.ErrInvalidKey)
		_, err = s.Put(ctx, key, []byte("x"), 0)
		wantErr(t, "Put of "+what, err, kv.ErrInvalidKey)
		_, err = s.PutIfAbsent(ctx, key, []byte("x"), 0)
		wantErr(t, "PutIfAbsent of "+what, err, kv.ErrInvalidKey)
		_, err = s.CompareAndSet(ctx, key, []byte("x"), 0, 1)
		wantErr(t, "CompareAndSet of "+what, err, kv.ErrInvalidKey)
		_, err = s.Incr(ctx, key, 1, 0)
		wantErr(t, "Incr of "+what, err, kv.ErrInvalidKey)
		err = s.Delete(ctx, key)
		wantErr(t, "Delete of "+what, err, kv.ErrInvalidKey)
	}
}
