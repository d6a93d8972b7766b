package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxKeys bounds a Memory limiter whose MaxKeys is 0: about 100 MB
// at worst (a bucket costs a map entry, two string headers and the
// subject's bytes).
const DefaultMaxKeys = 1 << 20

// shards spreads the buckets over this many locks, so checks on different
// subjects rarely contend.
const shards = 64

// evictSample is how many entries a full shard looks at to make room.
const evictSample = 32

// MemoryOptions configures NewMemory.
type MemoryOptions struct {
	Rules Rules
	// MaxKeys bounds the buckets held (0: DefaultMaxKeys). See Memory for
	// what happens at the bound.
	MaxKeys int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Memory is the in-process Limiter: per-node limits, no I/O. A check is
// one map lookup under one of 64 shard locks.
//
// Memory is bounded: a shard at its share of MaxKeys makes room for a new
// subject by looking at up to 32 of its entries and dropping those whose
// bucket has refilled (forgetting them changes nothing); if none has, it
// drops one live entry, which forgives that subject its debt (counted in
// Evicted). A flood of distinct subjects can therefore loosen the limits
// of the subjects it pushes out, never grow memory without bound.
type Memory struct {
	rules    map[string]rule
	shards   [shards]shard
	perShard int
	seed     maphash.Seed
	now      func() time.Time

	// Evicted counts live buckets dropped to make room.
	Evicted atomic.Int64
}

type rule struct {
	off      bool
	interval int64 // nanoseconds
	burst    int64
}

func compile(rs Rules, unit time.Duration) map[string]rule {
	out := make(map[string]rule, len(rs))
	for c, r := range rs {
		out[c] = rule{off: r.Off(), interval: max(int64(r.interval()/unit), 1), burst: int64(r.burst())}
	}
	return out
}

type bucketKey struct{ class, subject string }

type shard struct {
	mu sync.Mutex
	m  map[bucketKey]int64 // TAT in Unix nanoseconds
	_  [40]byte            // keep shards on separate cache lines
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process limiter.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Memory{rules: compile(opts.Rules, time.Nanosecond), perShard: max(opts.MaxKeys/shards, 1), seed: maphash.MakeSeed(), now: opts.Now}
	for i := range m.shards {
		m.shards[i].m = make(map[bucketKey]int64)
	}
	return m
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, class, subject string) (Decision, error) {
	r, ok := m.rules[class]
	if !ok {
		return Decision{}, (Rules(nil)).unknown(class)
	}
	if r.off {
		return Decision{Allowed: true}, nil
	}
	return m.allow(r, class, subject, m.now().UnixNano()), nil
}

// AllowAll counts one event in each of checks, as Allow would one by one
// (each is counted whatever the others decide), and returns their
// decisions in order.
func (m *Memory) AllowAll(ctx context.Context, checks []Check) ([]Decision, error) {
	return allowEach(ctx, m, checks)
}

func (m *Memory) allow(r rule, class, subject string, now int64) Decision {
	k := bucketKey{class, subject}
	s := &m.shards[maphash.Comparable(m.seed, k)%shards]
	s.mu.Lock()
	tat, found := s.m[k]
	ok, next, retry := decide(tat, now, r.interval, r.burst)
	if ok {
		if !found && len(s.m) >= m.perShard {
			m.makeRoom(s, now)
		}
		s.m[k] = next
	}
	s.mu.Unlock()
	return Decision{Allowed: ok, RetryAfter: time.Duration(retry)}
}

// makeRoom drops refilled buckets among a sample of s, or one live one.
func (m *Memory) makeRoom(s *shard, now int64) {
	var victim bucketKey
	n, dropped := 0, false
	for k, tat := range s.m {
		if tat <= now {
			delete(s.m, k)
			dropped = true
		} else if n == 0 {
			victim = k
		}
		if n++; n == evictSample {
			break
		}
	}
	if !dropped {
		delete(s.m, victim)
		m.Evicted.Add(1)
	}
}

// Len returns the number of buckets held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
