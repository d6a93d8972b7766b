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
// here within the sync interval (Run), by default one second.
type Denylist struct {
	st  RevocationStore
	now func() time.Time

	mu       sync.RWMutex
	jtis     map[string]time.Time // jti -> expiry of the entry
	sids     map[string]time.Time // refresh family id -> expiry of the entry
	accounts map[string]store.Revocation
	synced   time.Time // the store time up to which we have read
}

// syncOverlap re-reads revocations this much older than the last sync, so a
// row committed late (its transaction began before our last read) is still
// seen. Re-applying a revocation is harmless.
const syncOverlap = 30 * time.Second

// NewDenylist returns an empty deny list; call Sync before serving.
func NewDenylist(st RevocationStore, now func() time.Time) *Denylist {
	return &Denylist{st: st, now: now, jtis: map[string]time.Time{}, sids: map[string]time.Time{}, accounts: map[string]store.Revocation{}}
}

// Revoke writes r to the shared store and applies it here.
func (d *Denylist) Revoke(ctx context.Context, r store.Revocation) error {
	if err := d.st.AddRevocation(ctx, r); err != nil {
		return err
	}
	d.apply([]store.Revocation{r})
	return nil
}

func (d *Denylist) apply(rs []store.Revocation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range rs {
		switch r.Kind {
		case store.RevokeToken:
			d.jtis[r.Subject] = r.ExpiresAt
		case store.RevokeSession:
			d.sids[r.Subject] = r.ExpiresAt
		case store.RevokeAccount:
			if cur, ok := d.accounts[r.Subject]; !ok || r.Cutoff.After(cur.Cutoff) {
				d.accounts[r.Subject] = r
			}
		}
	}
}

// Denied reports whether p's token was revoked: its jti is denied, its
// session (refresh family) was revoked, or its account revoked every token
// issued at or before a cutoff.
func (d *Denylist) Denied(p *Principal) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if _, ok := d.jtis[p.JTI]; ok {
		return true
	}
	if _, ok := d.sids[p.SID]; ok && p.SID != "" {
		return true
	}
	if r, ok := d.accounts[p.AccountID]; ok && !p.IssuedAt.After(r.Cutoff) {
		return true
	}
	return false
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
	for id, r := range d.accounts {
		if !r.ExpiresAt.After(now) {
			delete(d.accounts, id)
		}
	}
	d.mu.Unlock()
	return nil
}

// Size reports how many revocations are held (for metrics).
func (d *Denylist) Size() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.jtis) + len(d.sids) + len(d.accounts)
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
