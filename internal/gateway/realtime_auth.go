package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/wsnet"
)

// --- authentication before the upgrade ------------------------------------

type ticketClaims struct {
	AccountID string    `json:"account_id"`
	Roles     []string  `json:"roles"`
	JTI       string    `json:"jti"`
	SID       string    `json:"sid"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
	Username  string    `json:"username,omitempty"`
}

func ticketKey(t string) string {
	sum := sha256.Sum256([]byte(t))
	return "realtime:ticket:" + hex.EncodeToString(sum[:])
}

// ticket mints a single-use socket ticket for the caller: browsers cannot
// set headers on a WebSocket, and a long-lived token must never travel in a
// URL.
func (rt *realtime) ticket(w http.ResponseWriter, r *http.Request) {
	p := PrincipalFrom(r.Context())
	t := "mjt_" + newRequestID() + newRequestID()
	claims, _ := json.Marshal(ticketClaims{AccountID: p.AccountID, Roles: p.Roles, JTI: p.JTI, SID: p.SID, IssuedAt: p.IssuedAt, ExpiresAt: p.ExpiresAt, Username: p.Username})
	if _, err := rt.tickets.PutIfAbsent(r.Context(), ticketKey(t), claims, rt.gw.cfg.TicketTTL); err != nil {
		writeError(w, r, rt.gw.log, ticketStoreError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"ticket": t, "expires_in": int(rt.gw.cfg.TicketTTL / time.Second)})
}

var errTicket = &errcode.Error{Code: errcode.Unauthenticated, Message: "The socket ticket is invalid, used or expired."}

// errTicketStore: tickets live in the shared key-value store, so that a
// ticket minted on one gateway is good on every other; while the store is
// unreachable none can be minted or used, and an in-process stand-in would
// mint tickets the other gateways refuse. The client is told to retry
// (503 with Retry-After), and may meanwhile connect with its access token
// in the Authorization header or the bearer subprotocol, which need no
// store.
var errTicketStore = &errcode.Error{Code: errcode.Unavailable, RetryAfter: 2 * time.Second,
	Message: "Socket tickets are unavailable now; try again shortly, or connect with the access token (Authorization header or bearer subprotocol)."}

// ticketStoreError is the answer to a failed ticket store call: a
// caller that gave up keeps its error, anything else is errTicketStore
// (not logged per request: the store's own client and the readiness
// checks report the outage).
func ticketStoreError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return errTicketStore
}

// useTicket consumes a ticket exactly once.
func (rt *realtime) useTicket(ctx context.Context, t string) (*auth.Principal, error) {
	if !strings.HasPrefix(t, "mjt_") || len(t) > 128 {
		return nil, errTicket
	}
	key := ticketKey(t)
	it, err := rt.tickets.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, errTicket
	}
	if err != nil {
		return nil, ticketStoreError(err)
	}
	if string(it.Value) == "used" {
		return nil, errTicket
	}
	if _, err := rt.tickets.CompareAndSet(ctx, key, []byte("used"), rt.gw.cfg.TicketTTL, it.Version); err != nil {
		if errors.Is(err, kv.ErrVersionMismatch) || errors.Is(err, kv.ErrNotFound) {
			return nil, errTicket // used concurrently
		}
		return nil, ticketStoreError(err)
	}
	var c ticketClaims
	if err := json.Unmarshal(it.Value, &c); err != nil {
		return nil, errTicket
	}
	p := &auth.Principal{AccountID: c.AccountID, Roles: c.Roles, JTI: c.JTI, SID: c.SID, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, Username: c.Username}
	// The token the ticket was minted with must still be good.
	if !time.Now().Before(p.ExpiresAt) || rt.gw.identity.Revoked(p) {
		return nil, errTicket
	}
	return p, nil
}

func (rt *realtime) originAllowed(origin, host string) bool {
	if origin == "" {
		return true // not a browser
	}
	for _, o := range rt.gw.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	if len(rt.gw.cfg.AllowedOrigins) > 0 {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, host) // default: same origin only
}

func reject(err error) error {
	e := errcode.As(err)
	if e == nil {
		return wsnet.Reject(http.StatusServiceUnavailable, "try again later")
	}
	return &wsnet.RejectError{Status: StatusOf(e.Code), Reason: e.Message, RetryAfter: e.RetryAfter}
}

// authorize authenticates a socket before the upgrade, with the first of:
// Authorization: Bearer, a multijuego.bearer.<token> subprotocol, a ticket.
func (rt *realtime) authorize(r *wsnet.Request) (any, error) {
	if !rt.originAllowed(r.Header.Get("Origin"), r.Host) {
		return nil, wsnet.Reject(http.StatusForbidden, "origin not allowed")
	}
	v1, subToken, nTokens := false, "", 0
	for _, sp := range r.Protocols {
		switch {
		case sp == Subprotocol:
			v1 = true
		case strings.HasPrefix(sp, BearerSubprotocolPrefix):
			subToken, nTokens = sp[len(BearerSubprotocolPrefix):], nTokens+1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), rt.gw.cfg.ControlTimeout)
	defer cancel()
	var p *auth.Principal
	var err error
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return nil, wsnet.Reject(http.StatusUnauthorized, "Authorization must be Bearer")
		}
		p, err = rt.gw.identity.Authenticate(strings.TrimSpace(token))
	} else if nTokens > 0 {
		switch {
		case nTokens > 1:
			return nil, wsnet.Reject(http.StatusBadRequest, "offer one "+BearerSubprotocolPrefix+"<token> subprotocol")
		case !v1:
			// A browser fails a handshake that selects none of its offers.
			return nil, wsnet.Reject(http.StatusBadRequest, "offer the "+Subprotocol+" subprotocol with the token")
		}
		p, err = rt.gw.identity.Authenticate(subToken)
	} else if u, perr := url.Parse(r.URI); perr == nil && u.Query().Get("ticket") != "" {
		p, err = rt.useTicket(ctx, u.Query().Get("ticket"))
	} else {
		return nil, wsnet.Reject(http.StatusUnauthorized, "an access token (Authorization: Bearer, or the "+BearerSubprotocolPrefix+"<token> subprotocol) or a ticket (?ticket=) is required")
	}
	if err != nil {
		return nil, reject(err)
	}
	if v1 {
		r.Protocol = Subprotocol
	}
	// The username goes into the match presence so games can show it: the
	// token's, else the account's (profiles are cached; a failed lookup
	// only leaves it empty).
	name := p.Username
	if name == "" {
		if prof, err := rt.gw.identity.Profile(ctx, p.AccountID); err == nil {
			name = prof.Username
		}
	}
	sess := &session{id: rt.gw.sessionPrefix + "s" + newRequestID(), p: p, since: time.Now().UTC(), name: name}
	if slot := rt.takeSlot(r); slot != nil {
		sess.slot, sess.ip = slot, slot.ip
	}
	return sess, nil
}
