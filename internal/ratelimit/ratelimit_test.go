package ratelimit_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/logtest"
	"github.com/multijuego/multijuego/internal/ratelimit"
	"github.com/multijuego/multijuego/internal/redistest"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ratelimit.Rule
		text string
	}{
		{"60/1m", ratelimit.Rule{Limit: 60, Period: time.Minute}, "60/1m"},
		{"10/s", ratelimit.Rule{Limit: 10, Period: time.Second}, "10/1s"},
		{" 600/1h burst 50 ", ratelimit.Rule{Limit: 600, Period: time.Hour, Burst: 50}, "600/1h burst 50"},
		{"5/90s", ratelimit.Rule{Limit: 5, Period: 90 * time.Second}, "5/1m30s"},
		{"off", ratelimit.Rule{}, "off"},
		{"0", ratelimit.Rule{}, "off"},
	} {
		got, err := ratelimit.ParseRule(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if got.String() != tc.text {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), tc.text)
		}
		if back, err := ratelimit.ParseRule(got.String()); err != nil || back != got {
			t.Errorf("ParseRule(%q) = %+v, %v: does not round-trip", got.String(), back, err)
		}
	}
	for _, bad := range []string{"60", "x/1m", "-1/1m", "60/1x", "60/0s", "60/1m burst", "60/1m burst 0", "60/1m burst x", "60/1ns", "60/1m,20"} {
		if r, err := ratelimit.ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) = %+v, want an error", bad, r)
		}
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"60/1m", "10/s burst 3", "off", "1/1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ratelimit.ParseRule(s)
		if err != nil {
			return
		}
		back, err := ratelimit.ParseRule(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRule(%q) = %+v; its String %q parses to %+v, %v", s, r, r.String(), back, err)
		}
	})
}

func TestStricter(t *testing.T) {
	r := ratelimit.Rule{Limit: 60, Period: time.Minute, Burst: 10}
	if got, want := r.Stricter(0.5), (ratelimit.Rule{Limit: 60, Period: 2 * time.Minute, Burst: 5}); got != want {
		t.Fatalf("Stricter(0.5) = %+v, want %+v", got, want)
	}
	if got := (ratelimit.Rule{Limit: 1, Period: time.Second}).Stricter(0.1); got.Burst != 1 {
		t.Fatalf("Stricter(0.1) of burst 1 = %+v, want burst 1 (never zero)", got)
	}
}

func TestMemoryBounded(t *testing.T) {
	clk := newClock()
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Rules: ratelimit.Rules{"a": {Limit: 1, Period: time.Hour}}, MaxKeys: 640, Now: clk.Now})
	ctx := context.Background()
	for i := range 10_000 {
		if _, err := m.Allow(ctx, "a", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n > 640 {
		t.Fatalf("holds %d buckets, want at most 640", n)
	}
	if m.Evicted.Load() == 0 {
		t.Fatal("live buckets were dropped without being counted")
	}
	// Refilled buckets go first: an hour on, every bucket has refilled,
	// so making room for new subjects drops no live one.
	clk.Advance(time.Hour)
	before := m.Evicted.Load()
	for i := range 100 {
		_, _ = m.Allow(ctx, "a", fmt.Sprint("new", i))
	}
	if m.Evicted.Load() != before {
		t.Fatalf("%d live buckets dropped while refilled ones could go", m.Evicted.Load()-before)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRedisDownFallsBackStricter(t *testing.T) {
	clk := newClock()
	var logs logtest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	l := newRedis(t, redisClient(t, "redis://"+closedPort(t)+"/0"), ratelimit.Rules{"r": {Limit: 10, Period: time.Second}}, clk, log)
	ctx := context.Background()
	n := 0
	for range 100 {
		d, err := l.Allow(ctx, "r", "ip")
		if err != nil {
			t.Fatalf("Allow with Redis down: %v (must answer, not fail)", err)
		}
		if d.Allowed {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("with Redis down, %d of 100 allowed at once; want 5 (half the burst of 10)", n)
	}
	clk.Advance(time.Second)
	if d, _ := l.Allow(ctx, "r", "ip"); !d.Allowed {
		t.Fatal("fallback bucket never refills")
	}
	if l.FallbackChecks.Load() != 101 {
		t.Fatalf("FallbackChecks = %d, want 101", l.FallbackChecks.Load())
	}
	err := l.Degraded(ctx)
	if err == nil || !strings.Contains(err.Error(), "0.5 of the configured rates") {
		t.Fatalf("Degraded = %v, want the outage and the fallback rate", err)
	}
	if c := strings.Count(logs.String(), "Redis unreachable"); c != 1 {
		t.Fatalf("logged the outage %d times, want once:\n%s", c, logs.String())
	}
	if l.Outages.Load() != 1 {
		t.Fatalf("Outages = %d, want 1", l.Outages.Load())
	}
}

func TestRedisRecovers(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	var logs logtest.Buffer
	l := newRedis(t, redisClient(t, srv.URL()), ratelimit.Rules{"r": {Limit: 2, Period: time.Minute}}, clk, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	allow := func() bool {
		d, err := l.Allow(ctx, "r", "ip")
		if err != nil {
			t.Fatal(err)
		}
		return d.Allowed
	}
	if !allow() || l.Degraded(ctx) != nil {
		t.Fatal("first check with Redis up failed or degraded")
	}
	srv.Stop()
	allow()
	if l.Degraded(ctx) == nil {
		t.Fatal("not degraded with Redis stopped")
	}
	srv.Restart()
	// Until RetryEvery has passed, checks stay in-process.
	fb := l.FallbackChecks.Load()
	allow()
	if l.FallbackChecks.Load() != fb+1 {
		t.Fatal("a check went to Redis before RetryEvery")
	}
	clk.Advance(ratelimit.DefaultRetryEvery)
	allow()
	if err := l.Degraded(ctx); err != nil {
		t.Fatalf("after Redis came back and RetryEvery passed: Degraded = %v", err)
	}
	if !strings.Contains(logs.String(), "reachable again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
	// An idle node notices a recovery through its readiness check.
	srv.Stop()
	clk.Advance(ratelimit.DefaultRetryEvery)
	allow()
	if l.Degraded(ctx) == nil {
		t.Fatal("not degraded with Redis stopped again")
	}
	srv.Restart()
	if l.Degraded(ctx) == nil {
		t.Fatal("Degraded probed Redis before RetryEvery")
	}
	clk.Advance(ratelimit.DefaultRetryEvery)
	if err := l.Degraded(ctx); err != nil {
		t.Fatalf("Degraded with Redis back and a probe due: %v", err)
	}
	if l.Outages.Load() != 2 {
		t.Fatalf("Outages = %d, want 2", l.Outages.Load())
	}
}

// The check cost: in-process, one map operation under a shard lock; on
// Redis, one round trip (EVALSHA).
func BenchmarkMemoryAllow(b *testing.B) {
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Rules: ratelimit.Rules{"a": {Limit: 1 << 30, Period: time.Second}}})
	ctx := context.Background()
	subjects := make([]string, 4096)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = m.Allow(ctx, "a", subjects[i%len(subjects)])
			i++
		}
	})
}

func BenchmarkRedisAllow(b *testing.B) {
	l, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: sharedRedis(b), Prefix: redistest.Prefix(b), Rules: ratelimit.Rules{"a": {Limit: 1 << 30, Period: time.Second}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = l.Allow(ctx, "a", "subject")
	}
	if l.FallbackChecks.Load() > 0 {
		b.Fatal("fell back to memory")
	}
}

// An authenticated request's two checks (its address's and its account's
// bucket): one pipelined round trip, against BenchmarkRedisAllow's one
// check per round trip.
func BenchmarkRedisAllowAll(b *testing.B) {
	rules := ratelimit.Rules{"ip": {Limit: 1 << 30, Period: time.Second}, "account": {Limit: 1 << 30, Period: time.Second}}
	l, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: sharedRedis(b), Prefix: redistest.Prefix(b), Rules: rules})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	checks := []ratelimit.Check{{Class: "ip", Subject: "10.0.0.1"}, {Class: "account", Subject: "acct"}}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = l.AllowAll(ctx, checks)
	}
	if l.FallbackChecks.Load() > 0 {
		b.Fatal("fell back to memory")
	}
}
