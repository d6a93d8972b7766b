package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/match"
)

// Live matches per account and per client IP (hardening issue, finding 1:
// one guest socket made 1,000 matches in a second and filled the node).
//
// Every gateway keeps, in the key-value store they all share, one list per
// account and one per client IP (named by its keyed hash, addresses.go) of
// the matches created by it that may still run. A creation first reserves a place in both lists (a
// compare-and-set on each; a list at its cap is refused with
// rate_limited), then asks the engine (or, through the router, a game node)
// for the match, and then writes the match id in place of the reservation
// (or drops the reservation when the creation failed). Nothing has to hear
// of the end of a match: when a list is at its cap, its entries are checked
// against the engine (Get, which the router answers for a match on any
// node) and the ended ones are dropped before the list is judged full.
// Reservations that were never committed (a gateway that died between the
// two writes) are dropped after reservationHold, and a list nobody wrote
// for listTTL expires whole (a safety net, not the mechanism).
//
// The limit can be passed by the creations in flight at one moment only if
// the key-value store loses a write; a game node that does not answer a
// Get within the router's request timeout has its matches counted as
// ended (a dead node's matches are restored elsewhere or lost).

// MatchLimits caps the live matches (created and not ended) one account
// and one client IP may have, across every gateway sharing the key-value
// store.
type MatchLimits struct {
	// PerAccount is game.max_matches_per_account (0: no limit).
	PerAccount int
	// PerIP is game.max_matches_per_ip (0: no limit); not applied to
	// loopback clients with Deps.LoopbackExempt.
	PerIP int
}

const (
	// listTTL: a list nobody wrote for this long expires (safety net).
	listTTL = 24 * time.Hour
	// casAttempts bounds the compare-and-set retries on one list.
	casAttempts = 16
	// matchLimitRetry is the Retry-After of a refusal.
	matchLimitRetry = 10 * time.Second
)

// quotaEntry is one match (M) or reservation (R, not yet committed) of a
// list; T is when it was reserved, in Unix milliseconds.
type quotaEntry struct {
	M string `json:"m,omitempty"`
	R string `json:"r,omitempty"`
	T int64  `json:"t"`
}

// matchQuota enforces MatchLimits. Safe for concurrent use.
type matchQuota struct {
	lim            MatchLimits
	exemptLoopback bool
	kv             Tickets
	live           func(id string) bool // the match has not ended (engine or router Get)
	// name is how a client address appears in a list's key (a keyed
	// hash: Server.addressName); nil: as it is.
	name func(ip string) string
	// hold is how long an uncommitted reservation counts.
	hold time.Duration
	now  func() time.Time
}

func newMatchQuota(lim MatchLimits, exemptLoopback bool, store Tickets, live func(string) bool, controlTimeout time.Duration) *matchQuota {
	return &matchQuota{lim: lim, exemptLoopback: exemptLoopback, kv: store, live: live, hold: 2*controlTimeout + 5*time.Second, now: time.Now}
}

// quotaHold is a reservation in one or two lists.
type quotaHold struct {
	keys  []string
	token string
}

// reserve takes a place for one more match of account (and of ip) or
// returns a rate_limited error naming the setting. The caller commits or
// releases the hold.
func (q *matchQuota) reserve(ctx context.Context, account, ip string) (*quotaHold, error) {
	h := &quotaHold{token: newRequestID()}
	type list struct {
		key, what, setting string
		max                int
	}
	var lists []list
	if q.lim.PerAccount > 0 {
		lists = append(lists, list{"matchlimit:account:" + account, "You already have", "game.max_matches_per_account", q.lim.PerAccount})
	}
	if q.lim.PerIP > 0 && ip != "" && !(q.exemptLoopback && isLoopback(ip)) {
		if q.name != nil {
			ip = q.name(ip)
		}
		lists = append(lists, list{"matchlimit:ip:" + ip, "Your address already has", "game.max_matches_per_ip", q.lim.PerIP})
	}
	for _, l := range lists {
		ok, err := q.add(ctx, l.key, h.token, l.max)
		if err == nil && !ok {
			err = &errcode.Error{Code: errcode.RateLimited, RetryAfter: matchLimitRetry,
				Message: fmt.Sprintf("%s %d live matches (the limit, %s); leave or finish one first (an empty match ends after game.empty_timeout).", l.what, l.max, l.setting)}
		}
		if err != nil {
			q.release(context.WithoutCancel(ctx), h)
			return nil, err
		}
		h.keys = append(h.keys, l.key)
	}
	return h, nil
}

// commit replaces the hold's reservation by the match id. A failure only
// leaves the reservation, which stops counting after q.hold.
func (q *matchQuota) commit(ctx context.Context, h *quotaHold, matchID string) {
	for _, key := range h.keys {
		_ = q.update(ctx, key, func(l []quotaEntry) []quotaEntry {
			for i := range l {
				if l[i].R == h.token {
					l[i] = quotaEntry{M: matchID, T: l[i].T}
					return l
				}
			}
			return append(l, quotaEntry{M: matchID, T: q.now().UnixMilli()})
		})
	}
}

// release drops the hold's reservation (the creation failed).
func (q *matchQuota) release(ctx context.Context, h *quotaHold) {
	for _, key := range h.keys {
		_ = q.update(ctx, key, func(l []quotaEntry) []quotaEntry {
			out := l[:0]
			for _, e := range l {
				if e.R != h.token {
					out = append(out, e)
				}
			}
			return out
		})
	}
}

// add appends a reservation to key's list unless it holds max live
// entries; ok is false when it does.
func (q *matchQuota) add(ctx context.Context, key, token string, max int) (ok bool, err error) {
	err = q.update(ctx, key, func(l []quotaEntry) []quotaEntry {
		if len(l) >= max {
			l = q.prune(l)
		}
		if len(l) >= max {
			ok = false
			return nil // no write
		}
		ok = true
		return append(l, quotaEntry{R: token, T: q.now().UnixMilli()})
	})
	return ok, err
}

// prune drops the entries of matches that ended and stale reservations.
func (q *matchQuota) prune(l []quotaEntry) []quotaEntry {
	out := make([]quotaEntry, 0, len(l))
	stale := q.now().Add(-q.hold).UnixMilli()
	for _, e := range l {
		switch {
		case e.M != "" && q.live(e.M), e.M == "" && e.T > stale:
			out = append(out, e)
		}
	}
	return out
}

var errQuotaStore = &errcode.Error{Code: errcode.Unavailable, Message: "Match limits cannot be checked now; try again shortly.", RetryAfter: 2 * time.Second}

// update reads key's list, applies fn and writes the result back if the
// list did not change meanwhile (else it starts again). fn returning nil
// writes nothing; an empty list deletes nothing either, it is written
// empty (a later add finds it).
func (q *matchQuota) update(ctx context.Context, key string, fn func([]quotaEntry) []quotaEntry) error {
	for range casAttempts {
		var l []quotaEntry
		var version uint64
		it, err := q.kv.Get(ctx, key)
		switch {
		case errors.Is(err, kv.ErrNotFound):
		case err != nil:
			return quotaStoreError(err)
		default:
			version = it.Version
			if json.Unmarshal(it.Value, &l) != nil {
				l = nil // unreadable: start again
			}
		}
		next := fn(l)
		if next == nil {
			return nil
		}
		b, _ := json.Marshal(next)
		if version == 0 {
			_, err = q.kv.PutIfAbsent(ctx, key, b, listTTL)
		} else {
			_, err = q.kv.CompareAndSet(ctx, key, b, listTTL, version)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, kv.ErrExists), errors.Is(err, kv.ErrVersionMismatch), errors.Is(err, kv.ErrNotFound):
			continue // written or expired meanwhile
		default:
			return quotaStoreError(err)
		}
	}
	return errBusy
}

func quotaStoreError(err error) error {
	if timedOut(err) {
		return errTimeout
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return errQuotaStore
}

// createMatch creates a match for account, from ip, within the match
// limits; its errors are the API's (matchError's, or the limits').
func (s *Server) createMatchFor(ctx context.Context, account, ip, mode string, params match.Params) (string, error) {
	var h *quotaHold
	if s.quota != nil {
		var err error
		if h, err = s.quota.reserve(ctx, account, ip); err != nil {
			return "", err
		}
	}
	id, err := s.matches.Create(ctx, mode, params)
	if h != nil {
		// The creation's deadline may be spent: the list is written
		// within one more.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ControlTimeout)
		if err != nil {
			s.quota.release(wctx, h)
		} else {
			s.quota.commit(wctx, h, id)
		}
		cancel()
	}
	if err != nil {
		return "", matchError(err)
	}
	return id, nil
}

func isLoopback(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Unmap().IsLoopback()
}
