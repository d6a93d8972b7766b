package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// nodeIDLen is the length of the node id that starts every invalidation
// message.
const nodeIDLen = 16

// Defaults of NearOptions.
const (
	DefaultNearBytes      = 16 << 20
	DefaultNearMaxAge     = 30 * time.Second
	DefaultHealthInterval = time.Second
)

// NearOptions configures NewNear.
type NearOptions struct {
	// Redis is the shared tier (required). Near does not close it.
	Redis *Redis
	// Channel is the pub/sub channel invalidations travel on; every node of
	// one cache must use the same. Default: the Redis prefix followed by
	// "cache:invalidate".
	Channel string
	// MaxBytes bounds the near tier (keys plus values); 0 means
	// DefaultNearBytes.
	MaxBytes int64
	// MaxAge is the longest a near entry is served without asking Redis,
	// the safety net for lost invalidations; 0 means DefaultNearMaxAge.
	MaxAge time.Duration
	// HealthInterval is how long the subscription may stay silent before it
	// is pinged; a ping unanswered for another interval counts as a lost
	// connection. 0 means DefaultHealthInterval.
	HealthInterval time.Duration
	// Now is the near tier's clock; nil means time.Now.
	Now func() time.Time
	// Metrics counts near-tier evictions under Name (default "near").
	Metrics *Metrics
	Name    string
	// Logger receives subscription state changes; nil means slog.Default().
	Logger *slog.Logger
}

// Near is a two-tier Backend: a per-node in-process near tier (a Memory) in
// front of a Redis backend, kept coherent across nodes by Redis pub/sub.
//
// Reads are served from the near tier when present, else from Redis (GET and
// PTTL in one round trip) and then kept near for at most MaxAge and never
// past the entry's Redis expiry. Writes (Set, Delete, Expire) go to Redis,
// then publish each key on the invalidation channel (in a Cluster, only after
// the write is acknowledged, as the write and the PUBLISH may land on
// different nodes); the writing node drops the key from its own near tier
// before returning, and every node's subscriber drops it when the message
// arrives. A message is the writer's node id (16 hex digits) followed by
// the key; a node skips its own messages, having dropped the key already. A
// read that raced with an invalidation of its key is not kept
// (it might carry the old value), so an invalidation is never undone.
//
// Coherence bound. After a write returns, another node may serve the old
// value for at most the delivery time of one pub/sub message (Redis pushes
// it to subscribers while executing PUBLISH: typically well under a
// millisecond on a LAN). If messages are lost (the subscription connection
// drops, Redis restarts or fails over) the node flushes its near tier and
// stops using it as soon as it notices: at once on a connection error, within
// two HealthIntervals on a silent connection; it flushes again when it has
// resubscribed. Whatever goes unnoticed (a PUBLISH that failed after its
// write, a write made to Redis by another program) is bounded by MaxAge.
//
// The subscriber goroutine is owned by the Near and stops on Close. It reads
// messages straight from the connection, so the only queue is Redis's
// output buffer for the subscriber; if the subscriber falls behind enough
// for Redis to drop it (client-output-buffer-limit pubsub), that is a lost
// connection: flush, reconnect, resync.
type Near struct {
	redis   *Redis
	id      string // this node's id, the first nodeIDLen bytes of its messages
	channel string
	maxAge  time.Duration
	health  time.Duration
	now     func() time.Time
	local   *Memory
	log     *slog.Logger

	// mu orders fills of the near tier against invalidations and resyncs.
	mu        sync.Mutex
	epoch     uint64 // bumped by every resync
	fills     map[string]*fill
	connected atomic.Bool // written under mu

	hits, misses, invalidations, resyncs atomic.Uint64

	ready     chan struct{} // closed at the first subscription
	readyOnce sync.Once

	psMu   sync.Mutex
	ps     *redis.PubSub
	closed bool
	cancel context.CancelFunc
	done   chan struct{}
}

// fill tracks the reads of one key in flight; gen is bumped by every
// invalidation of the key.
type fill struct {
	refs int
	gen  uint64
}

// ticket is one read in flight that may fill the near tier.
type ticket struct {
	f          *fill
	key        string
	gen, epoch uint64
	start      int64 // Unix nanoseconds, before the read was sent
}

// NearStats counts a Near's activity.
type NearStats struct {
	Hits, Misses  uint64 // reads served by the near tier, and by Redis
	Invalidations uint64 // keys dropped by invalidation (local or received)
	Resyncs       uint64 // near-tier flushes on subscription loss or (re)subscription
	Subscribed    bool   // the near tier is in use
}

// NewNear returns a near-cache over opts.Redis and starts its subscriber. It
// waits up to the Redis timeout for the subscription; if Redis does not
// answer, the Near works as a plain Redis backend until the subscriber gets
// through.
func NewNear(opts NearOptions) (*Near, error) {
	if opts.Redis == nil {
		return nil, errors.New("cache: NearOptions.Redis is nil")
	}
	if opts.MaxAge < 0 || opts.HealthInterval < 0 {
		return nil, errors.New("cache: NearOptions.MaxAge and HealthInterval must not be negative")
	}
	if opts.Channel == "" {
		opts.Channel = opts.Redis.prefix + "cache:invalidate"
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultNearMaxAge
	}
	if opts.HealthInterval == 0 {
		opts.HealthInterval = DefaultHealthInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultNearBytes
	}
	if opts.Name == "" {
		opts.Name = "near"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var id [nodeIDLen / 2]byte
	_, _ = rand.Read(id[:])
	n := &Near{
		redis:   opts.Redis,
		id:      hex.EncodeToString(id[:]),
		channel: opts.Channel,
		maxAge:  opts.MaxAge,
		health:  opts.HealthInterval,
		now:     opts.Now,
		local:   NewMemory(MemoryOptions{MaxBytes: opts.MaxBytes, Now: opts.Now, Metrics: opts.Metrics, Name: opts.Name}),
		log:     opts.Logger.With("cache", opts.Name, "channel", opts.Channel),
		fills:   make(map[string]*fill),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	sctx, scancel := context.WithTimeout(ctx, n.redis.timeout)
	n.ps = n.redis.client.Subscribe(sctx, n.channel) // on error it retries on first receive
	scancel()
	go n.run(ctx, n.ps)
	t := time.NewTimer(n.redis.timeout)
	defer t.Stop()
	select {
	case <-n.ready:
	case <-t.C:
		n.log.Warn("cache: near tier off until the invalidation channel is subscribed")
	}
	return n, nil
}

// Stats returns the Near's counters.
func (n *Near) Stats() NearStats {
	return NearStats{
		Hits: n.hits.Load(), Misses: n.misses.Load(),
		Invalidations: n.invalidations.Load(), Resyncs: n.resyncs.Load(),
		Subscribed: n.connected.Load(),
	}
}

// Get implements Backend.
func (n *Near) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if n.connected.Load() {
		if v, ok := n.local.get(key); ok {
			n.hits.Add(1)
			return v, true, nil
		}
	}
	n.misses.Add(1)
	keys := []string{key}
	t := n.begin(keys)
	vals, ttls, ok, err := n.redis.getWithTTL(ctx, keys)
	n.end(t, vals, ttls, ok)
	if err != nil || !ok[0] {
		return nil, false, err
	}
	return vals[0], true, nil
}

// GetMulti implements Backend: near hits, and one Redis round trip for the
// rest.
func (n *Near) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := checkKeys(keys); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	rest := keys
	if n.connected.Load() {
		rest = nil
		for _, k := range keys {
			if v, ok := n.local.get(k); ok {
				out[k] = v
				n.hits.Add(1)
			} else {
				rest = append(rest, k)
			}
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	n.misses.Add(uint64(len(rest)))
	t := n.begin(rest)
	vals, ttls, ok, err := n.redis.getWithTTL(ctx, rest)
	n.end(t, vals, ttls, ok)
	if err != nil {
		return nil, err
	}
	for i, k := range rest {
		if ok[i] {
			out[k] = vals[i]
		}
	}
	return out, nil
}

// Set implements Backend.
func (n *Near) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := checkSet(key, value, ttl)
	if err != nil {
		return err
	}
	return n.writeAndPublish(ctx, "set", []string{key}, func(ctx context.Context, p redis.Pipeliner) {
		n.redis.queueSet(ctx, p, key, value, ttl)
	})
}

// Delete implements Backend; it is the cross-node invalidation.
func (n *Near) Delete(ctx context.Context, keys ...string) error {
	if err := checkKeys(keys); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return n.writeAndPublish(ctx, "delete", keys, func(ctx context.Context, p redis.Pipeliner) {
		n.redis.queueDelete(ctx, p, keys)
	})
}

// Expire implements Backend.
func (n *Near) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	ttl, err := checkTTL(ttl)
	if err != nil {
		return false, err
	}
	var exists func() bool
	err = n.writeAndPublish(ctx, "expire", []string{key}, func(ctx context.Context, p redis.Pipeliner) {
		exists = n.redis.queueExpire(ctx, p, key, ttl)
	})
	if err != nil {
		return false, err
	}
	return exists(), nil
}

// TTL implements Backend; it always asks Redis.
func (n *Near) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	return n.redis.TTL(ctx, key)
}

// Close stops the subscriber and drops the near tier. The Redis backend
// stays the caller's. After Close the Near works as a plain Redis backend.
func (n *Near) Close() error {
	n.psMu.Lock()
	if n.closed {
		n.psMu.Unlock()
		return nil
	}
	n.closed = true
	ps := n.ps
	n.psMu.Unlock()
	n.cancel()
	_ = ps.Close()
	<-n.done
	n.resync(false, "closed")
	return nil
}

// writeAndPublish runs a write queued by queue, then publishes keys on the
// invalidation channel: in the same pipeline on a standalone Redis (one
// connection executes them in order), after the write is acknowledged in a
// Cluster. The keys leave this node's near tier whatever the outcome.
func (n *Near) writeAndPublish(ctx context.Context, op string, keys []string, queue func(context.Context, redis.Pipeliner)) error {
	defer n.invalidate(keys...)
	ctx, cancel := n.redis.ctx(ctx)
	defer cancel()
	p := n.redis.client.Pipeline()
	queue(ctx, p)
	if n.redis.cluster {
		if _, err := p.Exec(ctx); err != nil {
			return redisErr(op, err)
		}
		p = n.redis.client.Pipeline()
	}
	for _, k := range keys {
		p.Publish(ctx, n.channel, n.id+k)
	}
	if _, err := p.Exec(ctx); err != nil {
		return redisErr(op, err)
	}
	return nil
}

// begin registers reads of keys that may fill the near tier. It returns
// nil when the near tier is off.
func (n *Near) begin(keys []string) []ticket {
	if !n.connected.Load() {
		return nil
	}
	start := n.now().UnixNano()
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.connected.Load() {
		return nil
	}
	ts := make([]ticket, len(keys))
	for i, k := range keys {
		f := n.fills[k]
		if f == nil {
			f = &fill{}
			n.fills[k] = f
		}
		f.refs++
		ts[i] = ticket{f: f, key: k, gen: f.gen, epoch: n.epoch, start: start}
	}
	return ts
}

// end completes reads begun by begin, keeping the values found unless an
// invalidation or resync happened meanwhile. A nil vals means the read
// failed.
func (n *Near) end(ts []ticket, vals [][]byte, ttls []time.Duration, ok []bool) {
	if ts == nil {
		return
	}
	now := n.now().UnixNano()
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, t := range ts {
		t.f.refs--
		if t.f.refs == 0 {
			delete(n.fills, t.key)
		}
		if vals == nil || !ok[i] || t.f.gen != t.gen || t.epoch != n.epoch || !n.connected.Load() {
			continue
		}
		age := n.maxAge
		if ttls[i] > 0 && ttls[i] < age {
			age = ttls[i]
		}
		if deadline := t.start + int64(age); deadline > now {
			n.local.set(t.key, vals[i], deadline, now)
		}
	}
}

// invalidate drops keys from the near tier and spoils reads of them in
// flight.
func (n *Near) invalidate(keys ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range keys {
		if f := n.fills[k]; f != nil {
			f.gen++
		}
	}
	n.local.delete(keys...)
	n.invalidations.Add(uint64(len(keys)))
}

// resync flushes the near tier, spoils every read in flight and turns the
// near tier on or off; why is logged when that changes.
func (n *Near) resync(on bool, why string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	was := n.connected.Load()
	n.epoch++
	n.local.flush()
	n.connected.Store(on)
	n.resyncs.Add(1)
	switch {
	case on == was:
	case on:
		n.log.Info("cache: near tier on", "reason", why)
	case why == "closed":
		n.log.Debug("cache: near tier off", "reason", why)
	default:
		n.log.Warn("cache: near tier off until resubscribed", "reason", why)
	}
}

// run is the subscriber: it applies invalidations, watches the connection
// and resubscribes, until ctx is cancelled by Close.
func (n *Near) run(ctx context.Context, ps *redis.PubSub) {
	defer close(n.done)
	var backoff time.Duration
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, n.health)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) && !pinged {
				// Silent for an interval: ask for a pong.
				pinged = true
				if ps.Ping(ctx) == nil {
					continue
				}
			}
			// The connection failed (go-redis reconnects on the next
			// receive), or the pong did not come: invalidations may be lost.
			if n.connected.Load() {
				n.resync(false, "invalidation channel lost: "+err.Error())
			}
			if isTimeout(err) {
				// A silent connection: replace it.
				if ps = n.resubscribe(ctx, ps); ps == nil {
					return
				}
			}
			pinged = false
			backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
			if !sleep(ctx, backoff) {
				return
			}
			continue
		}
		backoff, pinged = 0, false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// (Re)subscribed: anything published meanwhile is lost.
				n.resync(true, "invalidation channel subscribed")
				n.readyOnce.Do(func() { close(n.ready) })
			}
		case *redis.Pong:
			if !n.connected.Load() {
				// Replies come in order, so a pong before the confirmation
				// means the SUBSCRIBE was lost: send it again.
				if ps = n.resubscribe(ctx, ps); ps == nil {
					return
				}
			}
		case *redis.Message:
			if len(m.Payload) > nodeIDLen && m.Payload[:nodeIDLen] != n.id {
				n.invalidate(m.Payload[nodeIDLen:])
			}
		}
	}
}

// resubscribe replaces the subscription. It returns nil once the Near is
// closed.
func (n *Near) resubscribe(ctx context.Context, old *redis.PubSub) *redis.PubSub {
	_ = old.Close()
	ps := n.redis.client.Subscribe(ctx, n.channel)
	n.psMu.Lock()
	defer n.psMu.Unlock()
	if n.closed {
		_ = ps.Close()
		return nil
	}
	n.ps = ps
	return ps
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// sleep waits d, or returns false when ctx is done first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
