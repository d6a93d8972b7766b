// Package router connects gateways and game nodes that run in different
// processes, over NATS, and stays out of the way when they share one.
//
// A gateway holds the players' sockets; a game node runs match loops. The
// router on a gateway is the match engine as the realtime gateway sees it
// (Create, List, Get, Join, Leave, Disconnect, Input, End): a call for a
// match this process hosts goes straight to the local engine; any other
// goes over NATS. The router on a game node is the engine's Sender: frames
// for a socket on this process go straight to the local gateway; others are
// batched per gateway.
//
// Subjects (Prefix is "mj.rt" by default):
//
//	Prefix.n.<node>.ctl      request-reply: create, list (a node's own)
//	Prefix.m.<match>.ctl     request-reply: get, join, leave, disconnect, end;
//	                         the hosting node subscribes, so the request
//	                         finds it wherever it runs
//	Prefix.m.<match>.in      inputs for a match, batched per gateway (wire.go)
//	Prefix.g.<gateway>.out   frames, seat closes and input refusals for the
//	                         sockets of one gateway, batched per node (wire.go)
//	Prefix.sockets           a socket a gateway opened, so the others close
//	                         their older socket of the account (sockets.go)
//	Prefix.online            request, every gateway answers: its players
//	                         online, for the admin API (online.go)
//
// A broadcast leaves the game node once per gateway that holds players of
// the match, with the recipients listed, and that gateway frames it once
// and queues it on each socket. Placement reads the node directory
// (registry.go): least loaded node with room for the mode in the region.
//
// Queues and their overflow rules: batches wait at most FlushInterval; a
// batch over maxBatch bytes is sent at once. Messages received wait in a
// bounded channel per kind (inputs, control, output, sockets): when one is
// full NATS drops what arrives (a slow consumer, counted in the NATS async
// errors) and the sender's request times out, or the input or frame is
// lost as on a congested socket (or, for sockets, the older socket of an
// account stays open).
package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/match"
)

// Engine is the local match engine (*match.Engine).
type Engine interface {
	Create(ctx context.Context, mode string, params match.Params) (string, error)
	Get(id string) (match.Info, bool)
	List(f match.Filter) []match.Info
	Join(ctx context.Context, id string, p match.Presence, meta map[string]string) error
	Leave(ctx context.Context, id string, p match.Presence) error
	Disconnect(ctx context.Context, id string, p match.Presence) error
	Input(id string, p match.Presence, op match.OpCode, data []byte) error
	End(ctx context.Context, id, reason string) error
	Handoff(ctx context.Context, id string) (match.Snapshot, error)
	Restore(ctx context.Context, s match.Snapshot) error
}

// Local is the realtime gateway in this process, as the router delivers to
// it: the engine's Sender, plus frames already encoded elsewhere and input
// refusals from a remote node.
type Local interface {
	match.Sender
	// Deliver queues a frame's bytes (match.Frame.Bytes) to the sockets
	// of sessions and returns how many took it (a socket that is gone or
	// whose queue is full does not).
	Deliver(sessions []string, frame []byte) int
	// InputRefused tells a socket that the owning node refused its input.
	InputRefused(sessionID string, op match.OpCode, err error)
	// Replace closes this gateway's socket of account if it opened before
	// session, a socket another gateway opened at opened (sockets.go).
	Replace(account, session string, opened time.Time)
	// Online returns how many sockets this gateway holds and the first
	// limit of them as a JSON array (online.go).
	Online(limit int) (count int, players json.RawMessage)
}

// Config configures a router.
type Config struct {
	// NodeID names this process in subjects and session ids: letters,
	// digits, '-' and '_'.
	NodeID string
	// Prefix of every subject (default "mj.rt").
	Prefix string
	// Region and Zone are this game node's place, for placement.
	Region, Zone string
	// MaxMatches and MaxPlayers are this game node's capacity.
	MaxMatches, MaxPlayers int
	// Modes are the game modes this node runs.
	Modes []string
	// Heartbeat is how often the node's directory record is written; it
	// lives three heartbeats.
	Heartbeat time.Duration
	// RequestTimeout bounds one control request to another node.
	RequestTimeout time.Duration
	// FlushInterval is the longest an input or frame waits to be batched.
	FlushInterval time.Duration
	// ListTTL is how long the list of this node's matches outlives the
	// node (as long as their snapshots: the game's snapshot_ttl).
	ListTTL time.Duration
	// DrainTimeout bounds the handover of this node's matches when it
	// stops.
	DrainTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Prefix == "" {
		c.Prefix = "mj.rt"
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 2 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 2 * time.Millisecond
	}
	if c.ListTTL <= 0 {
		c.ListTTL = 10 * time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
}

// ValidNodeID reports whether id can name a node in subjects.
func ValidNodeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ErrNoNode is returned by Create when no game node has room; it wraps
// match.ErrTooManyMatches, the same refusal one full node gives.
var ErrNoNode = fmt.Errorf("router: no game node has room for this match: %w", match.ErrTooManyMatches)

// Deps are the router's dependencies. Engine is nil on a process without
// the game role, Local nil on one without the gateway role.
type Deps struct {
	Conn   *nats.Conn
	KV     kv.Store
	Engine Engine
	// Leases holds the directory leases of the engine's matches (with
	// Engine).
	Leases Leases
	// OnLost is told of a match that was on a dead node and cannot be
	// restored, so it is recorded as ended with the reason.
	OnLost func(s match.Snapshot, reason string)
	Local  Local
	Logger *slog.Logger
}

// Router is one process's end of the routing. Safe for concurrent use.
type Router struct {
	cfg    Config
	nc     *nats.Conn
	engine Engine
	leases Leases
	onLost func(match.Snapshot, string)
	local  Local
	reg    registry
	log    *slog.Logger

	draining atomic.Bool
	drained  chan struct{}  // closed when Run has handed this node's matches over
	bg       sync.WaitGroup // drains asked for by operators (DrainNode)
	bgMu     sync.Mutex
	bgClosed bool // Run is stopping: no new background drain

	inputs  *batcher // gateway side: per match
	outputs *batcher // node side: per gateway

	listMu sync.Mutex // node side: one write of the match list at a time (writeMatchList)

	mu     sync.Mutex
	hosted map[string][]*nats.Subscription // node side: subscriptions per hosted match
	placed map[string]int                  // matches placed per node since the directory was read
	nodes  []NodeRecord                    // the directory as last read
	readAt time.Time

	inCh, ctlCh, outCh, sockCh         chan *nats.Msg
	nodeSub, gwSub, sockSub, onlineSub *nats.Subscription
	nodeInSub                          *nats.Subscription
	nodeIn                             string // this node's input subject

	// where is the gateway's map of match -> hosting node, learnt from the
	// nodes' hints (output.go); inputs for a known host go in one batch per
	// node instead of one per match.
	whereMu sync.RWMutex
	where   map[string]string
	// hinted (serveInputs only) remembers which gateways were told where a
	// match runs.
	hinted map[string]struct{}
	cpu    cpuMeter

	// Counters for metrics and tests.
	Forwarded, Received, Dropped, BadBatches atomic.Int64
	Registered                               atomic.Int64 // directory records written
	Recovered, Lost, Moved                   atomic.Int64 // matches taken over from dead nodes, lost, handed over
}

// New builds a router; Run serves it.
func New(cfg Config, d Deps) (*Router, error) {
	cfg.defaults()
	if !ValidNodeID(cfg.NodeID) {
		return nil, fmt.Errorf("router: node id %q: letters, digits, '-' and '_' only, 1 to 64", cfg.NodeID)
	}
	if d.Conn == nil || d.KV == nil {
		return nil, errors.New("router: needs a NATS connection and the key-value store")
	}
	if (d.Engine == nil) != (d.Leases == nil) {
		return nil, errors.New("router: a game node needs its engine and its leases")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{cfg: cfg, nc: d.Conn, engine: d.Engine, leases: d.Leases, onLost: d.OnLost, local: d.Local, drained: make(chan struct{}), reg: registry{kv: d.KV, ttl: 3 * cfg.Heartbeat}, log: d.Logger,
		hosted: map[string][]*nats.Subscription{}, placed: map[string]int{}, where: map[string]string{}, hinted: map[string]struct{}{},
		inCh: make(chan *nats.Msg, 8192), ctlCh: make(chan *nats.Msg, 1024), outCh: make(chan *nats.Msg, 8192), sockCh: make(chan *nats.Msg, 1024)}
	r.nodeIn = r.subject("n", cfg.NodeID, "in")
	r.inputs = newBatcher(cfg.FlushInterval, r.publish)
	r.outputs = newBatcher(cfg.FlushInterval, r.publish)
	return r, nil
}

func (r *Router) subject(parts ...string) string {
	return r.cfg.Prefix + "." + strings.Join(parts, ".")
}

func (r *Router) publish(subject string, data []byte) {
	if err := r.nc.Publish(subject, data); err != nil {
		r.Dropped.Add(1)
		r.log.Warn("router: publish failed", "subject", subject, "err", err)
		return
	}
	r.Forwarded.Add(1)
}

// SessionPrefix is what the local gateway puts before its session ids, so
// a game node knows which gateway holds a socket.
func (r *Router) SessionPrefix() string { return r.cfg.NodeID + "/" }

// gatewayOf is the node holding a session's socket ("" for this one).
func (r *Router) gatewayOf(sessionID string) string {
	i := strings.LastIndexByte(sessionID, '/')
	if i < 0 || sessionID[:i] == r.cfg.NodeID {
		return ""
	}
	return sessionID[:i]
}

// validSubjectToken reports whether s can stand in a subject (match ids
// are UUIDs; this refuses anything else that could change the subject).
func validSubjectToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	return !strings.ContainsAny(s, ". *>\t\r\n")
}

// Run subscribes and serves until ctx ends. A game node then hands its
// matches over to other nodes (Drain, bounded by DrainTimeout) while it
// still serves them, and only then unsubscribes, flushes and leaves the
// directory.
func (r *Router) Run(ctx context.Context) error {
	if err := r.subscribe(); err != nil {
		close(r.drained)
		return err
	}
	lctx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoops()
	var wg sync.WaitGroup
	loops := []func(context.Context){r.inputs.run, r.outputs.run, r.serveInputs, r.serveOutputs}
	if r.local != nil {
		loops = append(loops, r.serveSockets)
	}
	for range 8 {
		loops = append(loops, r.serveControl)
	}
	if r.engine != nil {
		// The heartbeat goes on while the node drains (until the loops
		// stop): a drain longer than the lease must not look like a crash.
		loops = append(loops, r.heartbeat, func(context.Context) { r.watchDead(ctx) })
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(lctx) }()
	}
	<-ctx.Done()
	if r.engine != nil {
		dctx, cancel := context.WithTimeout(lctx, r.cfg.DrainTimeout)
		r.Drain(dctx)
		cancel()
	}
	r.bgMu.Lock()
	r.bgClosed = true
	r.bgMu.Unlock()
	r.bg.Wait()
	close(r.drained)
	stopLoops()
	wg.Wait()
	r.unsubscribeAll()
	if r.engine != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := r.reg.deregister(dctx, r.cfg.NodeID); err != nil {
			r.log.Warn("router: leave the node directory", "err", err)
		}
		_ = r.reg.kv.Delete(dctx, matchListPrefix+r.cfg.NodeID)
		cancel()
	}
	return nil
}

// Drained is closed once a stopping node has handed its matches over (or
// given up): its engine may then shut down what is left.
func (r *Router) Drained() <-chan struct{} { return r.drained }

// watchDead looks for dead nodes twice a heartbeat.
func (r *Router) watchDead(ctx context.Context) {
	t := time.NewTicker(max(r.cfg.Heartbeat/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		r.recoverDead(rctx)
		cancel()
	}
}

func (r *Router) subscribe() error {
	var err error
	if r.engine != nil {
		if r.nodeSub, err = r.nc.ChanSubscribe(r.subject("n", r.cfg.NodeID, "ctl"), r.ctlCh); err != nil {
			return fmt.Errorf("router: subscribe: %w", err)
		}
		if r.nodeInSub, err = r.nc.ChanSubscribe(r.nodeIn, r.inCh); err != nil {
			return fmt.Errorf("router: subscribe: %w", err)
		}
		r.sync()
	}
	if r.local != nil {
		if r.gwSub, err = r.nc.ChanSubscribe(r.subject("g", r.cfg.NodeID, "out"), r.outCh); err != nil {
			return fmt.Errorf("router: subscribe: %w", err)
		}
		if r.sockSub, err = r.nc.ChanSubscribe(r.subject("sockets"), r.sockCh); err != nil {
			return fmt.Errorf("router: subscribe: %w", err)
		}
		if r.onlineSub, err = r.nc.ChanSubscribe(r.subject("online"), r.sockCh); err != nil {
			return fmt.Errorf("router: subscribe: %w", err)
		}
	}
	return r.nc.Flush()
}

func (r *Router) unsubscribeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, subs := range r.hosted {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		delete(r.hosted, id)
	}
	for _, s := range []*nats.Subscription{r.nodeSub, r.nodeInSub, r.gwSub, r.sockSub, r.onlineSub} {
		if s != nil {
			_ = s.Unsubscribe()
		}
	}
}

// host subscribes to a local match's subjects (idempotent).
func (r *Router) host(id string) {
	if !validSubjectToken(id) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.hosted[id]; ok {
		return
	}
	ctl, err := r.nc.ChanSubscribe(r.subject("m", id, "ctl"), r.ctlCh)
	if err != nil {
		r.log.Error("router: subscribe to a match", "match", id, "err", err)
		return
	}
	in, err := r.nc.ChanSubscribe(r.subject("m", id, "in"), r.inCh)
	if err != nil {
		_ = ctl.Unsubscribe()
		r.log.Error("router: subscribe to a match", "match", id, "err", err)
		return
	}
	r.hosted[id] = []*nats.Subscription{ctl, in}
}

// sync subscribes for every local match (not while draining) and drops
// the subscriptions of matches that ended or moved.
func (r *Router) sync() {
	live := map[string]bool{}
	// While draining, matches only leave: subscribing from a list taken
	// before a handoff finished would answer for a match that moved.
	subscribe := !r.draining.Load()
	for _, m := range r.engine.List(match.Filter{}) {
		live[m.ID] = true
		if subscribe {
			r.host(m.ID)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, subs := range r.hosted {
		if !live[id] {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			delete(r.hosted, id)
		}
	}
}

// heartbeat keeps this node's directory record and subscriptions current.
func (r *Router) heartbeat(ctx context.Context) {
	t := time.NewTicker(r.cfg.Heartbeat)
	defer t.Stop()
	for {
		r.sync()
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		err := r.writeMatchList(rctx)
		if err == nil {
			err = r.reg.register(rctx, r.record())
		}
		if err != nil && ctx.Err() == nil {
			r.log.Warn("router: write the node directory record", "err", err)
		} else if err == nil {
			r.Registered.Add(1)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Router) record() NodeRecord {
	rec := NodeRecord{ID: r.cfg.NodeID, Region: r.cfg.Region, Zone: r.cfg.Zone, Modes: r.cfg.Modes,
		MaxMatches: r.cfg.MaxMatches, MaxPlayers: r.cfg.MaxPlayers, CPU: r.cpu.sample(), Renewed: time.Now().UTC(),
		Draining: r.draining.Load()}
	for _, m := range r.engine.List(match.Filter{}) {
		rec.Matches++
		rec.Players += m.Players
		rec.TickMax = max(rec.TickMax, float64(m.TickTime)/float64(time.Millisecond))
	}
	return rec
}

// SetLocal gives the router this process's realtime gateway; call it
// before Run.
func (r *Router) SetLocal(l Local) { r.local = l }
