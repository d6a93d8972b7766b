package events

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sync policies (Config.Sync).
const (
	SyncDefault = "default" // the server's periodic fsync (2 minutes by default)
	SyncAlways  = "always"  // embedded: fsync every write before the ack
)

// Stream and subject names without a prefix.
const (
	eventsStream  = "MJ_EVENTS"
	dlqStream     = "MJ_DLQ"
	eventsSubject = "mj.events"
	dlqSubject    = "mj.dlq"
)

// Defaults.
const (
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultMaxAge          = 7 * 24 * time.Hour  // events stream
	DefaultDLQMaxAge       = 90 * 24 * time.Hour // dead letters
)

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{0,32}$`)

// Config configures a Bus.
type Config struct {
	// URL is a comma-separated list of nats:// URLs of an external NATS
	// with JetStream; empty runs nats-server embedded in this process.
	URL string
	// DataDir holds the embedded server's file storage, in DataDir/nats.
	// Required when embedded.
	DataDir string
	// Listen (embedded only) is an optional host:port on which the
	// embedded server also accepts clients, with the users of
	// EmbeddedUsersFile only; empty: none (in-process only). It must be a
	// loopback address unless ListenTLS is set.
	Listen string
	// Prefix goes before stream names (Prefix_MJ_EVENTS) and subjects
	// (Prefix.mj.events.<type>); letters, digits, '_' and '-', at most 32.
	// Empty: MJ_EVENTS, MJ_DLQ, mj.events.<type>, mj.dlq.<type>.
	Prefix string
	// Replicas of each stream, at most 5: what a new stream gets, and what
	// an existing one is raised to. An existing stream is never lowered:
	// with fewer replicas configured than it has, it keeps its count and
	// Open logs a warning (lowering is an operator's decision, made with
	// the nats CLI). 0, the default: 1 for a new stream, an existing
	// stream's count kept. The embedded server is one node: 0 or 1.
	Replicas int
	// DuplicateWindow is how long the server remembers message ids to drop
	// duplicates (default 2m).
	DuplicateWindow time.Duration
	// Sync is SyncDefault ("" too) or SyncAlways; see docs/events.md.
	// External: the server's own jetstream.sync_interval decides, and
	// SyncAlways only logs a reminder.
	Sync string
	// MaxAge is how long the events stream keeps a message (default 7
	// days); DLQMaxAge the same for dead letters (default 90 days).
	MaxAge, DLQMaxAge time.Duration

	// Roles are this connection's roles (Role constants): on the embedded
	// server, the permissions of the in-process connection. Empty: every
	// role.
	Roles []string
	// RouterPrefix is the router's subject prefix, which the embedded
	// server's gateway and game users may use (empty: DefaultRouterPrefix).
	RouterPrefix string
	// Auth authenticates the connection to an external NATS. The embedded
	// server makes its own users (EmbeddedUsersFile) and ignores it.
	Auth Auth
	// TLS (external only) checks the NATS servers' certificates and, for
	// mutual TLS, presents a client certificate; nil: TLS only if a URL is
	// tls:// (system roots) or the server asks for it.
	TLS *tls.Config
	// ListenTLS (embedded only) is the TLS of the Listen listener: TLS
	// only, and with ClientAuth tls.RequireAndVerifyClientCert a client
	// certificate its ClientCAs signed (the in-process connection needs
	// none). Without it the listener opens on a loopback address only.
	ListenTLS *tls.Config
	// UsersSealer (embedded only) seals EmbeddedUsersFile, the passwords
	// of the embedded server's users, at rest; nil keeps it in clear.
	UsersSealer KeySealer
	// NoStreams leaves the streams as they are, or absent, instead of
	// creating or updating them: for restoring them from snapshots
	// (Bus.Restore), which refuses a stream that exists.
	NoStreams bool
	// Signer is the deployment's event signing key: Publishers on this bus
	// sign with it and persistence Consumers check with it, unless given
	// their own. Nil: unsigned and unchecked (tests).
	Signer *Signer
}

// roles is Roles, or every role when empty.
func (c *Config) roles() []string {
	if len(c.Roles) == 0 {
		return Roles
	}
	return c.Roles
}

func (c *Config) defaults() error {
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.DLQMaxAge == 0 {
		c.DLQMaxAge = DefaultDLQMaxAge
	}
	if c.Sync == "" {
		c.Sync = SyncDefault
	}
	switch {
	case !prefixRE.MatchString(c.Prefix):
		return fmt.Errorf("events: prefix %q: letters, digits, '_' and '-' only, at most 32", c.Prefix)
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("events: replicas %d not in 0..5", c.Replicas)
	case c.URL == "" && c.Replicas > 1:
		return errors.New("events: the embedded server has one replica")
	case c.URL == "" && c.DataDir == "":
		return errors.New("events: the embedded server needs a data directory")
	case c.URL != "" && c.Listen != "":
		return errors.New("events: listen is for the embedded server only")
	case c.DuplicateWindow < 0 || c.MaxAge < 0 || c.DLQMaxAge < 0:
		return errors.New("events: negative duration")
	case c.DuplicateWindow > c.MaxAge:
		return errors.New("events: duplicate window longer than max age")
	case c.Sync != SyncDefault && c.Sync != SyncAlways:
		return fmt.Errorf("events: sync %q: want %q or %q", c.Sync, SyncDefault, SyncAlways)
	case c.URL == "" && !c.Auth.empty():
		return errors.New("events: credentials are for an external NATS; the embedded server makes its own")
	}
	for _, r := range c.Roles {
		if !slices.Contains(Roles, r) {
			return fmt.Errorf("events: unknown role %q (want one of %s)", r, strings.Join(Roles, ", "))
		}
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	return nil
}

// Bus is a JetStream connection with the events and dead-letter streams
// in place. Safe for concurrent use.
type Bus struct {
	cfg    Config
	log    *slog.Logger
	ns     *server.Server // embedded only
	nc     *nats.Conn
	js     jetstream.JetStream
	closed chan struct{} // closed by the connection's ClosedHandler
	unlock func()        // embedded only: releases the store directory's lock

	asyncErrors atomic.Int64 // errors the connection reported (slow consumers among them)

	closeOnce sync.Once
	closeErr  error
}

// AsyncErrors is the number of asynchronous errors the NATS connection
// has reported so far (each is also logged): a slow consumer, which drops
// messages, or a permission refusal.
func (b *Bus) AsyncErrors() int64 { return b.asyncErrors.Load() }

// Open connects to NATS (or starts the embedded server) and creates or
// updates the two streams.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{cfg: cfg, log: log, closed: make(chan struct{})}
	opts := []nats.Option{
		nats.Name("multijuego"),
		nats.DrainTimeout(5 * time.Second),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.asyncErrors.Add(1)
			log.Error("nats async error", "subject", subj, "err", err)
		}),
	}
	var err error
	if cfg.URL == "" {
		if b.unlock, err = lockStore(filepath.Join(cfg.DataDir, "nats")); err != nil {
			return nil, err
		}
		nodePassword := randomSecret()
		if b.ns, err = startEmbedded(ctx, cfg, nodePassword, log); err != nil {
			b.unlock()
			return nil, err
		}
		opts = append(opts, nats.InProcessServer(b.ns), nats.UserInfo(nodeUser, nodePassword))
		b.nc, err = nats.Connect("", opts...)
	} else {
		authOpts, aerr := cfg.Auth.options()
		if aerr != nil {
			return nil, aerr
		}
		opts = append(opts, authOpts...)
		if cfg.TLS != nil {
			opts = append(opts, nats.Secure(cfg.TLS))
		}
		if cfg.Sync == SyncAlways {
			log.Info("events: sync=always is the NATS server's setting (jetstream { sync_interval: always }); check it there")
		}
		opts = append(opts,
			nats.Timeout(5*time.Second),
			nats.MaxReconnects(-1), // forever: the publisher queues meanwhile
			nats.ReconnectWait(500*time.Millisecond),
			nats.ReconnectJitter(250*time.Millisecond, time.Second),
			// Publishing while disconnected fails at once instead of
			// filling a hidden buffer: the Publisher keeps its own queue.
			nats.ReconnectBufSize(-1),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				log.Warn("nats disconnected; reconnecting", "err", err)
			}),
			nats.ReconnectHandler(func(c *nats.Conn) {
				log.Info("nats reconnected", "server", c.ConnectedUrlRedacted())
			}),
		)
		b.nc, err = nats.Connect(cfg.URL, opts...)
	}
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("events: connect to nats: %w", err)
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		b.Close()
		return nil, fmt.Errorf("events: jetstream: %w", err)
	}
	if cfg.NoStreams {
		return b, nil
	}
	if err := b.ensureStreams(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func startEmbedded(ctx context.Context, cfg Config, nodePassword string, log *slog.Logger) (*server.Server, error) {
	users, err := embeddedUsers(ctx, cfg.DataDir, cfg.UsersSealer)
	if err != nil {
		return nil, err
	}
	serverSide, err := serverUsers(cfg, users, nodePassword)
	if err != nil {
		return nil, err
	}
	o := &server.Options{
		Users:      serverSide,
		ServerName: "multijuego-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		SyncAlways: cfg.Sync == SyncAlways,
		NoSigs:     true,
		DontListen: cfg.Listen == "",
	}
	if cfg.Listen != "" {
		host, err := checkListen(cfg)
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(cfg.Listen)
		if o.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("events: listen %q: bad port", cfg.Listen)
		}
		o.Host = host
		if cfg.ListenTLS != nil {
			o.TLSConfig, o.TLS = cfg.ListenTLS, true
			o.TLSVerify = cfg.ListenTLS.ClientAuth == tls.RequireAndVerifyClientCert
		}
	}
	ns, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("events: embedded nats-server: %w", err)
	}
	ns.SetLoggerV2(slogAdapter{log.With("component", "nats-server")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("events: embedded nats-server not ready after 10s")
	}
	return ns, nil
}

// streamConfigs are the two streams. Only fields NATS 2.9 knows are set.
func (b *Bus) streamConfigs() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{{
		Name:        b.EventsStream(),
		Description: "multijuego game events",
		Subjects:    []string{b.prefixed(eventsSubject) + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.cfg.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		Duplicates:  b.cfg.DuplicateWindow,
	}, {
		Name:        b.DLQStream(),
		Description: "multijuego events that could not be processed",
		Subjects:    []string{b.prefixed(dlqSubject) + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.cfg.DLQMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		Duplicates:  b.cfg.DuplicateWindow,
	}}
}

// ensureStreams creates the streams, or updates them to this
// configuration, except that a stream's replica count is never lowered
// (see Config.Replicas).
func (b *Bus) ensureStreams(ctx context.Context) error {
	for _, sc := range b.streamConfigs() {
		if err := b.ensureStream(ctx, sc); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bus) ensureStream(ctx context.Context, sc jetstream.StreamConfig) error {
	s, err := b.js.Stream(ctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		sc.Replicas = max(sc.Replicas, 1)
		_, err = b.js.CreateStream(ctx, sc)
		if err == nil {
			b.warnSingleReplica(sc.Name, sc.Replicas)
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("events: create stream %s: %w", sc.Name, err)
		}
		// Another node created it meanwhile, configured otherwise: update
		// it as below.
		s, err = b.js.Stream(ctx, sc.Name)
	}
	if err != nil {
		return fmt.Errorf("events: stream %s: %w", sc.Name, err)
	}
	have := max(s.CachedInfo().Config.Replicas, 1)
	switch {
	case sc.Replicas == 0:
		sc.Replicas = have
	case sc.Replicas < have:
		b.log.Warn("events: events.replicas is lower than the stream's replica count; the stream keeps its count "+
			"(it is never lowered at start: lower it with `nats stream edit --replicas` if that is intended)",
			"stream", sc.Name, "replicas", have, "events.replicas", sc.Replicas)
		sc.Replicas = have
	case sc.Replicas > have:
		b.log.Info("events: raising the stream's replica count to events.replicas", "stream", sc.Name, "from", have, "to", sc.Replicas)
	}
	if _, err := b.js.UpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("events: update stream %s: %w", sc.Name, err)
	}
	b.warnSingleReplica(sc.Name, sc.Replicas)
	return nil
}

// warnSingleReplica warns when a stream has one replica on a NATS cluster
// because events.replicas was left unset: it then lives on one server.
func (b *Bus) warnSingleReplica(stream string, replicas int) {
	if b.cfg.Replicas == 0 && replicas == 1 && b.nc.ConnectedClusterName() != "" {
		b.log.Warn("events: the stream has one replica on a NATS cluster, because events.replicas is not set; "+
			"set events.replicas (3 on a 3-node cluster) so that it survives a server failure",
			"stream", stream, "cluster", b.nc.ConnectedClusterName())
	}
}

func (b *Bus) prefixed(s string) string {
	if b.cfg.Prefix == "" {
		return s
	}
	return b.cfg.Prefix + "." + s
}

// EventsStream is the name of the events stream.
func (b *Bus) EventsStream() string { return b.streamName(eventsStream) }

// DLQStream is the name of the dead-letter stream.
func (b *Bus) DLQStream() string { return b.streamName(dlqStream) }

func (b *Bus) streamName(s string) string {
	if b.cfg.Prefix == "" {
		return s
	}
	return b.cfg.Prefix + "_" + s
}

// Subject is the subject events of a type are published on:
// mj.events.<type>, e.g. mj.events.match.ended.
func (b *Bus) Subject(eventType string) string {
	return b.prefixed(eventsSubject) + "." + eventType
}

// DLQSubject is the subject dead letters of a type go to: mj.dlq.<type>.
func (b *Bus) DLQSubject(eventType string) string {
	return b.prefixed(dlqSubject) + "." + eventType
}

// Conn is the NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream context on Conn.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Signer is Config.Signer.
func (b *Bus) Signer() *Signer { return b.cfg.Signer }

// Embedded reports whether the bus runs its own nats-server.
func (b *Bus) Embedded() bool { return b.ns != nil }

// Ready reports whether NATS is connected and the events stream answers.
func (b *Bus) Ready(ctx context.Context) error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("events: nats %s", s)
	}
	if _, err := b.js.Stream(ctx, b.EventsStream()); err != nil {
		return fmt.Errorf("events: stream %s: %w", b.EventsStream(), err)
	}
	return nil
}

// Close drains the connection (bounded by 5s), then shuts the embedded
// server down and waits for it. Close a Publisher on the bus first.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		if err := b.nc.Drain(); err != nil {
			b.nc.Close()
			if !errors.Is(err, nats.ErrConnectionReconnecting) && !errors.Is(err, nats.ErrConnectionClosed) {
				b.closeErr = fmt.Errorf("events: drain: %w", err)
			}
		}
		select {
		case <-b.closed:
		case <-time.After(10 * time.Second):
			b.nc.Close()
			b.closeErr = errors.New("events: connection did not close within 10s")
		}
		b.shutdownServer()
	})
	return b.closeErr
}

func (b *Bus) shutdownServer() {
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	if b.unlock != nil {
		b.unlock()
	}
}

// slogAdapter is the embedded server's logger. Its notices (startup
// banners) are debug lines here.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(f string, v ...any) { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Warnf(f string, v ...any)   { a.l.Warn(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Fatalf(f string, v ...any)  { a.l.Error(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Errorf(f string, v ...any)  { a.l.Error(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Debugf(f string, v ...any)  { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Tracef(f string, v ...any)  {}
