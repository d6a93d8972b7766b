package gateway

import (
	"net/http"
	"sync"
	"time"
)

// Rate-limit trips in the audit log: the first refusal of a key (an
// address or an account) by a limit in a window is written as a
// rate_limited row, not every refused request (those are counted in
// multijuego_http_rate_limited_total). The auth service makes that once
// per window across nodes (through the key-value store); tripSet in front
// of it keeps a flood from costing a key-value round trip per refusal.
// Only a process with the auth role writes them (a gateway without it has
// no database).

// tripWindow is the least time between two audit rows of one key and limit.
const tripWindow = time.Minute

// tripSetMax bounds the keys remembered. When every one is still live, a
// new key is not audited (its refusals are still counted): a flood from
// more than tripSetMax keys a window is visible in the metrics, and the
// audit log holds the first tripSetMax.
const tripSetMax = 4096

// tripSet remembers which keys were audited, until when.
type tripSet struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// first reports whether key should be audited now, and if so remembers it
// until now+window.
func (t *tripSet) first(key string, now time.Time, window time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if u, ok := t.until[key]; ok && now.Before(u) {
		return false
	}
	if len(t.until) >= tripSetMax {
		for k, u := range t.until {
			if !now.Before(u) {
				delete(t.until, k)
			}
		}
		if len(t.until) >= tripSetMax {
			return false
		}
	}
	t.until[key] = now.Add(window)
	return true
}

// auditTrip audits a refusal by limit (ip.CLASS or account.CLASS) of key:
// an account id, or an address's name in the shared store (addressName),
// which the row's subject then is too; the row's ip field is the
// request's address, sealed by the store.
func (s *Server) auditTrip(r *http.Request, limit, subject, key string, retry time.Duration) {
	if s.auth == nil {
		return
	}
	window := max(retry, tripWindow)
	if !s.trips.first(limit+" "+key, time.Now(), window) {
		return
	}
	account := ""
	if subject == "account" {
		account = key
	}
	s.auth.RecordRateLimited(r.Context(), limit, key, account, window, retry, s.meta(r))
}
