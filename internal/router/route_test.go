package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/gamenode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/router"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// gateway is a recording realtime gateway: frames delivered by the router
// from other nodes, frames sent locally, seat closes and input refusals.
type gateway struct {
	matchtest.Sender
	mu        sync.Mutex
	delivered map[string][]*match.Frame // session -> frames, in order
	refused   []error
	replaced  []string // "account session" of Replace calls
}

func newGateway() *gateway { return &gateway{delivered: map[string][]*match.Frame{}} }

func (g *gateway) Deliver(sessions []string, frame []byte) int {
	f, err := match.ParseFrame(slices.Clone(frame))
	if err != nil {
		panic(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range sessions {
		g.delivered[s] = append(g.delivered[s], f)
	}
	return len(sessions)
}

func (g *gateway) InputRefused(sessionID string, op match.OpCode, err error) {
	g.mu.Lock()
	g.refused = append(g.refused, err)
	g.mu.Unlock()
}

func (g *gateway) Replace(account, session string, opened time.Time) {
	g.mu.Lock()
	g.replaced = append(g.replaced, account+" "+session)
	g.mu.Unlock()
}

// Online answers with one player per Replace call seen, as JSON.
func (g *gateway) Online(limit int) (int, json.RawMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ps := make([]map[string]string, 0, len(g.replaced))
	for _, r := range g.replaced[:min(limit, len(g.replaced))] {
		ps = append(ps, map[string]string{"account_id": r})
	}
	b, _ := json.Marshal(ps)
	return len(g.replaced), b
}

func (g *gateway) replacements() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.replaced)
}

func (g *gateway) frames(session string) []*match.Frame {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.delivered[session])
}

func (g *gateway) refusals() []error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.refused)
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type cluster struct {
	t      testing.TB
	srv    *eventstest.Server
	store  kv.Store
	gw     *router.Router // gateway-only process
	gwSide *gateway
	node   *router.Router // the first game-only process
	engine *match.Engine
	nodes  map[string]*gameNode
}

// gameNode is a game-only process: engine, leases (gamenode) and router.
type gameNode struct {
	engine *match.Engine
	router *router.Router
	stop   context.CancelFunc // a graceful stop: the router drains
	done   chan struct{}
}

// startCluster runs a gateway-only router and a game-only router (with a
// real engine running tic-tac-toe) on a private NATS server, sharing one
// key-value store, as two processes would. tune, if any, adjusts the game
// node's engine configuration.
func startCluster(t testing.TB, maxMatches int, tune ...func(*match.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, srv: eventstest.StartServer(t), store: kv.NewMemory(kv.MemoryOptions{}), gwSide: newGateway(), nodes: map[string]*gameNode{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	c.gw, err = router.New(router.Config{NodeID: "gw1", Heartbeat: 100 * time.Millisecond}, router.Deps{Conn: c.conn(), KV: c.store, Local: c.gwSide})
	if err != nil {
		t.Fatal(err)
	}
	go func() { defer close(done); _ = c.gw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	n := c.startNode("node1", maxMatches, tune...)
	c.node, c.engine = n.router, n.engine
	return c
}

func (c *cluster) conn() *nats.Conn {
	nc, err := nats.Connect(c.srv.URL())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// startNode starts a game node and waits until the gateway sees it.
func (c *cluster) startNode(id string, maxMatches int, tune ...func(*match.Config)) *gameNode {
	t := c.t
	t.Helper()
	relay := &relay{}
	var leases *gamenode.Node
	cfg := match.Config{Sender: relay, MaxMatches: maxMatches, DisconnectGrace: time.Second,
		SnapshotEvery: 1, OnSnapshot: func(s match.Snapshot) { leases.OnSnapshot(s) }}
	for _, f := range tune {
		f(&cfg)
	}
	engine, err := match.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Register(tictactoe.Mode, tictactoe.New); err != nil {
		t.Fatal(err)
	}
	if err := engine.Register(idleMode, func() match.Handler { return idle{} }); err != nil {
		t.Fatal(err)
	}
	leases = gamenode.New(gamenode.Config{NodeID: id, Heartbeat: 100 * time.Millisecond}, c.store, engine, nil)
	r, err := router.New(router.Config{NodeID: id, Modes: []string{tictactoe.Mode, idleMode}, MaxMatches: maxMatches, Heartbeat: 100 * time.Millisecond},
		router.Deps{Conn: c.conn(), KV: c.store, Engine: engine, Leases: leases})
	if err != nil {
		t.Fatal(err)
	}
	relay.to = r
	ctx, cancel := context.WithCancel(context.Background())
	n := &gameNode{engine: engine, router: r, stop: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	go func() { defer wg.Done(); _ = leases.Run(ctx) }()
	go func() { wg.Wait(); close(n.done) }()
	t.Cleanup(func() {
		cancel()
		<-n.done
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = engine.Shutdown(sctx)
	})
	waitFor(t, "the game node in the directory", func() bool {
		nodes, err := c.gw.Nodes(context.Background())
		return err == nil && slices.ContainsFunc(nodes, func(n router.NodeRecord) bool { return n.ID == id })
	})
	c.nodes[id] = n
	return n
}

// idle is a mode that takes every input and answers nothing, so that a
// benchmark of the input path measures the path alone. It counts the
// inputs its matches consumed in idleConsumed.
type idle struct{}

const idleMode = "idle"

var idleConsumed atomic.Int64

func (idle) Init(*match.Dispatcher, match.Params) (match.Settings, error) {
	return match.Settings{TickRate: 128, MaxPlayers: 8}, nil
}
func (idle) JoinAttempt(*match.Dispatcher, match.Presence, map[string]string) error { return nil }
func (idle) Join(*match.Dispatcher, match.Presence)                                 {}
func (idle) Leave(*match.Dispatcher, match.Presence, match.Reason)                  {}
func (idle) Loop(_ *match.Dispatcher, in []match.Input)                             { idleConsumed.Add(int64(len(in))) }
func (idle) Terminate(d *match.Dispatcher, _ time.Duration)                         { _ = d.End(match.Results{}) }

// relay lets the engine be built before the router that is its Sender.
type relay struct{ to match.Sender }

func (r *relay) Send(p match.Presence, f *match.Frame) bool { return r.to.Send(p, f) }
func (r *relay) Close(p match.Presence, id string, why match.Reason) {
	r.to.Close(p, id, why)
}

func TestMatchAcrossProcesses(t *testing.T) {
	c := startCluster(t, 10)
	ctx := context.Background()
	id, err := c.gw.Create(ctx, tictactoe.Mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.engine.Get(id); !ok {
		t.Fatal("the match was not placed on the game node")
	}
	if info, ok := c.gw.Get(id); !ok || info.Mode != tictactoe.Mode {
		t.Fatalf("Get through the router: %+v %v", info, ok)
	}
	if list := c.gw.List(match.Filter{OpenOnly: true}); len(list) != 1 || list[0].ID != id {
		t.Fatalf("List through the router: %+v", list)
	}
	x := match.Presence{UserID: "ux", SessionID: c.gw.SessionPrefix() + "sx", Username: "x"}
	o := match.Presence{UserID: "uo", SessionID: c.gw.SessionPrefix() + "so", Username: "o"}
	for _, p := range []match.Presence{x, o} {
		if err := c.gw.Join(ctx, id, p, nil); err != nil {
			t.Fatalf("join %s: %v", p.UserID, err)
		}
	}
	if err := c.gw.Join(ctx, id, match.Presence{UserID: "third", SessionID: "gw1/s3"}, nil); !errors.Is(err, match.ErrMatchFull) {
		t.Fatalf("a third join: got %v, want ErrMatchFull", err)
	}
	waitFor(t, "the playing state on both sockets", func() bool {
		return len(c.gwSide.frames(x.SessionID)) > 0 && len(c.gwSide.frames(o.SessionID)) > 0
	})
	// X moves: the input crosses NATS, the new state comes back to both.
	before := len(c.gwSide.frames(o.SessionID))
	if err := c.gw.Input(id, x, tictactoe.OpMove, []byte{4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the state after X's move", func() bool { return len(c.gwSide.frames(o.SessionID)) > before })
	last := c.gwSide.frames(o.SessionID)
	if f := last[len(last)-1]; f.Op() != tictactoe.OpState || f.MatchID() != id {
		t.Fatalf("last frame: op %d match %s", f.Op(), f.MatchID())
	}
	// An op code the game does not take is refused on the node and the
	// refusal comes back to the gateway.
	if err := c.gw.Input(id, x, 9, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal", func() bool { return len(c.gwSide.refusals()) == 1 })
	if err := c.gwSide.refusals()[0]; !errors.Is(err, match.ErrUnknownOp) {
		t.Fatalf("refusal: got %v, want ErrUnknownOp", err)
	}
	// Leaving and ending close the seats on the gateway (tic-tac-toe
	// may end the match itself when a player leaves).
	if err := c.gw.Leave(context.Background(), id, o); err != nil {
		t.Fatal(err)
	}
	if err := c.gw.End(ctx, id, "test over"); err != nil && !errors.Is(err, match.ErrNotFound) {
		t.Fatal(err)
	}
	waitFor(t, "both seats closed", func() bool { return len(c.gwSide.Closed()) == 2 })
	waitFor(t, "the match gone", func() bool { _, ok := c.gw.Get(id); return !ok })
	if err := c.gw.Join(ctx, id, x, nil); !errors.Is(err, match.ErrNotFound) {
		t.Fatalf("join an ended match: got %v, want ErrNotFound", err)
	}
}

func TestBroadcastCrossesOncePerGateway(t *testing.T) {
	c := startCluster(t, 10)
	ctx := context.Background()
	id, err := c.gw.Create(ctx, tictactoe.Mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := match.Presence{UserID: "ux", SessionID: "gw1/sx"}
	o := match.Presence{UserID: "uo", SessionID: "gw1/so"}
	for _, p := range []match.Presence{x, o} {
		if err := c.gw.Join(ctx, id, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "states", func() bool { return len(c.gwSide.frames(o.SessionID)) > 0 })
	// The first input goes on the match's subject, and the node tells the
	// gateway where the match runs; later ones go in the node's batch.
	if err := c.gw.Input(id, x, tictactoe.OpMove, []byte{0}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "X's move", func() bool { return lastState(t, c.gwSide, o.SessionID).Moves == 1 })
	time.Sleep(20 * time.Millisecond) // the hint's batch is out
	sent := c.node.Forwarded.Load()
	before := len(c.gwSide.frames(o.SessionID))
	if err := c.gw.Input(id, o, tictactoe.OpMove, []byte{1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the state after the move", func() bool {
		return len(c.gwSide.frames(o.SessionID)) > before && len(c.gwSide.frames(x.SessionID)) > before
	})
	// One state for two players on one gateway: one NATS message.
	if n := c.node.Forwarded.Load() - sent; n != 1 {
		t.Fatalf("messages from the game node for one broadcast to 2 players: got %d, want 1", n)
	}
}

func TestPlacementErrors(t *testing.T) {
	c := startCluster(t, 1)
	ctx := context.Background()
	if _, err := c.gw.Create(ctx, "no-such-mode", nil); !errors.Is(err, match.ErrUnknownMode) {
		t.Fatalf("unknown mode: got %v, want ErrUnknownMode", err)
	}
	if _, err := c.gw.Create(ctx, tictactoe.Mode, match.Params{"region": "mars"}); !errors.Is(err, router.ErrNoNode) {
		t.Fatalf("a region with no node: got %v, want ErrNoNode", err)
	}
	if _, err := c.gw.Create(ctx, tictactoe.Mode, nil); err != nil {
		t.Fatal(err)
	}
	_, err := c.gw.Create(ctx, tictactoe.Mode, nil)
	if !errors.Is(err, router.ErrNoNode) || !errors.Is(err, match.ErrTooManyMatches) {
		t.Fatalf("every node full: got %v, want ErrNoNode wrapping ErrTooManyMatches", err)
	}
	if err := c.gw.Join(ctx, "0190c0de-0000-7000-8000-000000000000", match.Presence{UserID: "u", SessionID: "gw1/s"}, nil); !errors.Is(err, match.ErrNotFound) {
		t.Fatalf("join a match nobody hosts: got %v, want ErrNotFound", err)
	}
	if err := c.gw.Join(ctx, "bad.subject.>", match.Presence{UserID: "u", SessionID: "gw1/s"}, nil); !errors.Is(err, match.ErrNotFound) {
		t.Fatalf("join with a match id that is no subject token: got %v, want ErrNotFound", err)
	}
}

// TestDrainHandsMatchesOver: a game node that stops hands its live
// matches to another node between two ticks; players on the gateway keep
// their seats and their sockets and the game goes on where it was.
func TestDrainHandsMatchesOver(t *testing.T) {
	c := startCluster(t, 10)
	ctx := context.Background()
	var ids []string
	for range 3 {
		id, err := c.gw.Create(ctx, tictactoe.Mode, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	x := match.Presence{UserID: "ux", SessionID: "gw1/sx"}
	o := match.Presence{UserID: "uo", SessionID: "gw1/so"}
	for _, p := range []match.Presence{x, o} {
		if err := c.gw.Join(ctx, ids[0], p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.gw.Input(ids[0], x, tictactoe.OpMove, []byte{4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "X's move", func() bool { return lastState(t, c.gwSide, o.SessionID).Moves == 1 })

	second := c.startNode("node2", 10)
	stopFirst(t, c) // SIGTERM: node1 drains
	for _, id := range ids {
		if _, ok := second.engine.Get(id); !ok {
			t.Fatalf("match %s was not handed over", id)
		}
	}
	if got := c.node.Moved.Load(); got != 3 {
		t.Fatalf("moved: got %d, want 3", got)
	}
	if len(c.gwSide.Closed()) != 0 {
		t.Fatalf("players were closed by the handover: %+v", c.gwSide.Closed())
	}
	// O plays on the new node through the same gateway (the gateway
	// learnt from the new node that the match runs there).
	waitFor(t, "the gateway to learn the new host", func() bool { return c.gw.Host(ids[0]) == "node2" })
	if err := c.gw.Input(ids[0], o, tictactoe.OpMove, []byte{0}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "O's move on the new node", func() bool {
		st := lastState(t, c.gwSide, x.SessionID)
		return st.Moves == 2 && st.Board[4] == 'X' && st.Board[0] == 'O'
	})
}

// stopFirst stops node1 the way SIGTERM does and waits for its drain.
func stopFirst(t *testing.T, c *cluster) {
	t.Helper()
	c.nodes["node1"].stop()
	select {
	case <-c.nodes["node1"].done:
	case <-time.After(15 * time.Second):
		t.Fatal("node1 did not stop")
	}
}

func lastState(t *testing.T, g *gateway, session string) tictactoe.State {
	t.Helper()
	fs := g.frames(session)
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Op() == tictactoe.OpState {
			var st tictactoe.State
			if err := json.Unmarshal(fs[i].Payload(), &st); err != nil {
				t.Fatal(err)
			}
			return st
		}
	}
	return tictactoe.State{}
}
