package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/match"
)

// signingKeyFile is the default events.signing_key_file of the embedded
// NATS, under data_dir.
const signingKeyFile = "events-signing.key"

// busRoles are the event bus roles of this process's roles (the auth role
// has none).
func busRoles(roles []string) []string {
	var out []string
	for _, r := range ExpandRoles(roles) {
		switch r {
		case RoleGateway:
			out = append(out, events.RoleGateway)
		case RoleGame:
			out = append(out, events.RoleGame)
		case RolePersistence:
			out = append(out, events.RolePersistence)
		}
	}
	return out
}

// What the key provider binds to each sealed secret of the event bus, so
// that none opens in another's place: the signing key, and the embedded
// NATS users file.
var (
	signingKeyAAD = []byte("mj-events-signing-key")
	natsUsersAAD  = []byte("mj-nats-users")
)

// busSealer seals one secret of the event bus with the key provider,
// open until the caller calls done.
func busSealer(ctx context.Context, c Config, aad []byte) (ks events.KeySealer, done func() error, err error) {
	p, err := openSeal(ctx, c, nil)
	if err != nil {
		return nil, nil, err
	}
	return auth.LineSealer{W: p, AAD: aad}, p.Close, nil
}

// EmbeddedBusAuth returns the credentials of role on the embedded NATS of
// the server whose configuration is c (its data_dir/nats/users.json,
// sealed by its key provider); ok is false when there is none.
func EmbeddedBusAuth(ctx context.Context, c Config, role string) (a events.Auth, ok bool, err error) {
	if _, err := os.Stat(filepath.Join(c.DataDir, events.EmbeddedUsersFile)); errors.Is(err, fs.ErrNotExist) {
		return events.Auth{}, false, nil // no keyring opened (made) for nothing
	}
	ks, done, err := busSealer(ctx, c, natsUsersAAD)
	if err != nil {
		return events.Auth{}, false, err
	}
	defer done()
	return events.EmbeddedAuth(ctx, c.DataDir, role, ks)
}

// eventSigner loads the key game nodes sign events with and persistence
// checks them with: events.signing_key_file, required with nats_url by a
// process that signs or checks (several processes must share it; read
// sealed or in clear, never rewritten); with the embedded NATS,
// data_dir/events-signing.key by default, made sealed on first start by
// the key provider (seal.provider), and sealed at start if found in
// clear. Nil for a process that does neither (a gateway).
func eventSigner(ctx context.Context, c Config) (*events.Signer, error) {
	roles := ExpandRoles(c.Roles)
	if !slices.Contains(roles, RoleGame) && !slices.Contains(roles, RolePersistence) {
		return nil, nil
	}
	if c.Events.SigningKeyFile == "" && c.NATSURL != "" {
		return nil, errors.New("events.signing_key_file is required with nats_url when this process runs the game or persistence role: " +
			"the same key file on every game and persistence node (make one with `openssl rand -hex 32 > events.key && chmod 600 events.key`); " +
			"events not signed with it are dead-lettered")
	}
	ks, done, err := busSealer(ctx, c, signingKeyAAD)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a KMS round trip at most
	defer cancel()
	if c.Events.SigningKeyFile != "" {
		s, _, err := events.LoadSigningKey(ctx, c.Events.SigningKeyFile, ks)
		return s, err
	}
	return events.LoadOrCreateSigningKey(ctx, filepath.Join(c.DataDir, signingKeyFile), ks)
}

// busAuth is this process's credentials for an external NATS.
func busAuth(e EventsConfig) events.Auth {
	return events.Auth{CredsFile: e.CredsFile, NkeySeedFile: e.NkeySeedFile, User: e.User, PasswordFile: e.PasswordFile}
}

// openEvents connects to the event queue: the NATS JetStream server or
// cluster at nats_url, or one embedded in this process.
func openEvents(ctx context.Context, m *Main) (*events.Bus, error) {
	c := m.Config
	signer, err := eventSigner(ctx, c)
	if err != nil {
		return nil, err
	}
	natsTLS, err := c.Events.TLS.Config("")
	if err != nil {
		return nil, fmt.Errorf("events.tls: %w", err)
	}
	listenTLS, err := c.Events.ListenTLS.Config(func(err error) {
		m.Logger.Error("events.listen_tls: certificate not reloaded; the previous one stays in use", "err", err)
	})
	if err != nil {
		return nil, fmt.Errorf("events.listen_tls: %w", err)
	}
	var usersSealer events.KeySealer
	if c.NATSURL == "" {
		var done func() error
		if usersSealer, done, err = busSealer(ctx, c, natsUsersAAD); err != nil {
			return nil, err
		}
		defer done() // events.Open uses it while it opens, not after
	}
	bus, err := events.Open(ctx, events.Config{
		URL: c.NATSURL, DataDir: c.DataDir, Listen: c.Events.Listen,
		DuplicateWindow: c.Events.DuplicateWindow, Sync: c.Events.Sync, Replicas: c.Events.Replicas,
		Roles: busRoles(c.Roles), Auth: busAuth(c.Events), Signer: signer, TLS: natsTLS, ListenTLS: listenTLS, UsersSealer: usersSealer,
	}, m.Logger)
	if err != nil {
		return nil, err
	}
	if c.NATSURL == "" {
		roles := ExpandRoles(c.Roles)
		hasGame, hasPersist := false, false
		for _, r := range roles {
			hasGame = hasGame || r == RoleGame
			hasPersist = hasPersist || r == RolePersistence
		}
		if hasGame != hasPersist {
			m.Logger.Warn("events: NATS is embedded in this process but the game and persistence roles are not both here; " +
				"set nats_url so that they share one queue, or match results stay in this process's stream")
		}
	}
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_nats_async_errors_total",
		Help: "Asynchronous errors of the NATS connection (a slow consumer drops messages, which come back only after the ack wait)."},
		func() float64 { return float64(bus.AsyncErrors()) }))
	return bus, nil
}

// newPublisher is the game node's side of the queue: the engine's start,
// key-moment and end hooks become match.started, match.event and
// match.ended events. Publish never blocks a match.
func newPublisher(m *Main, bus *events.Bus, node string) (*events.Publisher, match.Config) {
	pub := events.NewPublisher(bus, events.PublisherConfig{
		Buffer: m.Config.Events.Buffer, SpoolDir: filepath.Join(m.Config.DataDir, "spool"),
	}, m.Logger)
	publish := func(ev events.Event, err error) {
		if err == nil {
			err = pub.Publish(ev)
		}
		if err != nil {
			// The publisher counts and logs drops itself; this is an
			// event it refused outright (invalid or closed).
			m.Logger.Error("events: not published", "type", ev.Type, "match_id", ev.MatchID, "err", err)
		}
	}
	// Ids are stable (events.StableID): a match restored on another node
	// that emits a key moment or its end again makes the same event, and
	// the queue and persistence drop the repeat.
	hooks := match.Config{
		OnStart: func(s match.Started) {
			id := events.StableID(s.ID, s.Created, events.TypeMatchStarted, 0, 0)
			publish(events.NewMatchStartedID(id, s.ID, node, events.MatchStarted{Mode: s.Mode, Label: s.Label}))
		},
		OnEvent: func(e match.Event) {
			id := events.StableID(e.MatchID, e.Created, events.TypeMatchEvent, e.Tick, e.Seq)
			publish(events.NewMatchEventID(id, e.MatchID, node, events.MatchEvent{Name: e.Name, Data: e.Data}))
		},
		OnEnd: func(s match.Summary) {
			id := events.StableID(s.ID, s.Created, events.TypeMatchEnded, 0, 0)
			publish(events.NewMatchEndedID(id, s.ID, node, events.EndedFromSummary(s)))
		},
	}
	registerPublisherMetrics(m.registry, pub)
	return pub, hooks
}

func registerPublisherMetrics(reg *prometheus.Registry, p *events.Publisher) {
	reg.MustRegister(
		counterOf("multijuego_events_published_total", "Match events acknowledged by the queue.", &p.Published),
		counterOf("multijuego_events_retried_total", "Publish attempts retried while the queue was unreachable.", &p.Retried),
		counterOf("multijuego_events_dropped_total", "Match events lost because the local buffer was full (never match.ended).", &p.Dropped),
		counterOf("multijuego_events_spooled_total", "match.ended events written to the local spool file to be published later.", &p.Spooled),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_events_buffered", Help: "Match events waiting in this node's buffer."},
			func() float64 { return float64(p.Buffered()) }),
	)
}

// openPersistence is the persistence role: the durable consumer that
// writes match events to the database.
func openPersistence(m *Main) *persist.Consumer {
	c := persist.New(m.bus, m.store, persist.Config{Batch: m.Config.Events.Batch, MaxDeliver: m.Config.Events.MaxDeliver}, m.Logger)
	m.registry.MustRegister(
		counterOf("multijuego_persist_processed_total", "Match events written (or found already written) and acknowledged.", &c.Processed),
		counterOf("multijuego_persist_duplicates_total", "Redelivered events that changed nothing (already in the database).", &c.Duplicates),
		counterOf("multijuego_persist_retried_total", "Events handed back for redelivery after a transient failure.", &c.Retried),
		counterOf("multijuego_persist_dead_lettered_total", "Events moved to the dead-letter queue.", &c.DeadLettered),
		counterOf("multijuego_persist_refused_total", "Events dead-lettered because their signature is missing or wrong (forged, or signed with another key).", &c.Refused),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_persist_lag", Help: "Events in the queue not yet written and acknowledged."},
			func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				n, err := c.Lag(ctx)
				if err != nil {
					return -1
				}
				return float64(n)
			}),
	)
	return c
}

// dedupRetention is how long the persistence service remembers processed
// event ids: longer than the events stream keeps a message and than a dead
// letter can wait for a replay, so nothing the queue can still deliver is
// applied twice.
const dedupRetention = events.DefaultDLQMaxAge + 7*24*time.Hour

// pruneEvery is how often forgotten event ids are deleted.
const pruneEvery = time.Hour

// pruneProcessed deletes processed event ids older than dedupRetention,
// at start and then every pruneEvery, until ctx ends. Failures are logged
// and retried at the next round: pruning is housekeeping.
func (m *Main) pruneProcessed(ctx context.Context) error {
	t := time.NewTimer(time.Minute) // not while the node is starting
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := m.store.PruneProcessed(ctx, time.Now().Add(-dedupRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			m.Logger.Warn("pruning processed event ids failed; retrying later", "err", err)
		case n > 0:
			m.Logger.Info("pruned processed event ids", "count", n, "older_than", dedupRetention)
		}
		t.Reset(pruneEvery)
	}
}

// counterOf exports an atomic counter as a Prometheus counter.
func counterOf(name, help string, v *atomic.Int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
}
