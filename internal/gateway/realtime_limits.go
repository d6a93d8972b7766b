package gateway

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/wsnet"
)

// Per-gateway socket limits and the per-socket control-message rate limit.
//
// Sockets: every upgrade takes a slot of its client IP and of the gateway
// before any other work (no token check, no key-value call): past
// Config.MaxSocketsPerIP it is answered 429, past Config.MaxSockets 503,
// both with Retry-After and a JSON error body naming the setting. The slot
// is given back when the socket closes, or when the upgrade fails. Slots
// are counted per gateway process (a socket lives on one).
//
// Control messages: each socket has a token bucket of
// Config.ControlRate messages a second with a burst of
// Config.ControlBurst, spent by every text message (echo included). A
// message past it is answered rate_limited (with its cid) and not carried
// out; a socket that has been refused ControlBurst messages since it was
// last under the limit long enough to refill its burst is closed with
// CloseRateLimited. The bucket is touched only in OnMessage, which wsnet
// runs for one socket at a time (under Conn.cb): it needs no lock.

// CloseRateLimited closes a socket that kept sending control messages past
// its rate limit.
const CloseRateLimited = 4005

// slotHeader carries an upgrade's slot from the HTTP handler to authorize
// (wsnet.Request.Header is the request's header). A client's own value is
// dropped first.
const slotHeader = "X-Multijuego-Socket-Slot"

// socketSlot is one upgrade's place among the gateway's sockets.
type socketSlot struct {
	ip     string
	opened atomic.Bool
	once   sync.Once
}

// socketLimits counts the sockets (open, or upgrading) per client IP and in
// total.
type socketLimits struct {
	perIPMax, totalMax int
	exemptLoopback     bool

	mu      sync.Mutex
	perIP   map[string]int
	total   int
	pending sync.Map // slot id -> *socketSlot, during the upgrade

	refused *prometheus.CounterVec
}

func newSocketLimits(cfg Config, exemptLoopback bool, reg prometheus.Registerer) *socketLimits {
	l := &socketLimits{perIPMax: cfg.MaxSocketsPerIP, totalMax: cfg.MaxSockets, exemptLoopback: exemptLoopback, perIP: map[string]int{}}
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "multijuego_realtime_refused_total",
		Help: "Realtime upgrades and control messages refused by a limit, by limit (sockets_per_ip, sockets, control_rate), and sockets closed for flooding (control_flood).",
	}, []string{"limit"})
	for _, v := range []string{"sockets_per_ip", "sockets", "control_rate", "control_flood"} {
		l.refused.WithLabelValues(v)
	}
	reg.MustRegister(l.refused)
	return l
}

// acquire takes a slot for ip, or returns the refusal.
func (l *socketLimits) acquire(ip string) (*socketSlot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.totalMax > 0 && l.total >= l.totalMax {
		l.refused.WithLabelValues("sockets").Inc()
		return nil, &errcode.Error{Code: errcode.Unavailable, RetryAfter: 5 * time.Second,
			Message: "This server holds as many sockets as it may (gateway.max_sockets); try again shortly or another server."}
	}
	if l.perIPMax > 0 && l.perIP[ip] >= l.perIPMax && !(l.exemptLoopback && isLoopback(ip)) {
		l.refused.WithLabelValues("sockets_per_ip").Inc()
		return nil, &errcode.Error{Code: errcode.RateLimited, RetryAfter: 5 * time.Second,
			Message: "Too many sockets from your address (gateway.max_sockets_per_ip); close one first."}
	}
	l.perIP[ip]++
	l.total++
	return &socketSlot{ip: ip}, nil
}

// release gives a slot back, once.
func (l *socketLimits) release(s *socketSlot) {
	s.once.Do(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		if l.perIP[s.ip]--; l.perIP[s.ip] <= 0 {
			delete(l.perIP, s.ip)
		}
	})
}

// upgrade is GET /v1/realtime: the socket limits, then the transport's
// upgrade (which authorizes the socket).
func (rt *realtime) upgrade(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r.Context())
	slot, err := rt.limits.acquire(ip)
	if err != nil {
		writeError(w, r, rt.gw.log, err)
		return
	}
	id := newRequestID()
	rt.limits.pending.Store(id, slot)
	r.Header.Set(slotHeader, id)
	rt.ws.ServeHTTP(w, r)
	rt.limits.pending.Delete(id)
	if !slot.opened.Load() {
		rt.limits.release(slot) // refused, or the handshake failed
	}
}

// takeSlot hands the upgrade's slot to the session authorize makes.
func (rt *realtime) takeSlot(r *wsnet.Request) *socketSlot {
	if v, ok := rt.limits.pending.Load(r.Header.Get(slotHeader)); ok {
		return v.(*socketSlot)
	}
	return nil
}

// controlBucket is a socket's token bucket for text messages.
type controlBucket struct {
	tokens  float64
	last    time.Time
	strikes int // messages refused since the bucket was last full
}

// allow spends a token; full reports the bucket was full before (the
// socket has been under the limit long enough to refill its burst).
func (b *controlBucket) allow(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
	}
	b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= float64(burst) {
		b.strikes = 0
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	b.strikes++
	return false
}

var errControlRate = &errcode.Error{Code: errcode.RateLimited, RetryAfter: time.Second,
	Message: "Too many control messages on this socket (gateway.control_rate); slow down, or the socket is closed."}

// controlAllowed applies the control rate limit to a text message of s,
// answering or closing the socket when it is refused. It runs in
// OnMessage (under the socket's Conn.cb).
func (rt *realtime) controlAllowed(s *session, cid string) bool {
	cfg := rt.gw.cfg
	if cfg.ControlRate <= 0 {
		return true
	}
	if s.bucket.allow(time.Now(), cfg.ControlRate, cfg.ControlBurst) {
		return true
	}
	switch n := max(cfg.ControlBurst, 1); {
	case s.bucket.strikes == n:
		rt.limits.refused.WithLabelValues("control_flood").Inc()
		// Close must not run under this socket's Conn.cb (it may call
		// OnClose): a goroutine queues the close frame and exits.
		go s.conn.Close(CloseRateLimited, "control messages past the rate limit")
		return false
	case s.bucket.strikes > n:
		return false // closing: nothing more is answered
	}
	rt.limits.refused.WithLabelValues("control_rate").Inc()
	rt.fail(s, cid, errControlRate)
	return false
}
