package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
)

type ctxKey int

const keyRequest ctxKey = 0

// reqInfo is what the edge middleware learns about a request; handlers
// fill in the principal once the token is checked, and the access log reads
// it back.
type reqInfo struct {
	id        string
	ip        string
	principal *auth.Principal
	// class is the route class (limits.go); limited says whether the
	// request is held to the per-account rate of that class.
	class   string
	limited bool
	// bearer is the access token guard checked to count the account's
	// bucket with the address's (limits.go), so authenticated need not
	// check it again; accountChecked the account whose bucket that was.
	bearer         *bearerCheck
	accountChecked string
}

// bearerCheck is one token's verification, kept for the request.
type bearerCheck struct {
	token string
	p     *auth.Principal
	err   error
}

func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(keyRequest).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

func requestID(ctx context.Context) string { return info(ctx).id }

// PrincipalFrom returns the authenticated caller, or nil.
func PrincipalFrom(ctx context.Context) *auth.Principal { return info(ctx).principal }

func clientIP(ctx context.Context) string { return info(ctx).ip }

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (WebSocket
// upgrades, flushes).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multijuego_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "multijuego_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "multijuego_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inflight)
	return m
}

// quietPaths are probed often by load balancers; their access log lines go
// at debug level.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// edge is the outermost middleware: request id, client address, body limit,
// panic recovery, metrics and one access log line per request.
func (s *Server) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-ID", id)
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		ip := s.clientAddr(r)
		ri := &reqInfo{id: id, ip: ip}
		ctx := context.WithValue(r.Context(), keyRequest, ri)
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)

		sw := &statusWriter{ResponseWriter: w}
		s.metrics.inflight.Inc()
		defer func() {
			s.metrics.inflight.Dec()
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(v), "request_id", id, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, r, s.log, errcode.New(errcode.Internal, "Internal error."))
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			} else if _, after, ok := strings.Cut(route, " "); ok {
				route = after // "POST /v1/auth/login" -> "/v1/auth/login"
			}
			dur := time.Since(start)
			method := methodLabel(r.Method)
			s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			s.metrics.duration.WithLabelValues(route, method).Observe(dur.Seconds())
			level := slog.LevelInfo
			if quietPaths[r.URL.Path] && status < 500 {
				level = slog.LevelDebug
			}
			attrs := []slog.Attr{
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("route", route), slog.Int("status", status), slog.Int64("bytes", sw.bytes),
				slog.Float64("duration_ms", float64(dur.Microseconds())/1000), slog.String("ip", ip),
			}
			if p := ri.principal; p != nil {
				attrs = append(attrs, slog.String("account", p.AccountID))
			}
			s.log.LogAttrs(ctx, level, "request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}

// clientAddr is the peer address, or, when the peer is a trusted proxy,
// the nearest untrusted address its forwarding header names: Forwarded
// (RFC 7239, its for= parameters) when present, else X-Forwarded-For.
// From any other peer both headers are ignored. A hop that is not an
// address (obfuscated, "unknown", garbage) ends the walk at the last
// trusted one, so nobody can choose the address they are limited under.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(s.trusted) == 0 {
		return host
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !s.isTrusted(addr) {
		return host
	}
	var hops []string
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		hops = forwardedFor(fwd)
	} else {
		hops = strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.isTrusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

// forwardedFor lists the for= nodes of Forwarded header values, one per
// element, in order: `for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"`
// gives 192.0.2.60 and 2001:db8::17. An element without for= gives "" (not
// an address).
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			node := ""
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					node = strings.Trim(val, `"`)
				}
			}
			// Strip a port: [v6]:port, v4:port.
			if strings.HasPrefix(node, "[") {
				if end := strings.IndexByte(node, ']'); end > 0 {
					node = node[1:end]
				}
			} else if h, _, err := net.SplitHostPort(node); err == nil {
				node = h
			}
			out = append(out, node)
		}
	}
	return out
}

func (s *Server) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// authenticated requires a valid access token (Authorization: Bearer) and
// puts the principal in the request context.
func (s *Server) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			writeError(w, r, s.log, errcode.New(errcode.Unauthenticated, "An access token is required (Authorization: Bearer <token>)."))
			return
		}
		token = strings.TrimSpace(token)
		var p *auth.Principal
		var err error
		if b := info(r.Context()).bearer; b != nil && b.token == token {
			p, err = b.p, b.err
		} else {
			p, err = s.identity.Authenticate(token)
		}
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		info(r.Context()).principal = p
		if !s.allowAccount(w, r, p.AccountID) {
			return
		}
		next(w, r)
	}
}

// requireRole allows only principals holding role.
func (s *Server) requireRole(role string, next http.HandlerFunc) http.HandlerFunc {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request) {
		if p := PrincipalFrom(r.Context()); p == nil || !p.HasRole(role) {
			writeError(w, r, s.log, errcode.New(errcode.PermissionDenied, "This needs the %s role.", role))
			return
		}
		next(w, r)
	})
}

// methodLabel is the method as a metric label: the standard methods by
// name, anything else "other", so made-up methods cannot grow the number
// of series without bound (route is bounded already: a pattern or
// "unmatched"; status by the codes the server writes).
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
