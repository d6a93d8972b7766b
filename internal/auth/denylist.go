package auth

import (
	"context"
	"sync"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// RevocationStore is the shared store the deny list lives in, so every node
// sees every revocation.
type RevocationStore interface {
	AddRevocation(ctx context.Context, r store.Revocation) error
	Revocations(ctx context.Context, since, now time.Time) ([]store.Revocation, error)
}

// Denylist answers "is this access token revoked?" from memory, on the hot
// path, and keeps that memory in step with the shared store: a revocation
// made on this node counts here at once, one made on another node counts
// here within the sync interval (Run), by default 500 ms. Changed lets a
// holder of long-lived principals (the realtime gateway's open sockets)
// re-check them as soon as the list gains an entry.
type Denylist struct {
	st  RevocationStore
	now func() time.Time

	mu       sync.RWMutex
	jtis     map[string]time.Time // jti -> expiry of the entry
	sids     map[string]time.Time // refresh family id -> expiry of the entry
	accounts map[string]store.Revocation
	kicks    map[string]store.Revocation // the latest kick of each account
	synced   time.Time                   // the store time up to which we have read
	changed  chan struct{}               // closed when the list gains an entry, then replaced
}

// RevokeKick is the revocation kind of an operator's kick (store.Revocation
// Kind; the store keeps kinds as text): like store.RevokeAccount it voids
// the account's tokens issued before Cutoff, and it tells the realtime
// gateway to close the account's sockets as kicked rather than revoked.
const RevokeKick = "kick"

// Verdict is what the deny list says about a token.
type Verdict uint8

// Verdicts.
const (
	Allowed Verdict = iota
	Revoked         // a logout, password change, role removal, ban or refresh reuse voided it
	Kicked          // an operator kicked or banned its account (checked before Revoked)
)

// syncOverlap re-reads revocations this much older than the last sync, so a
// row committed late (its transaction began before our last read) is still
// seen. Re-applying a revocation is harmless.
const syncOverlap = 30 * time.Second

// NewDenylist returns an empty deny list; call Sync before serving.
func NewDenylist(st RevocationStore, now func() time.Time) *Denylist {
	return &Denylist{st: st, now: now, jtis: map[string]time.Time{}, sids: map[string]time.Time{},
		accounts: map[string]store.Revocation{}, kicks: map[string]store.Revocation{}, changed: make(chan struct{})}
}

// Revoke writes r to the shared store and applies it here. The cutoff is
// cut to the microsecond, what the stores keep, so that every node compares
// issue times with the same instant.
func (d *Denylist) Revoke(ctx context.Context, r store.Revocation) error {
	r.Cutoff = r.Cutoff.Truncate(time.Microsecond)
	if err := d.st.AddRevocation(ctx, r); err != nil {
		return err
	}
	d.apply([]store.Revocation{r})
	return nil
}

func (d *Denylist) apply(rs []store.Revocation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	grew := false
	later := func(m map[string]store.Revocation, r store.Revocation) {
		if cur, ok := m[r.Subject]; !ok || r.Cutoff.After(cur.Cutoff) {
			m[r.Subject], grew = r, true
		}
	}
	for _, r := range rs {
		switch r.Kind {
		case store.RevokeToken:
			_, had := d.jtis[r.Subject]
			d.jtis[r.Subject], grew = r.ExpiresAt, grew || !had
		case store.RevokeSession:
			_, had := d.sids[r.Subject]
			d.sids[r.Subject], grew = r.ExpiresAt, grew || !had
		case store.RevokeAccount:
			later(d.accounts, r)
		case RevokeKick:
			later(d.kicks, r)
		}
	}
	if grew {
		close(d.changed)
		d.changed = make(chan struct{})
	}
}

// Changed returns a channel that is closed when the list next gains an
// entry, made on this node or read by Sync (entries read again by the sync
// overlap do not count).
func (d *Denylist) Changed() <-chan struct{} {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.changed
}

// Denied reports whether p's token was revoked: its jti is denied, its
// session (refresh family) was revoked, or its account was revoked or
// kicked after the token was issued.
func (d *Denylist) Denied(p *Principal) bool { return d.Check(p) != Allowed }

// Check tells whether p's token is allowed, revoked or kicked. An account
// cutoff voids the tokens issued before it: a token of ours carries its
// issue time to the nanosecond, so one issued in the same second but after
// the cutoff (the fresh pair of a password change, a login after a role
// change) stays good; a token with whole seconds only counts as issued at
// the start of its second, so the cutoff covers it.
func (d *Denylist) Check(p *Principal) Verdict {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if r, ok := d.kicks[p.AccountID]; ok && p.IssuedAt.Before(r.Cutoff) {
		return Kicked
	}
	if _, ok := d.jtis[p.JTI]; ok {
		return Revoked
	}
	if _, ok := d.sids[p.SID]; ok && p.SID != "" {
		return Revoked
	}
	if r, ok := d.accounts[p.AccountID]; ok && p.IssuedAt.Before(r.Cutoff) {
		return Revoked
	}
	return Allowed
}

// AccountRevoked reports whether the account has a live account-wide
// revocation or kick: a ban, a role removal, a password change, a deletion
// or an operator's kick within the last access-token lifetime.
func (d *Denylist) AccountRevoked(accountID string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, revoked := d.accounts[accountID]
	_, kicked := d.kicks[accountID]
	return revoked || kicked
}

// Sync reads revocations added since the last sync and forgets expired ones.
func (d *Denylist) Sync(ctx context.Context) error {
	now := d.now()
	d.mu.RLock()
	since, first := d.synced.Add(-syncOverlap), d.synced.IsZero()
	d.mu.RUnlock()
	if first {
		since = time.Unix(0, 0)
	}
	rs, err := d.st.Revocations(ctx, since, now)
	if err != nil {
		return err
	}
	d.apply(rs)
	d.mu.Lock()
	d.synced = now
	for jti, exp := range d.jtis {
		if !exp.After(now) {
			delete(d.jtis, jti)
		}
	}
	for sid, exp := range d.sids {
		if !exp.After(now) {
			delete(d.sids, sid)
		}
	}
	for _, m := range []map[string]store.Revocation{d.accounts, d.kicks} {
		for id, r := range m {
			if !r.ExpiresAt.After(now) {
				delete(m, id)
			}
		}
	}
	d.mu.Unlock()
	return nil
}

// Size reports how many revocations are held (for metrics).
func (d *Denylist) Size() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.jtis) + len(d.sids) + len(d.accounts) + len(d.kicks)
}

// Run syncs every interval until ctx ends. Errors go to onErr; the list
// keeps what it has.
func (d *Denylist) Run(ctx context.Context, interval time.Duration, onErr func(error)) error {
	every(ctx, interval, func() error { return d.Sync(ctx) }, onErr)
	return nil
}

// every calls fn every interval until ctx ends, handing its errors (other
// than those of the ending itself) to onErr.
func every(ctx context.Context, interval time.Duration, fn func() error, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fn(); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}
