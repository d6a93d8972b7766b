package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/ratelimit"
)

// Route classes: every request the gateway serves falls in one, by path.
// Each class has a rate per client address and one per account
// (LimitsConfig); health probes fall in none.
const (
	classAuth    = "auth"    // /v1/auth/...: register, login, device, refresh, logout
	classAccount = "account" // /v1/account...: profile, link, password change
	classMatches = "matches" // /v1/matches..., /v1/realtime...: create, list, tickets, socket upgrades
	classRecords = "records" // /v1/players/..., /v1/leaderboards..., /v1/matches/{id}/events
	classAdmin   = "admin"   // /v1/admin/...
	classOther   = "other"   // everything else: web files, openapi, JWKS, metrics, unknown paths
)

// routeClass is the class of a path, "" for the unlimited health probes.
func routeClass(p string) string {
	switch {
	case p == "/healthz" || p == "/readyz":
		return ""
	case strings.HasPrefix(p, "/v1/auth/"):
		return classAuth
	case p == "/v1/account" || strings.HasPrefix(p, "/v1/account/"):
		return classAccount
	case strings.HasPrefix(p, "/v1/admin/"):
		return classAdmin
	case strings.HasPrefix(p, "/v1/matches/") && strings.HasSuffix(p, "/events"):
		return classRecords
	case p == "/v1/matches" || strings.HasPrefix(p, "/v1/matches/") || strings.HasPrefix(p, "/v1/realtime"):
		return classMatches
	case strings.HasPrefix(p, "/v1/players/") || p == "/v1/leaderboards" || strings.HasPrefix(p, "/v1/leaderboards/"):
		return classRecords
	}
	return classOther
}

// authRolePath reports whether a gateway without the auth role proxies p
// to it: the auth role then counts the request against its own limits (on
// the same shared buckets), so the gateway must not count it too.
func authRolePath(p string) bool {
	return strings.HasPrefix(p, "/v1/auth/") || p == "/v1/account" || strings.HasPrefix(p, "/v1/account/") ||
		strings.HasPrefix(p, "/v1/admin/accounts") || strings.HasPrefix(p, "/v1/admin/audit") || p == "/.well-known/jwks.json"
}

// RouteRates is one rate per route class, in ratelimit.ParseRule syntax
// ("120/1m burst 30", "off").
type RouteRates struct {
	Auth    string `yaml:"auth" help:"rate of /v1/auth/* requests (LIMIT/PERIOD[ burst N], or off)"`
	Account string `yaml:"account" help:"rate of /v1/account* requests"`
	Matches string `yaml:"matches" help:"rate of /v1/matches* and /v1/realtime* requests (match creation, lists, socket tickets and upgrades)"`
	Records string `yaml:"records" help:"rate of /v1/players/*, /v1/leaderboards* and match event requests"`
	Admin   string `yaml:"admin" help:"rate of /v1/admin/* requests"`
	Other   string `yaml:"other" help:"rate of every other request (web files, openapi, JWKS, metrics)"`
}

// byClass lists the rates in a fixed order (validation errors come out in
// it).
func (r RouteRates) byClass() [][2]string {
	return [][2]string{{classAuth, r.Auth}, {classAccount, r.Account}, {classMatches, r.Matches}, {classRecords, r.Records}, {classAdmin, r.Admin}, {classOther, r.Other}}
}

// subjects pairs each subject kind with its rates, in a fixed order.
func (c LimitsConfig) subjects() []struct {
	name  string
	rates RouteRates
} {
	return []struct {
		name  string
		rates RouteRates
	}{{"ip", c.IP}, {"account", c.Account}}
}

// LimitsConfig is the abuse limits' part of the configuration tree.
type LimitsConfig struct {
	IP       RouteRates `yaml:"ip"`
	Account  RouteRates `yaml:"account"`
	Fallback float64    `yaml:"fallback" help:"fraction of every rate, and of every login throttle and sign-up limit, a node applies on its own while Redis (or the key-value store) is unreachable (0.5: half; the node's /readyz says degraded meanwhile)"`
	MaxKeys  int        `yaml:"max_keys" help:"rate-limit buckets one node keeps in memory at most (in-process limits and the Redis fallback)"`
	// DenyFile and AllowFile are re-read when they change and on SIGHUP.
	DenyFile    string        `yaml:"deny_file" help:"file of client addresses and CIDRs (one per line, # comments) refused with 403 before anything else; re-read on change and on SIGHUP"`
	AllowFile   string        `yaml:"allow_file" help:"file of client addresses and CIDRs never denied nor rate-limited (monitoring, offices); re-read on change and on SIGHUP"`
	ListsReload time.Duration `yaml:"lists_reload" help:"how often deny_file and allow_file are checked for changes"`
	// The tarpit holds refused requests before their 429 (tarpit.go).
	Tarpit      time.Duration `yaml:"tarpit" help:"how long a request refused by a rate limit is held before its 429 (at most its Retry-After), so one client cannot make the server refuse as fast as it sends; 0: answer at once"`
	TarpitPerIP int           `yaml:"tarpit_per_ip" help:"refused requests of one client address held at once; past it the 429 goes out at once with Connection: close"`
	TarpitTotal int           `yaml:"tarpit_total" help:"refused requests held at once on this node, all addresses"`
}

// DefaultLimitsConfig is the production default: generous for a person
// or a NAT full of players, tight for a script. Per address, auth routes
// have their own per-account login throttle besides (auth.*).
func DefaultLimitsConfig() LimitsConfig {
	return LimitsConfig{
		IP: RouteRates{Auth: "60/1m burst 20", Account: "120/1m burst 30", Matches: "300/1m burst 60",
			Records: "600/1m burst 120", Admin: "600/1m burst 120", Other: "1200/1m burst 300"},
		Account: RouteRates{Auth: "off", Account: "60/1m burst 20", Matches: "120/1m burst 30",
			Records: "300/1m burst 60", Admin: "300/1m burst 60", Other: "off"},
		Fallback:    ratelimit.DefaultFallback,
		MaxKeys:     ratelimit.DefaultMaxKeys,
		ListsReload: 5 * time.Second,
		Tarpit:      time.Second,
		TarpitPerIP: 32,
		TarpitTotal: 10_000,
	}
}

// Validate records every invalid key under prefix.
func (c LimitsConfig) Validate(v *config.Validator, prefix string) {
	for _, sub := range c.subjects() {
		for _, cr := range sub.rates.byClass() {
			_, err := ratelimit.ParseRule(cr[1])
			v.Check(err == nil, prefix+"."+sub.name+"."+cr[0], "%v", err)
		}
	}
	v.Check(c.Fallback > 0 && c.Fallback <= 1, prefix+".fallback", "must be above 0 and at most 1 (0.5: half the rate while Redis is unreachable), got %g", c.Fallback)
	v.Check(c.MaxKeys >= 1024 && c.MaxKeys <= 1<<26, prefix+".max_keys", "must be between 1024 and 67108864, got %d", c.MaxKeys)
	v.Check(c.ListsReload >= 100*time.Millisecond && c.ListsReload <= time.Hour, prefix+".lists_reload", "must be between 100ms and 1h, got %s", c.ListsReload)
	v.Check(c.Tarpit >= 0 && c.Tarpit <= time.Minute, prefix+".tarpit", "must be between 0s and 1m, got %s", c.Tarpit)
	v.Check(c.TarpitPerIP >= 1 && c.TarpitPerIP <= 1<<16, prefix+".tarpit_per_ip", "must be between 1 and 65536, got %d", c.TarpitPerIP)
	v.Check(c.TarpitTotal >= 1 && c.TarpitTotal <= 1<<20, prefix+".tarpit_total", "must be between 1 and 1048576, got %d", c.TarpitTotal)
}

// Rules are the limiter rules of c: class "ip.CLASS" and "account.CLASS"
// for each route class. c must be valid.
func (c LimitsConfig) Rules() ratelimit.Rules {
	rs := ratelimit.Rules{}
	for _, sub := range c.subjects() {
		for _, cr := range sub.rates.byClass() {
			r, _ := ratelimit.ParseRule(cr[1])
			rs[sub.name+"."+cr[0]] = r
		}
	}
	return rs
}

// Limits are the gateway's abuse limits (Deps.Limits).
type Limits struct {
	Config LimitsConfig
	// Limiter holds the buckets of Config.Rules(); nil: no rate limits.
	Limiter ratelimit.Limiter
	// Deny and Allow are the address lists (nil: empty).
	Deny, Allow *ratelimit.IPList
	// LoopbackUnlimited exempts loopback clients from the rate limits
	// (not from the deny list): set on a developer's own server, where the
	// demo and the load tool make every request from 127.0.0.1.
	LoopbackUnlimited bool
}

type limitMetrics struct {
	refused *prometheus.CounterVec
	denied  prometheus.Counter
}

func newLimitMetrics(reg prometheus.Registerer) *limitMetrics {
	m := &limitMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multijuego_http_rate_limited_total", Help: "HTTP requests refused with 429 by the gateway's rate limits, by limit (ip.CLASS or account.CLASS).",
		}, []string{"limit"}),
		denied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "multijuego_http_denied_total", Help: "HTTP requests refused with 403 because the client address is on the deny list.",
		}),
	}
	reg.MustRegister(m.refused, m.denied)
	return m
}

// guard refuses denied addresses (403) and requests over their address's
// rate for the route class (429), before routing. It is the one place the
// HTTP limits are applied; per-account rates follow in authenticated,
// once the caller is known.
func (s *Server) guard(next http.Handler) http.Handler {
	l := &s.limits
	if l.Deny == nil && l.Allow == nil && l.Limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := info(r.Context())
		addr, _ := netip.ParseAddr(ri.ip)
		allowed := l.Allow.Contains(addr)
		if !allowed && l.Deny.Contains(addr) {
			s.limitMetrics.denied.Inc()
			writeError(w, r, s.log, errcode.New(errcode.PermissionDenied, "Requests from your address are refused (limits.deny_file)."))
			return
		}
		class := routeClass(r.URL.Path)
		ri.limited = class != "" && l.Limiter != nil && !allowed && !(l.LoopbackUnlimited && addr.IsLoopback())
		if ri.limited && s.auth == nil && s.cfg.AuthURL != "" && authRolePath(r.URL.Path) {
			ri.limited = false // the auth role limits what it serves
		}
		ri.class = class
		if ri.limited && !s.allowAddress(w, r, class, s.addressName(ipSubject(addr, ri.ip))) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// batchLimiter counts several buckets in one round trip (ratelimit's
// backends do).
type batchLimiter interface {
	AllowAll(ctx context.Context, checks []ratelimit.Check) ([]ratelimit.Decision, error)
}

// allowAddress applies the address's rate of class (key is the
// address's name in the shared store: addressName), and when the request
// carries a good access token and class has a per-account rate, the
// account's too, both in one round trip (one pipeline on Redis, instead of
// one here and one in authenticated): the token check is in-process and
// cached, and its result is kept for authenticated. A request with a good
// token is so held to its account's rate on every route of the class.
// False means it answered 429.
func (s *Server) allowAddress(w http.ResponseWriter, r *http.Request, class, key string) bool {
	account := s.bearerAccount(r, class)
	bl, batch := s.limits.Limiter.(batchLimiter)
	if account == "" || !batch {
		return s.allow(w, r, "ip", class, key)
	}
	ds, err := bl.AllowAll(r.Context(), []ratelimit.Check{{Class: "ip." + class, Subject: key}, {Class: "account." + class, Subject: account}})
	if err != nil { // a class without a rule: a bug, not the caller's fault
		s.log.ErrorContext(r.Context(), "rate limit check failed; request allowed", "limit", "ip."+class, "err", err)
		return true
	}
	info(r.Context()).accountChecked = account
	if !ds[0].Allowed {
		return s.refuse(w, r, "ip", class, key, ds[0])
	}
	return ds[1].Allowed || s.refuse(w, r, "account", class, account, ds[1])
}

// bearerAccount is the account of the request's bearer token when class
// has a per-account rate, else "". The verification is kept for
// authenticated, a failed one too (it answers 401 then).
func (s *Server) bearerAccount(r *http.Request, class string) string {
	if s.identity == nil || !s.accountRated[class] {
		return ""
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return ""
	}
	b := &bearerCheck{token: strings.TrimSpace(token)}
	b.p, b.err = s.identity.Authenticate(b.token)
	info(r.Context()).bearer = b
	if b.err != nil {
		return ""
	}
	return b.p.AccountID
}

// allowAccount applies the per-account rate of the request's class (unless
// guard counted it already); false means it answered 429.
func (s *Server) allowAccount(w http.ResponseWriter, r *http.Request, account string) bool {
	ri := info(r.Context())
	return !ri.limited || ri.accountChecked == account || s.allow(w, r, "account", ri.class, account)
}

func (s *Server) allow(w http.ResponseWriter, r *http.Request, subject, class, key string) bool {
	name := subject + "." + class
	d, err := s.limits.Limiter.Allow(r.Context(), name, key)
	if err != nil { // a class without a rule: a bug, not the caller's fault
		s.log.ErrorContext(r.Context(), "rate limit check failed; request allowed", "limit", name, "err", err)
		return true
	}
	return d.Allowed || s.refuse(w, r, subject, class, key, d)
}

// refuse answers 429 for a refused check of key (an address's name, or an
// account), after the tarpit; it returns false. The first refusal of a key
// in a window is audited (trips.go).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, subject, class, key string, d ratelimit.Decision) bool {
	name := subject + "." + class
	s.limitMetrics.refused.WithLabelValues(name).Inc()
	s.auditTrip(r, name, subject, key, d.RetryAfter)
	ri := info(r.Context())
	addr, _ := netip.ParseAddr(ri.ip)
	s.tarpit.delay(w, r, ipSubject(addr, ri.ip), d.RetryAfter)
	per := map[string]string{"ip": "address", "account": "account"}[subject]
	writeError(w, r, s.log, &errcode.Error{Code: errcode.RateLimited, RetryAfter: d.RetryAfter,
		Message: "Too many requests from your " + per + "; try again in " + retrySeconds(d.RetryAfter) + " (limits." + name + ")."})
	return false
}

// retrySeconds is d rounded up to whole seconds, as Retry-After says it.
func retrySeconds(d time.Duration) string {
	n := int((d + time.Second - 1) / time.Second)
	if n == 1 {
		return "1 second"
	}
	return strconv.Itoa(n) + " seconds"
}

// ipSubject is the rate-limit subject of a client address: the address,
// or for IPv6 its /64, which one subscriber usually holds whole (per
// address, one machine could take 2^64 buckets).
func ipSubject(a netip.Addr, raw string) string {
	if !a.IsValid() {
		return raw
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ReadyDegraded adapts a check whose failure degrades the node (such as
// the rate limiter's Degraded) to a ReadyCheck that reports it without
// failing /readyz.
func ReadyDegraded(name string, check func(context.Context) error) ReadyCheck {
	return ReadyCheck{Name: name, Check: check, Degrades: true}
}
