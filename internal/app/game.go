package app

import (
	"context"
	"errors"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/gamenode"
	"github.com/multijuego/multijuego/match"
)

// Mode is a game mode a binary offers: a name and the factory of its
// handlers. cmd/multijuego offers the reference games; a studio's own main
// passes its own.
type Mode struct {
	Name    string
	Factory match.Factory
}

// senderRelay is the engine's Sender; it forwards to the router, which is
// built after the engine (the router needs the engine). It is set in Open,
// before any match can exist.
type senderRelay struct{ to atomic.Pointer[match.Sender] }

func (r *senderRelay) Send(p match.Presence, f *match.Frame) bool {
	if s := r.to.Load(); s != nil {
		return (*s).Send(p, f)
	}
	return false // the engine keeps its reference
}

func (r *senderRelay) Close(p match.Presence, id string, reason match.Reason) {
	if s := r.to.Load(); s != nil {
		(*s).Close(p, id, reason)
	}
}

// game is the game role: the match engine and the game node that keeps its
// matches' snapshots and directory leases in the key-value store.
type game struct {
	engine *match.Engine
	node   *gamenode.Node
	modes  []string
	relay  *senderRelay
	grace  time.Duration
	pub    *events.Publisher
	// personal seals personal events for pub; nil without the vault.
	personal *personalEvents
	nodeID   string
	// drained is closed when the router has handed this node's matches
	// over to other nodes; the engine shuts down what is left after it.
	drained <-chan struct{}
	// lost records a match of a dead node that could not be restored.
	lost func(s match.Snapshot, reason string)
}

func openGame(m *Main) (*game, error) {
	c := m.Config.Game
	nodeID := m.nodeID
	g := &game{grace: c.ShutdownGrace, relay: &senderRelay{}, nodeID: nodeID}
	modes := append([]Mode(nil), m.Modes...)
	sort.Slice(modes, func(i, j int) bool { return modes[i].Name < modes[j].Name })
	names := modeNames(modes)
	onTick, err := tickMetric(m.registry, names)
	if err != nil {
		return nil, err
	}
	var node *gamenode.Node
	pub, hooks := newPublisher(m, m.bus, nodeID)
	g.pub = pub
	if m.personal != nil {
		g.personal = newPersonalEvents(m.personal, pub, nodeID, m.Logger)
		hooks.OnPersonalEvent = g.personal.enqueue
		m.registry.MustRegister(counterOf("multijuego_events_personal_dropped_total",
			"Personal match events lost before the queue: the sealing queue was full, sealing failed, or the owner's account was erased.", &g.personal.Dropped))
	}
	g.lost = func(s match.Snapshot, reason string) {
		now := time.Now().UTC()
		created := s.Created
		if created.IsZero() {
			created = now
		}
		hooks.OnEnd(match.Summary{ID: s.MatchID, Mode: s.Mode, Label: s.Label, Created: created, Ended: now, Ticks: s.Tick,
			Results: match.Results{Reason: reason}})
	}
	engine, err := match.NewEngine(match.Config{
		Sender: g.relay, Logger: m.Logger, MaxMatches: c.MaxMatches,
		DisconnectGrace: c.DisconnectGrace, ShutdownGrace: c.ShutdownGrace, EmptyTimeout: c.EmptyTimeout,
		SnapshotEvery: c.SnapshotEvery, OnSnapshot: func(s match.Snapshot) { node.OnSnapshot(s) },
		OnTick: onTick, OnStart: hooks.OnStart, OnEvent: hooks.OnEvent, OnPersonalEvent: hooks.OnPersonalEvent, OnEnd: hooks.OnEnd,
	})
	if err != nil {
		return nil, err
	}
	for _, md := range modes {
		if err := engine.Register(md.Name, md.Factory); err != nil {
			return nil, err
		}
	}
	node = gamenode.New(gamenode.Config{NodeID: nodeID, SnapshotTTL: c.SnapshotTTL, Heartbeat: c.Heartbeat, Timeout: m.Config.Cache.Timeout * 4},
		m.volatile.kv, engine, m.Logger)
	g.engine, g.node, g.modes = engine, node, names
	registerGameMetrics(m.registry, engine, node)
	m.Logger.Info("game node", "node_id", nodeID, "modes", names, "snapshot_every", c.SnapshotEvery)
	return g, nil
}

// run keeps the game node writing until ctx ends, then drains: the router
// hands the matches over to other nodes, those no node took get
// ShutdownGrace to end (their final snapshots are queued), and the node
// writes what is pending before it stops.
func (g *game) run(ctx context.Context) error {
	nctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- g.node.Run(nctx) }()
	select {
	case <-ctx.Done():
	case err := <-done:
		stop()
		return err
	}
	if g.drained != nil {
		// The router hands the matches over to other nodes first.
		select {
		case <-g.drained:
		case <-time.After(g.grace + 5*time.Second):
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), g.grace+5*time.Second)
	err := g.engine.Shutdown(sctx)
	cancel()
	// The matches' last results are queued: flush them, or spool them to
	// disk for the next start (personal events sealed first).
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if g.personal != nil {
		if perr := g.personal.close(pctx); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	if perr := g.pub.Close(pctx); perr != nil {
		err = errors.Join(err, perr)
	}
	pcancel()
	stop()
	if nerr := <-done; nerr != nil {
		return nerr
	}
	return err
}

func registerGameMetrics(reg *prometheus.Registry, e *match.Engine, n *gamenode.Node) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_matches_live", Help: "Matches running on this node."},
			func() float64 { return float64(len(e.List(match.Filter{}))) }),
		counterOf("multijuego_match_snapshots_written_total", "Match snapshots written to the key-value store.", &n.SnapshotsWritten),
		counterOf("multijuego_match_snapshots_dropped_total", "Match snapshots dropped because too many were waiting.", &n.SnapshotsDropped),
		counterOf("multijuego_gamenode_write_errors_total", "Failed writes of snapshots and directory leases.", &n.WriteErrors),
		counterOf("multijuego_gamenode_leases_lost_total", "Directory leases found held by another node.", &n.LeasesLost),
		counterOf("multijuego_gamenode_matches_abandoned_total", "Matches this node stopped because another node holds their lease (it took them over while this node was cut off).", &n.Abandoned),
	)
}

// tickBuckets are the bounds of multijuego_match_tick_seconds: fine below
// 5ms, where a healthy tick's p99 lies, coarse above.
var tickBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.010,
	0.025, 0.050, 0.100, 0.250,
}

// tickMetric registers the histogram multijuego_match_tick_seconds{mode}
// and returns the engine's [match.Config.OnTick] feeding it. The observers
// of the known modes are resolved here, once, into a map only read
// afterwards, so observing a tick takes a map lookup and no allocation; a
// mode unknown here (none: the engine only runs registered modes) would be
// resolved on each tick.
func tickMetric(reg prometheus.Registerer, modes []string) (func(string, time.Duration), error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "multijuego_match_tick_seconds",
		Help:    "Real time a match tick took on its goroutine: inputs, the handler's Loop, the frames it broadcast, kicks and snapshots.",
		Buckets: tickBuckets,
	}, []string{"mode"})
	if err := reg.Register(h); err != nil {
		return nil, err
	}
	obs := make(map[string]prometheus.Observer, len(modes))
	for _, mode := range modes {
		obs[mode] = h.WithLabelValues(mode)
	}
	return func(mode string, d time.Duration) {
		o, ok := obs[mode]
		if !ok {
			o = h.WithLabelValues(mode)
		}
		o.Observe(d.Seconds())
	}, nil
}
