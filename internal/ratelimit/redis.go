package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of RedisOptions.
const (
	// DefaultFallback is the fraction of every rule's rate and burst a
	// Redis limiter applies in-process while Redis is unreachable: half.
	// Each node then limits on its own, so with N nodes behind a balancer
	// a subject could reach N/2 times its rule; halving keeps a two-node
	// deployment at the configured rate and makes no limit vanish.
	DefaultFallback = 0.5
	// DefaultTimeout bounds one check's round trip.
	DefaultTimeout = 250 * time.Millisecond
	// DefaultRetryEvery is how often a degraded limiter tries Redis again
	// (one check at a time; the others go straight to the fallback).
	DefaultRetryEvery = time.Second
)

// script is decide() in Lua, in microseconds (exact in a Lua double). The
// TAT is stored with an expiry at the moment the bucket has refilled, so an
// idle subject costs nothing. KEYS[1] the bucket; ARGV now, interval, burst.
var script = redis.NewScript(`
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local nxt = tat + interval
local over = nxt - now - interval * burst
if over > 0 then return over end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000))
return 0
`)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Client is the connection, standalone or Cluster, with
	// ContextTimeoutEnabled (cache.ParseRedisURL sets it). It belongs to
	// the caller.
	Client redis.UniversalClient
	// Prefix goes before every key ("PREFIX" + class + ":" + subject).
	Prefix string
	Rules  Rules
	// Timeout bounds one check (0: DefaultTimeout).
	Timeout time.Duration
	// Fallback is the fraction (0 < f <= 1) of each rule applied
	// in-process while Redis is unreachable (0: DefaultFallback).
	Fallback float64
	// RetryEvery is how often a degraded limiter tries Redis again (0:
	// DefaultRetryEvery).
	RetryEvery time.Duration
	// MaxKeys bounds the in-process fallback (0: DefaultMaxKeys).
	MaxKeys int
	// Now is the clock (nil: time.Now). Checks send the node's time to
	// Redis, so nodes' clocks should agree to well under a rule's
	// interval (NTP does); a node ahead of the others only makes a bucket
	// refill later.
	Now    func() time.Time
	Logger *slog.Logger
}

// Redis is the Limiter shared by every node: one EVALSHA per check, on one
// key, so it works on Redis Cluster too. When a check fails (Redis down,
// timeout), it answers from an in-process Memory limiter at Fallback of
// every rule, logs once, counts every such check in FallbackChecks, and
// Degraded reports it; one check per RetryEvery tries Redis again, and the
// first success ends the degraded state (logged). Limits never fail open.
type Redis struct {
	client     redis.UniversalClient
	prefix     string
	rules      map[string]rule // microseconds
	timeout    time.Duration
	retryEvery time.Duration
	fraction   float64
	fallback   *Memory
	now        func() time.Time
	log        *slog.Logger

	down      atomic.Bool
	downSince atomic.Int64 // Unix nanoseconds
	nextProbe atomic.Int64 // Unix nanoseconds
	lastErr   atomic.Pointer[string]

	// FallbackChecks counts checks answered in-process because Redis was
	// unreachable.
	FallbackChecks atomic.Int64
	// Outages counts transitions into the degraded state.
	Outages atomic.Int64
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Redis limiter.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Client == nil {
		return nil, errors.New("ratelimit: RedisOptions.Client is nil")
	}
	if opts.Fallback < 0 || opts.Fallback > 1 {
		return nil, fmt.Errorf("ratelimit: RedisOptions.Fallback must be in (0, 1], got %g", opts.Fallback)
	}
	for c := range opts.Rules {
		if c == "" || strings.Contains(c, ":") {
			return nil, fmt.Errorf("ratelimit: class %q must be non-empty and without ':'", c)
		}
	}
	if opts.Fallback == 0 {
		opts.Fallback = DefaultFallback
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = DefaultRetryEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	stricter := make(Rules, len(opts.Rules))
	for c, r := range opts.Rules {
		stricter[c] = r.Stricter(opts.Fallback)
	}
	return &Redis{
		client: opts.Client, prefix: opts.Prefix, rules: compile(opts.Rules, time.Microsecond),
		timeout: opts.Timeout, retryEvery: opts.RetryEvery, fraction: opts.Fallback,
		fallback: NewMemory(MemoryOptions{Rules: stricter, MaxKeys: opts.MaxKeys, Now: opts.Now}),
		now:      opts.Now, log: opts.Logger,
	}, nil
}

// Allow implements Limiter.
func (l *Redis) Allow(ctx context.Context, class, subject string) (Decision, error) {
	r, ok := l.rules[class]
	if !ok {
		return Decision{}, (Rules(nil)).unknown(class)
	}
	if r.off {
		return Decision{Allowed: true}, nil
	}
	now := l.now()
	if l.down.Load() {
		probe := l.nextProbe.Load()
		if now.UnixNano() < probe || !l.nextProbe.CompareAndSwap(probe, now.Add(l.retryEvery).UnixNano()) {
			return l.fromFallback(ctx, class, subject)
		}
	}
	d, err := l.check(ctx, r, class, subject, now)
	if err != nil {
		if ctx.Err() != nil { // the caller gave up: not Redis's fault
			return l.fromFallback(ctx, class, subject)
		}
		l.markDown(now, err)
		return l.fromFallback(ctx, class, subject)
	}
	if l.down.Load() {
		l.markUp(now)
	}
	return d, nil
}

// AllowAll counts one event in each of checks, as Allow would one by one
// (each is counted whatever the others decide), in one round trip: the
// scripts go to Redis in one pipeline (on a Cluster, one per node holding
// a key). A failure answers every check from the fallback, as Allow does.
func (l *Redis) AllowAll(ctx context.Context, checks []Check) ([]Decision, error) {
	out := make([]Decision, len(checks))
	var on []int // the checks that go to Redis
	for i, c := range checks {
		r, ok := l.rules[c.Class]
		if !ok {
			return nil, (Rules(nil)).unknown(c.Class)
		}
		if r.off {
			out[i] = Decision{Allowed: true}
		} else {
			on = append(on, i)
		}
	}
	if len(on) <= 1 {
		for _, i := range on {
			out[i], _ = l.Allow(ctx, checks[i].Class, checks[i].Subject)
		}
		return out, nil
	}
	now := l.now()
	if l.down.Load() {
		probe := l.nextProbe.Load()
		if now.UnixNano() < probe || !l.nextProbe.CompareAndSwap(probe, now.Add(l.retryEvery).UnixNano()) {
			return l.allFromFallback(ctx, checks, on, out)
		}
	}
	err := l.pipeline(ctx, checks, on, out, now)
	if err != nil {
		if ctx.Err() == nil {
			l.markDown(now, err)
		}
		return l.allFromFallback(ctx, checks, on, out)
	}
	if l.down.Load() {
		l.markUp(now)
	}
	return out, nil
}

// pipeline runs the checks on (indexes into checks) in one pipeline and
// fills out. A Redis that lost the script (NOSCRIPT: restarted, flushed)
// is given it and asked once more.
func (l *Redis) pipeline(ctx context.Context, checks []Check, on []int, out []Decision, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	nowArg := strconv.FormatInt(now.UnixMicro(), 10)
	run := func() ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(on))
		_, err := l.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, i := range on {
				r := l.rules[checks[i].Class]
				cmds[j] = script.EvalSha(ctx, p, []string{l.prefix + checks[i].Class + ":" + checks[i].Subject},
					nowArg, strconv.FormatInt(r.interval, 10), strconv.FormatInt(r.burst, 10))
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err = script.Load(ctx, l.client).Err(); err == nil {
			cmds, err = run()
		}
	}
	if err != nil {
		return err
	}
	for j, i := range on {
		over, err := cmds[j].Int64()
		if err != nil {
			return err
		}
		if over > 0 {
			out[i] = Decision{RetryAfter: time.Duration(over) * time.Microsecond}
		} else {
			out[i] = Decision{Allowed: true}
		}
	}
	return nil
}

func (l *Redis) allFromFallback(ctx context.Context, checks []Check, on []int, out []Decision) ([]Decision, error) {
	for _, i := range on {
		out[i], _ = l.fromFallback(ctx, checks[i].Class, checks[i].Subject)
	}
	return out, nil
}

func (l *Redis) check(ctx context.Context, r rule, class, subject string, now time.Time) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	key := l.prefix + class + ":" + subject
	over, err := script.Run(ctx, l.client, []string{key},
		strconv.FormatInt(now.UnixMicro(), 10), strconv.FormatInt(r.interval, 10), strconv.FormatInt(r.burst, 10)).Int64()
	if err != nil {
		return Decision{}, err
	}
	if over > 0 {
		return Decision{RetryAfter: time.Duration(over) * time.Microsecond}, nil
	}
	return Decision{Allowed: true}, nil
}

func (l *Redis) fromFallback(ctx context.Context, class, subject string) (Decision, error) {
	l.FallbackChecks.Add(1)
	return l.fallback.Allow(ctx, class, subject)
}

func (l *Redis) markDown(now time.Time, err error) {
	msg := err.Error()
	l.lastErr.Store(&msg)
	l.nextProbe.Store(now.Add(l.retryEvery).UnixNano())
	if l.down.CompareAndSwap(false, true) {
		l.downSince.Store(now.UnixNano())
		l.Outages.Add(1)
		l.log.Error("rate limits: Redis unreachable; limiting in-process at a stricter rate until it answers",
			"err", err, "fraction_of_configured_rate", l.fraction, "retry_every", l.retryEvery)
	}
}

func (l *Redis) markUp(now time.Time) {
	if l.down.CompareAndSwap(true, false) {
		since := time.Unix(0, l.downSince.Load())
		l.log.Info("rate limits: Redis reachable again; shared limits restored", "degraded_for", now.Sub(since).Round(time.Millisecond))
	}
}

// Degraded returns nil while checks go to Redis, and otherwise an error
// saying since when they have been answered in-process, at what rate.
// It is meant for a readiness check that reports, not fails; when a probe
// is due it pings Redis itself, so an idle node notices the recovery too.
func (l *Redis) Degraded(ctx context.Context) error {
	if !l.down.Load() {
		return nil
	}
	now := l.now()
	if probe := l.nextProbe.Load(); now.UnixNano() >= probe && l.nextProbe.CompareAndSwap(probe, now.Add(l.retryEvery).UnixNano()) {
		pctx, cancel := context.WithTimeout(ctx, l.timeout)
		err := l.client.Ping(pctx).Err()
		cancel()
		if err == nil {
			l.markUp(now)
			return nil
		}
	}
	reason := ""
	if p := l.lastErr.Load(); p != nil {
		reason = ": " + *p
	}
	since := time.Unix(0, l.downSince.Load()).UTC().Format(time.RFC3339)
	return fmt.Errorf("Redis unreachable since %s%s; limiting in-process at %g of the configured rates", since, reason, l.fraction)
}
