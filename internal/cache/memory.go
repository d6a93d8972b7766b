package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMemoryBytes bounds a Memory whose MaxBytes is 0.
const DefaultMemoryBytes = 64 << 20

// MemoryOptions configures NewMemory.
type MemoryOptions struct {
	// MaxBytes bounds the sum of the sizes of keys and values held
	// (len(key)+len(value) per entry); 0 means DefaultMemoryBytes. When a
	// write would go over it, least recently used entries are evicted.
	MaxBytes int64
	// Now is the clock; nil means time.Now. Tests inject a stepped clock.
	Now func() time.Time
	// Metrics counts evictions under Name (default "memory"); nil records
	// nothing.
	Metrics *Metrics
	Name    string
}

// Memory is the in-process Backend: one node's entries, bounded by bytes
// with least-recently-used eviction. Expired entries are never returned;
// they are removed when read and, cheaply, from the cold end of the LRU list
// on every write, and otherwise age out through eviction. It is safe for
// concurrent use (one mutex: every operation is a map lookup and a few
// pointer moves). It starts no goroutine.
type Memory struct {
	max       int64
	now       func() time.Time
	evictions atomic.Uint64
	evicted   prometheus.Counter

	mu    sync.Mutex
	items map[string]*memEntry
	head  memEntry // sentinel: head.next is the most recently used entry
	used  int64
}

type memEntry struct {
	key        string
	value      []byte
	deadline   int64 // Unix nanoseconds; 0 means no expiry
	prev, next *memEntry
}

func (e *memEntry) size() int64 { return int64(len(e.key) + len(e.value)) }

// NewMemory returns an empty in-process backend.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMemoryBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Name == "" {
		opts.Name = "memory"
	}
	m := &Memory{
		max:     opts.MaxBytes,
		now:     opts.Now,
		evicted: opts.Metrics.recorder(opts.Name).evictions,
		items:   make(map[string]*memEntry),
	}
	m.head.prev, m.head.next = &m.head, &m.head
	return m
}

// Evictions returns how many live entries were evicted to stay within
// MaxBytes (expired entries removed on the way are not counted).
func (m *Memory) Evictions() uint64 { return m.evictions.Load() }

// Len returns the number of entries held, expired ones not yet removed
// included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// Bytes returns the bytes held by entries (keys plus values).
func (m *Memory) Bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// Get implements Backend.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	v, ok := m.get(key)
	return v, ok, nil
}

// GetMulti implements Backend.
func (m *Memory) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := checkKeys(keys); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if e := m.lookup(k, now); e != nil {
			out[k] = clone(e.value)
		}
	}
	return out, nil
}

// Set implements Backend. A single entry larger than MaxBytes is not kept
// (the key's previous value is removed and the eviction counted): a cache
// may always forget.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := checkSet(key, value, ttl)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := m.now().UnixNano()
	var deadline int64
	if ttl > 0 {
		deadline = now + int64(ttl)
	}
	m.set(key, value, deadline, now)
	return nil
}

// Delete implements Backend.
func (m *Memory) Delete(ctx context.Context, keys ...string) error {
	if err := checkKeys(keys); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.delete(keys...)
	return nil
}

// Expire implements Backend.
func (m *Memory) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	ttl, err := checkTTL(ttl)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.lookup(key, now)
	if e == nil {
		return false, nil
	}
	e.deadline = 0
	if ttl > 0 {
		e.deadline = now + int64(ttl)
	}
	return true, nil
}

// TTL implements Backend.
func (m *Memory) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	if err := checkKey(key); err != nil {
		return 0, false, err
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.lookup(key, now)
	switch {
	case e == nil:
		return 0, false, nil
	case e.deadline == 0:
		return 0, true, nil
	default:
		return time.Duration(e.deadline - now), true, nil
	}
}

// Close drops every entry. The Memory stays usable (empty).
func (m *Memory) Close() error {
	m.flush()
	return nil
}

// get returns a copy of a live entry's value and marks it recently used.
func (m *Memory) get(key string) ([]byte, bool) {
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.lookup(key, now)
	if e == nil {
		return nil, false
	}
	return clone(e.value), true
}

// lookup returns the live entry for key, moved to the front, or nil; an
// expired entry is removed. m.mu is held.
func (m *Memory) lookup(key string, now int64) *memEntry {
	e := m.items[key]
	if e == nil {
		return nil
	}
	if e.deadline != 0 && e.deadline <= now {
		m.remove(e)
		return nil
	}
	m.unlink(e)
	m.pushFront(e)
	return e
}

// set stores a copy of value until deadline (Unix nanoseconds, 0 = never).
func (m *Memory) set(key string, value []byte, deadline, now int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.items[key]; e != nil {
		m.remove(e)
	}
	e := &memEntry{key: key, value: clone(value), deadline: deadline}
	if e.size() > m.max {
		m.countEviction()
		return
	}
	m.items[key] = e
	m.pushFront(e)
	m.used += e.size()
	// Cheap lazy cleanup: expired entries at the cold end go first, without
	// counting as evictions.
	for i := 0; i < 2; i++ {
		last := m.head.prev
		if last == e || last.deadline == 0 || last.deadline > now {
			break
		}
		m.remove(last)
	}
	for m.used > m.max {
		last := m.head.prev
		if last.deadline == 0 || last.deadline > now {
			m.countEviction()
		}
		m.remove(last)
	}
}

func (m *Memory) delete(keys ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if e := m.items[k]; e != nil {
			m.remove(e)
		}
	}
}

func (m *Memory) flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.items)
	m.head.prev, m.head.next = &m.head, &m.head
	m.used = 0
}

func (m *Memory) countEviction() {
	m.evictions.Add(1)
	inc(m.evicted)
}

func (m *Memory) remove(e *memEntry) {
	m.unlink(e)
	delete(m.items, e.key)
	m.used -= e.size()
}

func (m *Memory) unlink(e *memEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (m *Memory) pushFront(e *memEntry) {
	e.prev = &m.head
	e.next = m.head.next
	m.head.next.prev = e
	m.head.next = e
}

// clone copies b; the copy of an empty value is empty but not nil, so a
// present entry is never confused with a missing one.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
