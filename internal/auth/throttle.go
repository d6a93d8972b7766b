package auth

import (
	"sync"
	"time"
)

// ThrottleConfig bounds login attempts.
type ThrottleConfig struct {
	IPLimit           int           // attempts (any outcome) per client IP per IPWindow
	IPWindow          time.Duration //
	AccountIPFailures int           // failed logins per (account, IP) per FailureWindow
	AccountFailures   int           // failed logins per account, all IPs, per FailureWindow
	FailureWindow     time.Duration //
	KnownIPTTL        time.Duration // how long a successful (account, IP) pair stays trusted
	MaxEntries        int           // bound of each counter table
}

// Throttle limits login attempts per client IP, per (account, IP) and per
// account. The per-account limit does not apply to an address the owner has
// logged in from successfully before, so an attacker hammering an account
// from elsewhere does not lock its owner out; and the (account, IP) limit
// only ever blocks the address that failed.
//
// The counters live in this process for now (issue 4 moves them to the
// shared KV store); each table is bounded by MaxEntries, and when full it
// drops expired windows first, then arbitrary ones.
type Throttle struct {
	cfg       ThrottleConfig
	now       func() time.Time
	ip        *windows
	accountIP *windows
	account   *windows
	known     *windows
}

// NewThrottle returns a throttle.
func NewThrottle(cfg ThrottleConfig, now func() time.Time) *Throttle {
	return &Throttle{
		cfg: cfg, now: now,
		ip:        newWindows(cfg.MaxEntries),
		accountIP: newWindows(cfg.MaxEntries),
		account:   newWindows(cfg.MaxEntries),
		known:     newWindows(cfg.MaxEntries),
	}
}

// Attempt counts a login attempt for account (the submitted identifier,
// normalised) from ip and says whether it may proceed; when not, retry says
// when it may.
func (t *Throttle) Attempt(ip, account string) (retry time.Duration, ok bool) {
	now := t.now()
	if retry, ok := t.ip.hit(ip, t.cfg.IPLimit, t.cfg.IPWindow, now); !ok {
		return retry, false
	}
	pair := account + "\x00" + ip
	if n, reset := t.accountIP.count(pair, now); n >= t.cfg.AccountIPFailures {
		return reset.Sub(now), false
	}
	if n, reset := t.account.count(account, now); n >= t.cfg.AccountFailures {
		if k, _ := t.known.count(pair, now); k == 0 {
			return reset.Sub(now), false
		}
	}
	return 0, true
}

// Failure records a failed login.
func (t *Throttle) Failure(ip, account string) {
	now := t.now()
	t.accountIP.add(account+"\x00"+ip, t.cfg.FailureWindow, now)
	t.account.add(account, t.cfg.FailureWindow, now)
}

// Success clears the (account, IP) failures and trusts the pair.
func (t *Throttle) Success(ip, account string) {
	now := t.now()
	pair := account + "\x00" + ip
	t.accountIP.reset(pair)
	t.known.add(pair, t.cfg.KnownIPTTL, now)
}

// Limiter is a fixed-window counter per key, for simple per-IP limits
// (registrations, guest sign-ups).
type Limiter struct {
	limit  int
	window time.Duration
	now    func() time.Time
	w      *windows
}

// NewLimiter allows limit hits per key per window.
func NewLimiter(limit int, window time.Duration, maxEntries int, now func() time.Time) *Limiter {
	return &Limiter{limit: limit, window: window, now: now, w: newWindows(maxEntries)}
}

// Allow counts a hit for key and says whether it is within the limit.
func (l *Limiter) Allow(key string) (retry time.Duration, ok bool) {
	return l.w.hit(key, l.limit, l.window, l.now())
}

type window struct {
	n     int
	reset time.Time
}

type windows struct {
	mu  sync.Mutex
	max int
	m   map[string]window
}

func newWindows(max int) *windows {
	if max <= 0 {
		max = 100_000
	}
	return &windows{max: max, m: map[string]window{}}
}

func (w *windows) count(key string, now time.Time) (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok || !now.Before(e.reset) {
		return 0, now
	}
	return e.n, e.reset
}

func (w *windows) add(key string, d time.Duration, now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok || !now.Before(e.reset) {
		w.makeRoom(now)
		e = window{reset: now.Add(d)}
	}
	e.n++
	w.m[key] = e
	return e.n
}

func (w *windows) hit(key string, limit int, d time.Duration, now time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok || !now.Before(e.reset) {
		w.makeRoom(now)
		e = window{reset: now.Add(d)}
	}
	if e.n >= limit {
		return e.reset.Sub(now), false
	}
	e.n++
	w.m[key] = e
	return 0, true
}

func (w *windows) reset(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

// makeRoom keeps the table under its bound. Caller holds mu.
func (w *windows) makeRoom(now time.Time) {
	if len(w.m) < w.max {
		return
	}
	for k, e := range w.m {
		if !now.Before(e.reset) {
			delete(w.m, k)
		}
	}
	// Still full of live windows (a flood of distinct keys): drop a tenth at
	// random, so the next inserts do not each pay for a full sweep.
	for k := range w.m {
		if len(w.m) < w.max-w.max/10 {
			break
		}
		delete(w.m, k)
	}
}
