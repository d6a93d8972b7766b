package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/internal/kv"
)

// Counters is what the throttles need from the shared key-value store
// (kv.Store): fixed-window counters and marks with a time-to-live. With the
// Redis or DynamoDB store the limits hold across every node; with the
// in-process store, per node.
type Counters interface {
	Get(ctx context.Context, key string) (kv.Item, error)
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error)
	Delete(ctx context.Context, key string) error
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
}

// ThrottleConfig bounds login attempts.
type ThrottleConfig struct {
	IPLimit           int           // attempts (any outcome) per client IP per IPWindow
	IPWindow          time.Duration //
	AccountIPFailures int           // failed logins per (account, IP) per FailureWindow
	AccountFailures   int           // failed logins per account, all IPs, per FailureWindow
	FailureWindow     time.Duration //
	KnownIPTTL        time.Duration // how long a successful (account, IP) pair stays trusted
}

// Throttle limits login attempts per client IP, per (account, IP) and per
// account. The per-account limit does not apply to an address the owner has
// logged in from successfully before, so an attacker hammering an account
// from elsewhere does not lock its owner out; and the (account, IP) limit
// only ever blocks the address that failed.
//
// When the shared store is unreachable, the throttle counts in-process
// instead (fallbackCounters), at a stricter fraction of every limit, and
// Degraded says so: a dead Redis neither locks every player out nor lifts
// the limits. Only if the in-process counters fail too (full) does an
// operation fail open (the login proceeds, with its password check and
// audit event), counted in StoreErrors.
type Throttle struct {
	cfg ThrottleConfig
	c   Counters
	log *slog.Logger
	// fc is c when there is an in-process fallback; rate the fraction of
	// every limit applied while it answers.
	fc   *fallbackCounters
	rate float64

	// nameKey, when set, turns the identifiers in keys (addresses, emails,
	// usernames) into keyed hashes (pseudonymous), so that the shared
	// store (Redis: a dump, a MONITOR) holds no personal data in clear.
	nameKey []byte

	// StoreErrors counts operations that failed open (for metrics).
	StoreErrors atomic.Int64
	// Refused counts attempts the throttle refused (for metrics: they are
	// not written to the audit log, which a flood would fill).
	Refused atomic.Int64
}

// NewThrottle returns a throttle over c.
func NewThrottle(cfg ThrottleConfig, c Counters, log *slog.Logger) *Throttle {
	return &Throttle{cfg: cfg, c: c, log: log}
}

// withFallback makes the throttle count in local while c is unreachable,
// at rate (0 < rate <= 1; 0: DefaultThrottleFallback) of every limit.
func (t *Throttle) withFallback(local Counters, rate float64, now func() time.Time) {
	if rate <= 0 || rate > 1 {
		rate = DefaultThrottleFallback
	}
	t.fc = newFallbackCounters(t.c, local, now, t.log)
	t.c, t.rate = t.fc, rate
}

// limit is n, or its stricter fraction while the throttle counts
// in-process (at least 1).
func (t *Throttle) limit(n int) int64 {
	if t.fc != nil && t.fc.down.Load() {
		return max(1, int64(float64(n)*t.rate))
	}
	return int64(n)
}

// FallbackStats are the in-process fallback's counters (for metrics).
type FallbackStats struct {
	SharedErrors int64 // operations the shared store failed
	LocalOps     int64 // operations answered in-process
	Outages      int64 // times the shared store was lost
}

// Fallback returns the fallback's counters (zero without a fallback).
func (t *Throttle) Fallback() FallbackStats {
	if t.fc == nil {
		return FallbackStats{}
	}
	return FallbackStats{SharedErrors: t.fc.sharedErrors.Load(), LocalOps: t.fc.localOps.Load(), Outages: t.fc.outages.Load()}
}

// Degraded returns nil while the throttles count in the shared store, and
// otherwise why and since when they count in-process (for a readiness
// check that reports, not fails).
func (t *Throttle) Degraded(ctx context.Context) error {
	if t.fc == nil {
		return nil
	}
	return t.fc.degraded(ctx, t.rate)
}

// name is an identifier as it appears in keys: its KeyedName when the
// throttle has a nameKey, else as it is.
func (t *Throttle) name(v string) string {
	if t.nameKey == nil {
		return v
	}
	return KeyedName(t.nameKey, v)
}

// KeyedName is the pseudonym of an identifier (an address, an email) in
// the shared key-value store: HMAC-SHA256 under key, its first 128 bits in
// base64url (22 characters). Whoever holds key computes the same name for
// the same identifier; without it a name neither reveals the identifier
// nor can be tested against guesses.
func KeyedName(key []byte, v string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Namer computes KeyedName under one key for a hot path (every request a
// gateway limits per address): it reuses keyed HMAC states instead of
// keying one per name. Safe for concurrent use.
type Namer struct{ pool sync.Pool }

// NewNamer returns a Namer under key.
func NewNamer(key []byte) *Namer {
	n := &Namer{}
	n.pool.New = func() any { return hmac.New(sha256.New, key) }
	return n
}

// Name is KeyedName(key, v).
func (n *Namer) Name(v string) string {
	m := n.pool.Get().(hash.Hash)
	m.Reset()
	_, _ = io.WriteString(m, v)
	var sum [sha256.Size]byte
	name := base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:16])
	n.pool.Put(m)
	return name
}

// Keys are length-prefixed so no identifier can forge another's key.
func (t *Throttle) ipKey(ip string) string { return "throttle:ip:" + t.name(ip) }
func (t *Throttle) pairKey(kind, account, ip string) string {
	account = t.name(account)
	return fmt.Sprintf("throttle:%s:%d:%s:%s", kind, len(account), account, t.name(ip))
}
func (t *Throttle) accountKey(account string) string {
	account = t.name(account)
	return fmt.Sprintf("throttle:acct:%d:%s", len(account), account)
}

func (t *Throttle) failed(op string, err error) {
	if t.StoreErrors.Add(1)%100 == 1 { // log the first of every hundred
		t.log.Error("throttle store failed; failing open", "op", op, "err", err, "failures", t.StoreErrors.Load())
	}
}

// count reads a counter: its value and when its window ends.
func (t *Throttle) count(ctx context.Context, key string) (int64, time.Time) {
	it, err := t.c.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, time.Time{}
	}
	if err != nil {
		t.failed("get", err)
		return 0, time.Time{}
	}
	var n int64
	fmt.Sscan(string(it.Value), &n)
	return n, it.ExpiresAt
}

func retryAfter(reset, now time.Time, window time.Duration) time.Duration {
	if reset.IsZero() {
		return window
	}
	return reset.Sub(now)
}

// Attempt counts a login attempt for account (the submitted identifier,
// normalised) from ip and says whether it may proceed; when not, retry says
// when it may.
func (t *Throttle) Attempt(ctx context.Context, ip, account string, now time.Time) (retry time.Duration, ok bool) {
	retry, _, ok = t.AttemptScope(ctx, ip, account, now)
	return retry, ok
}

// Throttle scopes: the limit that refused an attempt.
const (
	ScopeIP        = "ip"         // login_ip_limit
	ScopeAccountIP = "account_ip" // account_ip_failures
	ScopeAccount   = "account"    // account_failures
)

// AttemptScope is Attempt that also names the limit that refused.
//
// Owner lockout: once an account has had account_failures failures in the
// window (an attack from many addresses), an address that has not logged in
// to it before gets one attempt per window instead of account_ip_failures:
// the attack slows to one guess per address per window, and the owner's
// first try from a new address still goes through.
func (t *Throttle) AttemptScope(ctx context.Context, ip, account string, now time.Time) (retry time.Duration, scope string, ok bool) {
	n, err := t.c.Incr(ctx, t.ipKey(ip), 1, t.cfg.IPWindow)
	if err != nil {
		t.failed("incr", err)
	} else if n > t.limit(t.cfg.IPLimit) {
		_, reset := t.count(ctx, t.ipKey(ip))
		return retryAfter(reset, now, t.cfg.IPWindow), ScopeIP, false
	}
	pairFails, reset := t.count(ctx, t.pairKey("fail", account, ip))
	if pairFails >= t.limit(t.cfg.AccountIPFailures) {
		return retryAfter(reset, now, t.cfg.FailureWindow), ScopeAccountIP, false
	}
	if n, reset := t.count(ctx, t.accountKey(account)); n >= t.limit(t.cfg.AccountFailures) && pairFails > 0 {
		if _, err := t.c.Get(ctx, t.pairKey("known", account, ip)); err != nil {
			return retryAfter(reset, now, t.cfg.FailureWindow), ScopeAccount, false
		}
	}
	return 0, "", true
}

// Failure records a failed login.
func (t *Throttle) Failure(ctx context.Context, ip, account string) {
	if _, err := t.c.Incr(ctx, t.pairKey("fail", account, ip), 1, t.cfg.FailureWindow); err != nil {
		t.failed("incr", err)
	}
	if _, err := t.c.Incr(ctx, t.accountKey(account), 1, t.cfg.FailureWindow); err != nil {
		t.failed("incr", err)
	}
}

// Success clears the (account, IP) failures and trusts the pair.
func (t *Throttle) Success(ctx context.Context, ip, account string) {
	if err := t.c.Delete(ctx, t.pairKey("fail", account, ip)); err != nil {
		t.failed("delete", err)
	}
	if _, err := t.c.Put(ctx, t.pairKey("known", account, ip), []byte{1}, t.cfg.KnownIPTTL); err != nil {
		t.failed("put", err)
	}
}

// Limiter is a fixed-window counter per key in the shared store, for simple
// per-IP limits (registrations, guest sign-ups). It shares Throttle's
// store and its fallback.
type Limiter struct {
	name   string
	limit  int
	window time.Duration
	c      Counters
	t      *Throttle // for failure accounting
}

// NewLimiter allows limit hits per key per window.
func NewLimiter(name string, limit int, window time.Duration, c Counters, t *Throttle) *Limiter {
	return &Limiter{name: name, limit: limit, window: window, c: c, t: t}
}

// Allow counts a hit for key and says whether it is within the limit.
func (l *Limiter) Allow(ctx context.Context, key string, now time.Time) (retry time.Duration, ok bool) {
	k := fmt.Sprintf("limit:%s:%s", l.name, l.t.name(key))
	n, err := l.c.Incr(ctx, k, 1, l.window)
	if err != nil {
		l.t.failed("incr", err)
		return 0, true
	}
	if n > l.t.limit(l.limit) {
		_, reset := l.t.count(ctx, k)
		return retryAfter(reset, now, l.window), false
	}
	return 0, true
}
