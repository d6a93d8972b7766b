// Package gateway is multijuego's single entry point: the HTTP JSON API
// under /v1, health and metrics endpoints, the JWKS, and (later) the
// realtime WebSocket. Access tokens are checked here, at the edge, and this
// is the one place where domain errors become HTTP status codes.
package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/certs"
	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/wsnet"
	"github.com/multijuego/multijuego/match"
)

// Config is the gateway's part of the configuration tree.
type Config struct {
	MaxBodyBytes      int64         `yaml:"max_body_bytes" help:"largest request body accepted, in bytes"`
	DrainTimeout      time.Duration `yaml:"drain_timeout" help:"how long shutdown waits for in-flight requests"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" help:"time allowed to read request headers"`
	ReadTimeout       time.Duration `yaml:"read_timeout" help:"time allowed to read a whole request"`
	WriteTimeout      time.Duration `yaml:"write_timeout" help:"time allowed to write a response"`
	IdleTimeout       time.Duration `yaml:"idle_timeout" help:"keep-alive idle timeout"`
	TLSCertFile       string        `yaml:"tls_cert_file" help:"PEM certificate (chain); with tls_key_file, serve HTTPS and wss:// (TLS 1.2 minimum, HSTS); re-read when the files change and on SIGHUP, open connections keep theirs"`
	TLSKeyFile        string        `yaml:"tls_key_file" help:"PEM private key for tls_cert_file" secret:"true"`
	TLSSelfSigned     bool          `yaml:"tls_self_signed" help:"serve HTTPS with a self-signed development certificate for localhost, 127.0.0.1 and ::1, made and kept in data_dir/tls (renewed a week before it expires); not with tls_cert_file"`
	TLSClientCAFile   string        `yaml:"tls_client_ca_file" help:"PEM CA(s): the listener then requires a client certificate signed by one of them and refuses any other peer at the handshake (mutual TLS); for a listener only other roles call (the auth role run alone), not one players reach; needs tls_cert_file or tls_self_signed"`
	TLSClientNames    []string      `yaml:"tls_client_names" help:"with tls_client_ca_file: the only client certificate names accepted (common name or DNS name; a trailing * matches any suffix, e.g. gw-*), so that of the roles the CA signs for only gateways call; empty: any certificate of the CA"`
	TrustedProxies    []string      `yaml:"trusted_proxies" help:"CIDRs of proxies whose X-Forwarded-For is believed (comma-separated)"`
	AuthURL           string        `yaml:"auth_url" help:"base URL of the auth role, when this process runs the gateway without it"`
	AddressKeyFile    string        `yaml:"address_key_file" help:"file of the key (32 random bytes, base64, mode 0600: multijuego keys address-key) client addresses are hashed with before they reach Redis or the key-value store (rate-limit buckets, match-limit lists); the same file on every gateway and auth node so per-address limits hold across them; empty: derived from the keys directory with the auth role, else required on a gateway whose store is on another machine with security.require_tls, else a key of the process's own (limits per gateway)" secret:"true"`
	// AuthTLS is the TLS of the calls to AuthURL (proxied routes, JWKS,
	// readiness).
	AuthTLS certs.Client `yaml:"auth_tls"`

	AllowedOrigins  []string      `yaml:"allowed_origins" help:"Origins allowed to open realtime sockets (comma-separated; * for any); empty: the server's own origin only"`
	MaxMessageBytes int           `yaml:"max_message_bytes" help:"largest realtime message a client may send, in bytes"`
	SendQueue       int           `yaml:"send_queue" help:"frames queued per socket before a client that cannot keep up is disconnected"`
	PingInterval    time.Duration `yaml:"ping_interval" help:"how often idle realtime sockets are pinged; two missed pongs close them"`
	TicketTTL       time.Duration `yaml:"ticket_ttl" help:"lifetime of a single-use realtime socket ticket"`
	ResumeTTL       time.Duration `yaml:"resume_ttl" help:"lifetime of a match resume token (the seat itself lasts game.disconnect_grace)"`
	ControlWorkers  int           `yaml:"control_workers" help:"goroutines carrying out realtime control messages (match.create, join, resume, leave) and disconnects, off the socket readers; 0: 4 per core"`
	ControlQueue    int           `yaml:"control_queue" help:"sockets whose control messages may wait for a worker; past it a message is answered busy"`
	ControlTimeout  time.Duration `yaml:"control_timeout" help:"deadline of one realtime control message or disconnect (its key-value calls and its wait on the match; then: error timeout), of a socket ticket check at the upgrade, and of a match creation over HTTP"`
	ControlRate     float64       `yaml:"control_rate" help:"realtime text messages (control, echo) one socket may send a second; past it: error rate_limited, and after control_burst refusals close 4005 (0: no limit)"`
	ControlBurst    int           `yaml:"control_burst" help:"realtime text messages one socket may send at once above control_rate"`
	MaxSockets      int           `yaml:"max_sockets" help:"realtime sockets this gateway holds at most; past it an upgrade gets 503 (0: no limit)"`
	MaxSocketsPerIP int           `yaml:"max_sockets_per_ip" help:"realtime sockets one client IP may hold on this gateway; past it an upgrade gets 429 (0: no limit; loopback exempt on a developer's own server)"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:      64 << 10,
		DrainTimeout:      15 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxMessageBytes:   4096,
		SendQueue:         256,
		PingInterval:      20 * time.Second,
		TicketTTL:         30 * time.Second,
		ResumeTTL:         10 * time.Minute,
		ControlQueue:      4096,
		ControlTimeout:    5 * time.Second,
		ControlRate:       20,
		ControlBurst:      40,
		MaxSockets:        100_000,
		MaxSocketsPerIP:   256,
	}
}

// Validate records every invalid key under prefix.
func (c Config) Validate(v *config.Validator, prefix string) {
	k := func(n string) string { return prefix + "." + n }
	v.Check(c.MaxBodyBytes >= 1024 && c.MaxBodyBytes <= 64<<20, k("max_body_bytes"), "must be between 1024 and 67108864, got %d", c.MaxBodyBytes)
	v.Check(c.DrainTimeout >= 0 && c.DrainTimeout <= 10*time.Minute, k("drain_timeout"), "must be between 0s and 10m, got %s", c.DrainTimeout)
	for name, d := range map[string]time.Duration{"read_header_timeout": c.ReadHeaderTimeout, "read_timeout": c.ReadTimeout, "write_timeout": c.WriteTimeout, "idle_timeout": c.IdleTimeout} {
		v.Check(d >= 100*time.Millisecond && d <= time.Hour, k(name), "must be between 100ms and 1h, got %s", d)
	}
	v.Check((c.TLSCertFile == "") == (c.TLSKeyFile == ""), k("tls_cert_file"), "tls_cert_file and tls_key_file go together: set both or neither")
	v.Check(!c.TLSSelfSigned || c.TLSCertFile == "", k("tls_self_signed"), "tls_self_signed makes its own certificate: unset tls_cert_file and tls_key_file, or this")
	for _, cidr := range c.TrustedProxies {
		_, err := netip.ParsePrefix(cidr)
		v.Check(err == nil, k("trusted_proxies"), "%q is not a CIDR (example: 10.0.0.0/8)", cidr)
	}
	v.Check(c.MaxMessageBytes >= 64 && c.MaxMessageBytes <= 1<<20, k("max_message_bytes"), "must be between 64 and 1048576, got %d", c.MaxMessageBytes)
	v.Check(c.SendQueue >= 4 && c.SendQueue <= 65536, k("send_queue"), "must be between 4 and 65536, got %d", c.SendQueue)
	v.Check(c.PingInterval >= time.Second && c.PingInterval <= 10*time.Minute, k("ping_interval"), "must be between 1s and 10m, got %s", c.PingInterval)
	v.Check(c.ResumeTTL >= time.Second && c.ResumeTTL <= 24*time.Hour, k("resume_ttl"), "must be between 1s and 24h, got %s", c.ResumeTTL)
	v.Check(c.ControlWorkers >= 0 && c.ControlWorkers <= 4096, k("control_workers"), "must be between 0 (4 per core) and 4096, got %d", c.ControlWorkers)
	v.Check(c.ControlQueue >= 16 && c.ControlQueue <= 1<<20, k("control_queue"), "must be between 16 and 1048576, got %d", c.ControlQueue)
	v.Check(c.ControlRate >= 0 && c.ControlRate <= 10_000, k("control_rate"), "must be between 0 (no limit) and 10000, got %g", c.ControlRate)
	v.Check(c.ControlBurst >= 1 && c.ControlBurst <= 10_000, k("control_burst"), "must be between 1 and 10000, got %d", c.ControlBurst)
	v.Check(c.MaxSockets >= 0 && c.MaxSocketsPerIP >= 0, k("max_sockets"), "max_sockets and max_sockets_per_ip must be 0 (no limit) or more")
	v.Check(c.ControlTimeout >= 100*time.Millisecond && c.ControlTimeout <= time.Minute, k("control_timeout"), "must be between 100ms and 1m, got %s", c.ControlTimeout)
	v.Check(c.TicketTTL >= time.Second && c.TicketTTL <= 10*time.Minute, k("ticket_ttl"), "must be between 1s and 10m, got %s", c.TicketTTL)
	for _, o := range c.AllowedOrigins {
		u, err := url.Parse(o)
		v.Check(o == "*" || (err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Path == ""), k("allowed_origins"), "%q is not an origin (example: https://game.example.com)", o)
	}
	v.Check(c.TLSClientCAFile == "" || c.TLSCertFile != "" || c.TLSSelfSigned, k("tls_client_ca_file"), "asks for client certificates over TLS: set tls_cert_file and tls_key_file (or tls_self_signed) too")
	v.Check(len(c.TLSClientNames) == 0 || c.TLSClientCAFile != "", k("tls_client_names"), "names the client certificates accepted: set tls_client_ca_file too")
	if c.AuthURL != "" {
		u, err := url.Parse(c.AuthURL)
		v.Check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", k("auth_url"), "must be an http(s) URL, got %q", c.AuthURL)
		v.Check(!c.AuthTLS.Set() || (err == nil && u.Scheme == "https"), k("auth_tls"), "auth_tls.* are for an https:// auth_url, got %q", c.AuthURL)
	}
	v.Check(!c.AuthTLS.Set() || c.AuthURL != "", k("auth_tls"), "auth_tls.* are the TLS of the calls to auth_url: set auth_url too")
	v.Check((c.AuthTLS.CertFile == "") == (c.AuthTLS.KeyFile == ""), k("auth_tls.cert_file"), "auth_tls.cert_file and auth_tls.key_file go together: set both or neither")
}

// ReadyCheck is one dependency /readyz checks.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
	// Degrades marks a check whose failure leaves the node serving, in a
	// lesser way (the rate limits answering in-process while Redis is
	// unreachable): /readyz then stays 200 with status "degraded".
	Degrades bool
}

// Identity checks access tokens and tells who holds them: the auth service
// in a process with the auth role (*auth.Service), the auth role's JWKS and
// the shared deny list anywhere else (*auth.Verifier).
type Identity interface {
	Authenticate(token string) (*auth.Principal, error)
	// Revoked reports whether a principal verified earlier (a socket
	// ticket's) has been revoked since.
	Revoked(p *auth.Principal) bool
	// Denylist is the deny list behind Revoked: the realtime gateway closes
	// the sockets whose tokens it voids as soon as it gains an entry.
	Denylist() *auth.Denylist
	Profile(ctx context.Context, id string) (auth.Profile, error)
}

// Deps are the gateway's dependencies.
type Deps struct {
	// Auth is the auth service when the auth role runs in this process;
	// nil means requests for it are proxied to Config.AuthURL, through
	// AuthTransport (nil: http.DefaultTransport).
	Auth          *auth.Service
	AuthTransport http.RoundTripper
	// Identity checks tokens for every protected route; nil means Auth
	// (and then no route needs a token but those Auth serves).
	Identity Identity
	// Matches is the match engine when the game role runs in this process;
	// with it the gateway serves the match API and the realtime sockets,
	// keeping single-use socket tickets in Tickets.
	Matches Engine
	Tickets Tickets
	// MatchLimits caps the live matches per account and client IP,
	// counted in Tickets (the shared key-value store): matchlimit.go.
	MatchLimits MatchLimits
	// LoopbackExempt lifts the per-IP limits (matches, sockets) for
	// loopback clients: a developer's own server, where the demo and the
	// load tool connect from 127.0.0.1.
	LoopbackExempt bool
	// Records is the database of finished matches and leaderboards when
	// the persistence role runs in this process: the read API.
	Records Records
	// Personal opens the data of personal match events for the read API
	// (personal.go); nil on a node without the data key vault, which
	// shows them as unavailable.
	Personal PersonalData
	// DeadLetters is the event queue's dead-letter queue when this process
	// has one (game or persistence role): the admin API lists and replays it.
	DeadLetters DeadLetters
	// Nodes is the game-node directory for the admin API (nil: none).
	Nodes Nodes
	// NodeID names this node in the admin API's answers.
	NodeID string
	// SessionPrefix goes before every realtime session id, so a game node
	// in another process knows which gateway holds a socket (the router's
	// SessionPrefix).
	SessionPrefix string
	// Static serves the browser files (internal/webui) for GET and HEAD
	// requests that no API route takes, outside /v1/ and /.well-known/;
	// nil serves none.
	Static http.Handler
	// Limits are the abuse limits: deny and allow lists, rates per
	// address and account (the zero value: none).
	Limits Limits
	// AddressKey names client addresses wherever the gateway puts them in
	// the shared store (rate-limit buckets, match-limit lists): keyed
	// hashes (addresses.go). Every gateway sharing the store must have the
	// same for the per-address limits to hold across them; nil: a random
	// key of this Server's own.
	AddressKey []byte
	Ready      []ReadyCheck
	Registry   *prometheus.Registry
	// MetricsElsewhere leaves GET /metrics off this server: the process
	// serves Registry on an admin listener of its own (metrics.listen).
	MetricsElsewhere bool
	Logger           *slog.Logger
	Version          string
}

// Server is the HTTP gateway.
type Server struct {
	cfg      Config
	auth     *auth.Service
	identity Identity
	matches  Engine
	nodes    Nodes
	records  Records
	personal PersonalData
	dlq      DeadLetters
	node     string
	rt       *realtime
	quota    *matchQuota   // nil: no match limits
	endAudit matchEndAudit // where an operator's end of a match is audited (adminmatches.go)
	// sessionPrefix starts every realtime session id.
	sessionPrefix string
	ready         []ReadyCheck
	log           *slog.Logger
	metrics       *httpMetrics
	trusted       []netip.Prefix
	limits        Limits
	limitMetrics  *limitMetrics
	tarpit        *tarpit
	trips         *tripSet    // rate-limit trips audited lately (trips.go)
	addressNamer  *auth.Namer // names client addresses in the shared store (addresses.go)
	// accountRated are the route classes with a per-account rate.
	accountRated map[string]bool
	version      string
	draining     atomic.Bool
	handler      http.Handler
	static       http.Handler
	reg          *prometheus.Registry
	cert         *certs.Source // nil: plain HTTP
	tlsConfig    *tls.Config   // the listener's, with cert
}

// New builds the gateway and its routes.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Identity == nil && d.Auth != nil {
		d.Identity = d.Auth
	}
	s := &Server{cfg: cfg, auth: d.Auth, identity: d.Identity, matches: d.Matches, nodes: d.Nodes, records: d.Records, personal: d.Personal, dlq: d.DeadLetters, node: d.NodeID, sessionPrefix: d.SessionPrefix, ready: d.Ready, log: d.Logger, version: d.Version, reg: d.Registry, limits: d.Limits}
	for _, c := range cfg.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("gateway: trusted proxy %q: %w", c, err)
		}
		s.trusted = append(s.trusted, p)
	}
	s.static = d.Static
	if cfg.TLSCertFile != "" {
		src, err := certs.NewSource(cfg.TLSCertFile, cfg.TLSKeyFile, certs.Options{OnError: func(err error) {
			s.log.Error("TLS certificate not reloaded; the previous one stays in use", "err", err)
		}})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		s.cert = src
		s.tlsConfig = &tls.Config{GetCertificate: src.GetCertificate, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
		if err := certs.RequireClientCerts(s.tlsConfig, cfg.TLSClientCAFile, cfg.TLSClientNames); err != nil {
			return nil, fmt.Errorf("gateway: tls_client_ca_file: %w", err)
		}
	}
	s.metrics = newHTTPMetrics(d.Registry)
	s.limitMetrics = newLimitMetrics(d.Registry)
	s.tarpit = newTarpit(d.Limits.Config, d.Registry)
	s.trips = &tripSet{until: map[string]time.Time{}}
	s.addressNamer = addressNamer(d.AddressKey)
	s.accountRated = map[string]bool{}
	for c, r := range d.Limits.Config.Rules() {
		if class, ok := strings.CutPrefix(c, "account."); ok && !r.Off() {
			s.accountRated[class] = true
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if !d.MetricsElsewhere {
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))
	}
	mux.HandleFunc("GET /v1/openapi.json", s.openapi)
	mux.HandleFunc("GET /v1", s.index)
	mux.HandleFunc("GET /v1/{$}", s.index)
	switch {
	case d.Auth != nil:
		s.authRoutes(mux)
	case cfg.AuthURL != "":
		target, err := url.Parse(cfg.AuthURL)
		if err != nil {
			return nil, fmt.Errorf("gateway: auth_url: %w", err)
		}
		proxy := s.proxyTo(target, d.AuthTransport)
		for _, prefix := range []string{"/v1/auth/", "/v1/account", "/v1/account/", "/v1/admin/", "/.well-known/jwks.json"} {
			mux.Handle(prefix, proxy)
		}
	}
	if (d.Matches != nil || d.Records != nil) && d.Identity == nil {
		return nil, errors.New("gateway: the match and records APIs need a token verifier (the auth role, or gateway.auth_url)")
	}
	if d.Matches != nil {
		s.matchRoutes(mux)
		if d.Tickets == nil {
			return nil, errors.New("gateway: realtime sockets need a ticket store")
		}
		if d.MatchLimits.PerAccount > 0 || d.MatchLimits.PerIP > 0 {
			live := func(id string) bool { _, ok := d.Matches.Get(id); return ok }
			s.quota = newMatchQuota(d.MatchLimits, d.LoopbackExempt, d.Tickets, live, cfg.ControlTimeout)
			s.quota.name = s.addressName
		}
		rt, err := newRealtime(s, d.Matches, d.Tickets, d.LoopbackExempt)
		if err != nil {
			return nil, err
		}
		s.rt = rt
		rt.routes(mux)
	}
	if d.Records != nil {
		s.recordRoutes(mux)
	}
	if d.Matches != nil || d.Records != nil {
		mux.HandleFunc("GET /v1/matches/{id}", s.authenticated(s.getMatch))
	}
	if d.Auth != nil {
		s.adminRoutes(mux)
	}
	if s.endAudit = newMatchEndAudit(s, cfg, d); d.Matches != nil && s.endAudit != nil {
		s.adminMatchRoutes(mux)
	}
	if d.Nodes != nil && d.Identity != nil {
		s.nodeRoutes(mux)
	}
	s.handler = s.edge(s.guard(s.unmatched(mux)))
	return s, nil
}

// Handler returns the gateway's root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Realtime is the realtime gateway as the router delivers to it: the
// engine's Sender plus frames and input refusals from other nodes, the
// sockets other gateways opened, and its players online for the gateway
// that asks. Nil without the match API.
func (s *Server) Realtime() interface {
	match.Sender
	Deliver(sessions []string, frame []byte) int
	InputRefused(sessionID string, op match.OpCode, err error)
	Replace(account, session string, opened time.Time)
	Online(limit int) (int, json.RawMessage)
} {
	if s.rt == nil {
		return nil
	}
	return s.rt
}

// SetDraining makes /readyz fail so load balancers stop sending traffic.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Serve answers on ln until ctx ends, then drains: /readyz turns 503, the
// listener closes, and in-flight requests get up to DrainTimeout to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.cert != nil {
		// As http.Server.ServeTLS would, on a listener that lets the
		// realtime transport take upgraded sockets off crypto/tls.
		ln = wsnet.ListenTLS(ln, s.tlsConfig)
		stop := reloadOnHangup(ctx, s.cert, s.log)
		defer stop()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	s.SetDraining()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // Serve returned ErrServerClosed
	if s.rt != nil {
		// Hijacked sockets are not the HTTP server's: close them (1001).
		err = errors.Join(err, s.rt.close())
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("gateway: drain: %w", err)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	status, state := http.StatusOK, "ready"
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, c := range s.ready {
		if err := c.Check(ctx); err != nil {
			checks[c.Name] = err.Error()
			if c.Degrades {
				if status == http.StatusOK {
					state = "degraded"
				}
			} else {
				status, state = http.StatusServiceUnavailable, "not_ready"
			}
			s.log.WarnContext(ctx, "readiness check failed", "check", c.Name, "err", err, "degrades_only", c.Degrades)
		} else {
			checks[c.Name] = "ok"
		}
	}
	if s.draining.Load() {
		status, state = http.StatusServiceUnavailable, "draining"
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]any{"status": state, "checks": checks})
}

// openapi.json, edited by hand, is embedded gzip-compressed (17 KB of
// binary instead of 124 KB): `go generate ./internal/gateway` makes
// openapi.json.gz, and a test fails when it does not decompress to
// openapi.json. The first request decompresses it.
//
//go:generate sh -c "gzip -9 -n -c openapi.json > openapi.json.gz"
//go:embed openapi.json.gz
var openapiGz []byte

var openapiDoc = sync.OnceValue(func() []byte {
	b, err := gunzip(openapiGz)
	if err != nil {
		panic("gateway: embedded openapi.json.gz: " + err.Error()) // fixed at build time; a test decompresses it
	}
	return b
})

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	return out, zr.Close()
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openapiDoc())
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"service": "multijuego", "version": s.version,
		"openapi": "/v1/openapi.json", "jwks": "/.well-known/jwks.json", "health": "/healthz", "ready": "/readyz",
	})
}

// unmatched answers requests no route takes with the API's error format:
// 405 with Allow when the path exists for other methods, else 404.
func (s *Server) unmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := *r
			probe.Method = m
			if _, pattern := mux.Handler(&probe); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 && s.static != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !apiPath(r.URL.Path) {
			r.Pattern = "static" // the metrics' route label
			s.static.ServeHTTP(w, r)
			return
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, s.log, errcode.New(errcode.MethodNotAllowed, "%s is not allowed on %s (allowed: %s).", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		writeError(w, r, s.log, errcode.New(errcode.NotFound, "No such route: %s %s.", r.Method, r.URL.Path))
	})
}

// apiPath reports whether p is in the API's namespace, where unknown
// paths get the API's JSON 404 and never a static file.
func apiPath(p string) bool {
	return p == "/v1" || strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/.well-known/")
}

// proxyTo forwards requests for the auth role to another process, through
// transport (mutual TLS with gateway.auth_tls; nil: the default). The
// client's address travels in X-Forwarded-For; the auth role must list this
// gateway in gateway.trusted_proxies to believe it.
func (s *Server) proxyTo(target *url.URL, transport http.RoundTripper) http.Handler {
	return &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Del("X-Forwarded-For")
			pr.Out.Header.Del("Forwarded") // the auth role trusts this gateway: only its own word may reach it
			pr.Out.Header.Set("X-Forwarded-For", clientIP(pr.In.Context()))
			pr.Out.Header.Set("X-Request-ID", requestID(pr.In.Context()))
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.ErrorContext(r.Context(), "auth role unreachable", "err", err, "request_id", requestID(r.Context()))
			writeError(w, r, s.log, &errcode.Error{Code: errcode.Unavailable, Message: "The auth service is unavailable, try again shortly.", RetryAfter: 2 * time.Second})
		},
	}
}
