package kv

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Defaults of MemoryOptions.
const (
	DefaultMaxItems      = 1 << 20
	DefaultSweepInterval = time.Minute
)

// MemoryOptions configures NewMemory.
type MemoryOptions struct {
	// MaxItems bounds the items held, live or expired but not yet dropped
	// (0: DefaultMaxItems). When the store is full, a write of a new key
	// first drops the expired items; if none has expired it fails with
	// ErrFull. Live items are never evicted.
	MaxItems int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// SweepInterval is how often the janitor drops expired items
	// (0: DefaultSweepInterval).
	SweepInterval time.Duration
}

// Memory is the in-process Store of a single node: a map under a mutex.
// Expired items are treated as missing on access, dropped when met, and
// swept by a janitor goroutine that Close stops.
type Memory struct {
	now func() time.Time
	max int

	mu    sync.Mutex
	items map[string]memItem
	// nextExpiry is no later than the earliest expiry among items (zero:
	// none expires), so a sweep before it would find nothing.
	nextExpiry time.Time

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type memItem struct {
	value []byte
	ver   uint64
	exp   time.Time // zero: no expiry
}

func (it memItem) live(now time.Time) bool { return it.exp.IsZero() || now.Before(it.exp) }

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-process store and starts its janitor.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.MaxItems <= 0 {
		opts.MaxItems = DefaultMaxItems
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	m := &Memory{
		now:   opts.Now,
		max:   opts.MaxItems,
		items: make(map[string]memItem),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go m.janitor(opts.SweepInterval)
	return m
}

// janitor sweeps expired items every interval until Close.
func (m *Memory) janitor(interval time.Duration) {
	defer close(m.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.mu.Lock()
			m.sweepLocked(m.now())
			m.mu.Unlock()
		}
	}
}

// sweepLocked drops the expired items, if nextExpiry says there may be
// some, and recomputes nextExpiry.
func (m *Memory) sweepLocked(now time.Time) {
	if m.nextExpiry.IsZero() || now.Before(m.nextExpiry) {
		return
	}
	var next time.Time
	for k, it := range m.items {
		switch {
		case it.exp.IsZero():
		case !now.Before(it.exp):
			delete(m.items, k)
		case next.IsZero() || it.exp.Before(next):
			next = it.exp
		}
	}
	m.nextExpiry = next
}

// Len is the number of items held, including expired ones not yet dropped.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// lookupLocked returns the live item under key, dropping an expired one.
func (m *Memory) lookupLocked(key string, now time.Time) (memItem, bool) {
	it, ok := m.items[key]
	if !ok {
		return memItem{}, false
	}
	if !it.live(now) {
		delete(m.items, key)
		return memItem{}, false
	}
	return it, true
}

// storeLocked writes it under key, enforcing MaxItems for a new key.
func (m *Memory) storeLocked(key string, it memItem, now time.Time) error {
	if _, ok := m.items[key]; !ok && len(m.items) >= m.max {
		m.sweepLocked(now)
		if len(m.items) >= m.max {
			return ErrFull
		}
	}
	m.items[key] = it
	if !it.exp.IsZero() && (m.nextExpiry.IsZero() || it.exp.Before(m.nextExpiry)) {
		m.nextExpiry = it.exp
	}
	return nil
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(ttlMillis(ttl)) * time.Millisecond)
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) (Item, error) {
	if err := checkKey(key); err != nil {
		return Item{}, err
	}
	if err := ctx.Err(); err != nil {
		return Item{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.lookupLocked(key, m.now())
	if !ok {
		return Item{}, ErrNotFound
	}
	return Item{Value: clone(it.value), Version: it.ver, ExpiresAt: it.exp}, nil
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	old, _ := m.lookupLocked(key, now)
	it := memItem{value: clone(value), ver: old.ver + 1, exp: expiry(now, ttl)}
	if err := m.storeLocked(key, it, now); err != nil {
		return 0, err
	}
	return it.ver, nil
}

// PutIfAbsent implements Store.
func (m *Memory) PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if _, ok := m.lookupLocked(key, now); ok {
		return 0, ErrExists
	}
	if err := m.storeLocked(key, memItem{value: clone(value), ver: 1, exp: expiry(now, ttl)}, now); err != nil {
		return 0, err
	}
	return 1, nil
}

// CompareAndSet implements Store.
func (m *Memory) CompareAndSet(ctx context.Context, key string, value []byte, ttl time.Duration, expect uint64) (uint64, error) {
	if err := checkWrite(key, value, ttl); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	old, ok := m.lookupLocked(key, now)
	if !ok {
		return 0, ErrNotFound
	}
	if old.ver != expect {
		return 0, ErrVersionMismatch
	}
	it := memItem{value: clone(value), ver: old.ver + 1, exp: expiry(now, ttl)}
	if err := m.storeLocked(key, it, now); err != nil {
		return 0, err
	}
	return it.ver, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, key)
	return nil
}

// Incr implements Store.
func (m *Memory) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if err := checkTTL(ttl); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	old, ok := m.lookupLocked(key, now)
	n, exp := int64(0), expiry(now, ttl)
	if ok {
		var isCounter bool
		if n, isCounter = parseCounter(old.value); !isCounter {
			return 0, ErrNotCounter
		}
		if addOverflows(n, delta) {
			return 0, ErrOverflow
		}
		exp = old.exp
	}
	n += delta
	it := memItem{value: strconv.AppendInt(nil, n, 10), ver: old.ver + 1, exp: exp}
	if err := m.storeLocked(key, it, now); err != nil {
		return 0, err
	}
	return n, nil
}

// Close stops the janitor and waits for it to exit. It is idempotent. The
// store stays usable; expired items are then dropped only when met or when
// the store is full.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
	})
	return nil
}
