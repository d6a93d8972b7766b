// Package app is multijuego's composition root: it turns the configuration
// into running parts. The binary (cmd/multijuego) and the end-to-end tests
// start the same Main.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/certs"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/router"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/webui"
	"github.com/multijuego/multijuego/web"
)

// Version is set at build time with -ldflags "-X .../internal/app.Version=v1.2.3".
var Version = "dev"

func version() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// Main is one running multijuego process: the roles its configuration
// selects, wired together.
type Main struct {
	Config Config
	Logger *slog.Logger
	Stdout io.Writer
	Modes  []Mode // the game modes the game role offers

	store *store.Store
	vault *store.Vault // data keys of personal data (personal.go); with the auth role, or seal.vault_url
	// personal seals and opens personal data with the vault's keys: the
	// store's protector, personal match events (personalevents.go); nil
	// on a node without the vault.
	personal *seal.Fields
	volatile *volatile
	auth     *auth.Service
	verifier *auth.Verifier
	nodeID   string
	game     *game
	router   *router.Router
	bus      *events.Bus
	persist  *persist.Consumer
	gateway  *gateway.Server
	limits   *limits
	listener net.Listener
	// metricsListener is metrics.listen's, nil without it.
	metricsListener net.Listener
	registry        *prometheus.Registry
	// keyProvider seals the signing keys and wraps the data keys; closed last.
	keyProvider keyProvider
}

// NewLogger builds the structured logger the configuration asks for.
func NewLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Open builds every part the roles need and starts listening, but serves
// nothing until Run. On error, what was opened is closed.
func (m *Main) Open(ctx context.Context) (err error) {
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if m.Stdout == nil {
		m.Stdout = io.Discard
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := CheckOutgoingTLS(m.Config, m.Logger); err != nil {
		return err
	}
	roles := ExpandRoles(m.Config.Roles)
	if m.nodeID, err = nodeID(m.Config.NodeID); err != nil {
		return err
	}
	m.registry = prometheus.NewRegistry()
	// Besides the default Go metrics: how long runnable goroutines wait for
	// a thread (go_sched_latencies_seconds) and GC pauses, the two places
	// a realtime tail comes from inside the process (docs/operations.md).
	m.registry.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$|^/sched/pauses/total/gc:seconds$`)},
	)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gd := gateway.Deps{Registry: m.registry, Logger: m.Logger, Version: version(), MetricsElsewhere: m.Config.Metrics.Listen != ""}
	privateDirs(m.Logger, m.Config.DataDir, m.Config.KeysDir())

	if needs(roles, "store") {
		if err := m.openDatabase(ctx, &gd); err != nil {
			return err
		}
	}
	if needs(roles, "kv") {
		if m.volatile, err = openVolatile(ctx, m.Config, m.registry, m.Logger); err != nil {
			return err
		}
		gd.Ready = append(gd.Ready, m.volatile.ready...)
	}
	var deriveAddressKey func() ([]byte, error) // with the keys directory (addresskey.go)
	if needs(roles, "keys") {
		if deriveAddressKey, err = m.openAuth(ctx, &gd); err != nil {
			return err
		}
	}
	if gd.AddressKey, err = addressKey(m.Config, roles, deriveAddressKey, m.Logger); err != nil {
		return err
	}
	var toAuth *http.Client // a gateway's calls to the auth role in another process
	if slices.Contains(roles, RoleGateway) && m.auth == nil {
		if toAuth, err = m.openAuthClient(ctx, &gd); err != nil {
			return err
		}
	}
	if needs(roles, "events") {
		if m.bus, err = openEvents(ctx, m); err != nil {
			return err
		}
		gd.Ready = append(gd.Ready, gateway.ReadyCheck{Name: "events", Check: m.bus.Ready})
		gd.DeadLetters = persist.NewDLQ(m.bus)
	}
	if err := openPersonal(ctx, m, roles); err != nil {
		return err
	}
	if needs(roles, "engine") {
		if m.game, err = openGame(m); err != nil {
			return err
		}
	}
	if needs(roles, "router") {
		if m.router, err = openRouter(m); err != nil {
			return err
		}
	}
	if slices.Contains(roles, RoleGateway) {
		m.matchDeps(&gd)
	}
	if slices.Contains(roles, RolePersistence) {
		m.persist = openPersistence(m)
	}
	if toAuth != nil {
		gd.Ready = append(gd.Ready, gateway.ReadyCheck{Name: "auth", Check: httpReady(toAuth, m.Config.Gateway.AuthURL)})
	}
	if err := m.openGateway(roles, gd); err != nil {
		return err
	}
	return m.listen()
}

// openGateway builds the HTTP and realtime front of the process (every
// process has one: health, metrics, and with the gateway role the API):
// its web files, limits and certificate, and hands its realtime part to
// the router.
func (m *Main) openGateway(roles []string, gd gateway.Deps) (err error) {
	if m.Config.Web.Enabled && slices.Contains(roles, RoleGateway) {
		static, err := webui.New(web.Files(), m.Config.Web)
		if err != nil {
			return err
		}
		gd.Static = static
		st := static.Stats()
		m.Logger.Debug("serving web files", "files", st.Files, "bytes", st.Bytes, "gzip_bytes", st.GzipBytes, "brotli_bytes", st.BrotliBytes)
	}
	if m.limits, err = openLimits(m); err != nil {
		return err
	}
	gd.Limits = m.limits.Limits
	gd.Ready = append(gd.Ready, m.limits.ready()...)
	if m.Config.Gateway.TLSSelfSigned {
		dir := filepath.Join(m.Config.DataDir, "tls")
		if m.Config.Gateway.TLSCertFile, m.Config.Gateway.TLSKeyFile, err = certs.SelfSigned(dir, time.Now()); err != nil {
			return fmt.Errorf("self-signed certificate in %s: %w", dir, err)
		}
		m.Logger.Info("serving a self-signed development certificate (trust it, or pass --insecure/-k to clients)", "cert", m.Config.Gateway.TLSCertFile)
	}
	if m.gateway, err = gateway.New(m.Config.Gateway, gd); err != nil {
		return err
	}
	if m.router != nil && slices.Contains(roles, RoleGateway) {
		m.router.SetLocal(m.gateway.Realtime())
	}
	return nil
}

// openDatabase opens the accounts database, brings its schema up to date
// (or checks that it is, without store.auto_migrate), and adds its
// readiness checks.
func (m *Main) openDatabase(ctx context.Context, gd *gateway.Deps) (err error) {
	if m.store, err = openStore(ctx, m.Config); err != nil {
		return err
	}
	if m.Config.Store.AutoMigrate {
		n, err := m.store.Migrate(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			m.Logger.Info("applied migrations", "count", n, "database", m.store.Dialect())
		}
	} else if cur, err := m.store.Current(ctx); err != nil {
		return err
	} else if !cur {
		return errors.New("the database schema is not current: run 'multijuego migrate up', or set store.auto_migrate=true")
	}
	gd.Ready = append(gd.Ready, gateway.ReadyCheck{Name: "database", Check: m.store.Ping},
		gateway.ReadyCheck{Name: "migrations", Check: func(ctx context.Context) error {
			ok, err := m.store.Current(ctx)
			if err == nil && !ok {
				err = errors.New("pending migrations (run 'multijuego migrate up')")
			}
			return err
		}})
	return nil
}

// openAuth opens the keys directory, the personal data's vault and the
// auth service, and returns how to derive the gateways' address key from
// the keys.
func (m *Main) openAuth(ctx context.Context, gd *gateway.Deps) (func() ([]byte, error), error) {
	profiles := cache.NewTyped[auth.Profile](m.volatile.cache, "account", 1,
		cache.TypedOptions{Metrics: m.volatile.metrics, Name: "account", Logger: m.Logger})
	devices := cache.NewTyped[string](m.volatile.cache, "device", 1,
		cache.TypedOptions{Metrics: m.volatile.metrics, Name: "device", Logger: m.Logger})
	keys, provider, err := m.Config.keysDir(ctx, m.Logger)
	if err != nil {
		return nil, err
	}
	m.keyProvider = provider
	registerSealMetrics(m.registry, provider)
	if m.vault, m.personal, err = protectStore(ctx, m.Config, keys, m.store, m.Logger); err != nil {
		return nil, err
	}
	gd.Ready = append(gd.Ready, gateway.ReadyCheck{Name: "vault", Check: m.vault.Ping})
	deps := auth.Deps{Store: m.store, KV: m.volatile.kv,
		Profiles: profiles, ProfileTTL: m.Config.Cache.AccountTTL, Devices: devices, Logger: m.Logger, LoopbackSignups: m.Config.devServer()}
	if m.volatile.throttleKV != nil {
		deps.FallbackKV, deps.FallbackRate = m.volatile.throttleKV, m.Config.Limits.Fallback
	}
	if m.auth, err = auth.New(ctx, m.Config.Auth, keys, deps); err != nil {
		return nil, err
	}
	if deps.FallbackKV != nil {
		// Like the rate limits: counting in-process is a lesser way to
		// serve, not a reason to leave the balancer.
		gd.Ready = append(gd.Ready, gateway.ReadyCheck{Name: "login_throttle", Degrades: true, Check: m.auth.Throttle().Degraded})
	}
	gd.Auth = m.auth
	registerAuthMetrics(m.registry, m.auth.Tokens(), m.auth.Denylist(), m.auth)
	return func() ([]byte, error) { return auth.AddressKey(keys) }, nil
}

// openAuthClient gives a gateway without the auth role its way to it: the
// transport of its proxied routes and the token check through its JWKS.
func (m *Main) openAuthClient(ctx context.Context, gd *gateway.Deps) (*http.Client, error) {
	t, err := authTransport(m.Config)
	if err != nil {
		return nil, err
	}
	toAuth := &http.Client{Transport: t, Timeout: 5 * time.Second}
	gd.AuthTransport = t
	if m.verifier, err = openVerifier(ctx, m, toAuth); err != nil {
		return nil, err
	}
	gd.Identity = m.verifier
	registerAuthMetrics(m.registry, m.verifier.Tokens(), m.verifier.Denylist(), nil)
	return toAuth, nil
}

// matchDeps gives the gateway the matches (through the router), match
// records and the limits on creating them.
func (m *Main) matchDeps(gd *gateway.Deps) {
	gd.Matches, gd.Tickets, gd.NodeID, gd.SessionPrefix = m.router, m.volatile.kv, m.nodeID, m.router.SessionPrefix()
	gd.MatchLimits = gateway.MatchLimits{PerAccount: m.Config.Game.MaxMatchesPerAccount, PerIP: m.Config.Game.MaxMatchesPerIP}
	gd.LoopbackExempt = m.Config.devServer()
	gd.Nodes = nodeAdmin{m.router}
	gd.Records = m.store
	if m.personal != nil {
		gd.Personal = m.personal
	}
	if ttl := m.Config.Cache.LeaderboardTTL; ttl > 0 {
		gd.Records = newCachedRecords(m.store, m.volatile.cache, m.volatile.metrics, ttl, m.Logger)
	}
}

// listen opens the main listener and, with metrics.listen, the admin one.
func (m *Main) listen() (err error) {
	if m.listener, err = net.Listen("tcp", m.Config.Listen); err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Listen, err)
	}
	if ml := m.Config.Metrics.Listen; ml != "" {
		if m.metricsListener, err = net.Listen("tcp", ml); err != nil {
			return fmt.Errorf("metrics.listen on %s: %w", ml, err)
		}
	}
	return nil
}

// MetricsAddr is the admin listener's address (metrics.listen), "" without
// one.
func (m *Main) MetricsAddr() string {
	if m.metricsListener == nil {
		return ""
	}
	return m.metricsListener.Addr().String()
}

func openStore(ctx context.Context, c Config) (*store.Store, error) {
	return store.Open(ctx, store.Options{URL: c.DatabaseURL, DataDir: c.DataDir, MaxOpenConns: c.Store.MaxOpenConns, BusyTimeout: c.Store.BusyTimeout})
}

// Addr is the address the HTTP server listens on (useful with port 0).
func (m *Main) Addr() string { return m.listener.Addr().String() }

// URL is the base URL of the HTTP server.
func (m *Main) URL() string {
	scheme := "http"
	if m.Config.Gateway.TLSCertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + m.Addr()
}

// Run serves until ctx ends, then drains and returns. If any part fails, the
// others are stopped and the first error is returned.
func (m *Main) Run(ctx context.Context) error {
	roles := ExpandRoles(m.Config.Roles)
	m.Logger.Info("multijuego started", "version", version(), "roles", strings.Join(roles, ","), "addr", m.Addr(),
		"database", dbName(m.store), "data_dir", m.Config.DataDir)
	fmt.Fprintf(m.Stdout, "multijuego %s listening on %s\n", version(), m.URL())
	parts := []part{{"http", func(ctx context.Context) error { return m.gateway.Serve(ctx, m.listener) }}}
	if m.metricsListener != nil {
		m.Logger.Info("metrics on the admin listener", "addr", m.MetricsAddr())
		parts = append(parts, part{"metrics", serveMetrics(m.metricsListener, m.registry)})
	}
	if m.auth != nil {
		parts = append(parts, part{"auth", m.auth.Run})
	}
	if w := m.limits.watch(); w != nil {
		parts = append(parts, part{"ip-lists", w})
	}
	if m.verifier != nil {
		parts = append(parts, part{"verifier", m.verifier.Run})
	}
	if m.router != nil {
		parts = append(parts, part{"router", m.router.Run})
	}
	if m.game != nil {
		parts = append(parts, part{"game", m.game.run})
	}
	if m.persist != nil {
		parts = append(parts, part{"persistence", m.persist.Run}, part{"persistence-prune", m.pruneProcessed})
	}
	err := supervise(ctx, m.Logger, parts)
	m.Logger.Info("multijuego stopped")
	return err
}

func dbName(s *store.Store) string {
	if s == nil {
		return "none"
	}
	return s.Dialect()
}

// Close releases what Open acquired.
func (m *Main) Close() error {
	var errs []error
	for _, ln := range []net.Listener{m.listener, m.metricsListener} {
		if ln == nil {
			continue
		}
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if m.bus != nil {
		errs = append(errs, m.bus.Close())
		m.bus = nil
	}
	if m.volatile != nil {
		errs = append(errs, m.volatile.Close())
		m.volatile = nil
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
		m.store = nil
	}
	if m.vault != nil {
		errs = append(errs, m.vault.Close())
		m.vault = nil
	}
	if m.keyProvider != nil {
		errs = append(errs, m.keyProvider.Close())
		m.keyProvider = nil
	}
	return errors.Join(errs...)
}

// part is one long-running piece of the process.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// supervise runs the parts until ctx ends. A part that returns before that,
// with or without an error, stops all the others: a process with a dead part
// must not look healthy.
func supervise(ctx context.Context, log *slog.Logger, parts []part) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(parts))
	for _, p := range parts {
		go func() { results <- result{p.name, p.run(ctx)} }()
	}
	var first error
	for range parts {
		r := <-results
		if ctx.Err() == nil {
			if r.err == nil {
				r.err = errors.New("stopped unexpectedly")
			}
			log.Error("part failed; stopping the process", "part", r.name, "err", r.err)
		}
		if r.err != nil && first == nil {
			first = fmt.Errorf("%s: %w", r.name, r.err)
		}
		cancel()
	}
	return first
}

// registerAuthMetrics exports the token checks' counters, and with the
// auth service (nil in a gateway without it) its password hashing and
// throttles.
func registerAuthMetrics(reg *prometheus.Registry, t *auth.Tokens, deny *auth.Denylist, a *auth.Service) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_token_cache_hits_total", Help: "Access tokens served from the verified-token cache."},
			func() float64 { return float64(t.CacheHits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_token_cache_misses_total", Help: "Access tokens verified by signature."},
			func() float64 { return float64(t.CacheMisses.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_auth_denylist_entries", Help: "Revocations held in the deny list."},
			func() float64 { return float64(deny.Size()) }),
	)
	if a == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_auth_password_hashes_running", Help: "Password hashes running now."},
			func() float64 { return float64(a.Hasher().Running()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_auth_password_hashes_waiting", Help: "Requests waiting for a password-hash slot."},
			func() float64 { return float64(a.Hasher().Waiting()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_throttle_store_errors_total", Help: "Throttle operations that failed on the key-value store (then counted in-process, at limits.fallback of the limit)."},
			func() float64 { return float64(a.Throttle().Fallback().SharedErrors) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_throttle_fallback_ops_total", Help: "Throttle operations answered in-process because the key-value store was unreachable."},
			func() float64 { return float64(a.Throttle().Fallback().LocalOps) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_throttle_store_outages_total", Help: "Times the login throttles lost the key-value store and went on in-process."},
			func() float64 { return float64(a.Throttle().Fallback().Outages) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_auth_throttle_degraded", Help: "1 while the login throttles and sign-up limits count in-process because the key-value store is unreachable."},
			func() float64 {
				if a.Throttle().Degraded(context.Background()) != nil {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_throttle_failed_open_total", Help: "Throttle operations that failed on the key-value store and on the in-process fallback (the operation failed open)."},
			func() float64 { return float64(a.Throttle().StoreErrors.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_logins_throttled_total", Help: "Password logins and password changes refused by the login throttle (429; not in the audit log)."},
			func() float64 { return float64(a.Throttle().Refused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_login_commits_total", Help: "Transactions of the logins' group commit (sessions, audit rows, new guest accounts)."},
			func() float64 { return float64(a.LoginCommits().Batches) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_login_commit_logins_total", Help: "Logins written by the group commit (divided by multijuego_auth_login_commits_total: the mean batch)."},
			func() float64 { return float64(a.LoginCommits().Logins) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_login_commit_overflows_total", Help: "Logins written alone because the group commit's queue was full."},
			func() float64 { return float64(a.LoginCommits().Overflows) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_login_commit_retries_total", Help: "Group commits that failed and were written login by login."},
			func() float64 { return float64(a.LoginCommits().Retries) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_auth_login_commit_seconds_total", Help: "Time the group commit spent writing batches (divided by multijuego_auth_login_commits_total: the mean commit; its rate near 1: logins wait on the store's writes)."},
			func() float64 { return a.LoginCommits().Busy.Seconds() }),
	)
}

// Serve is `multijuego serve`: open, run until ctx ends, close.
func Serve(ctx context.Context, cfg Config, modes []Mode, stdout io.Writer, log *slog.Logger) error {
	m := &Main{Config: cfg, Logger: log, Stdout: stdout, Modes: modes}
	if err := m.Open(ctx); err != nil {
		return err
	}
	runErr := m.Run(ctx)
	return errors.Join(runErr, m.Close())
}

func httpReady(hc *http.Client, base string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		return getOK(ctx, hc, strings.TrimRight(base, "/")+"/healthz")
	}
}
