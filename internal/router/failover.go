package router

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/multijuego/multijuego/internal/gamenode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/match"
)

// Matches outlive their node.
//
// Crash: every game node writes, each heartbeat, the list of matches it
// hosts (kept as long as snapshots are). A node whose directory record has
// expired is dead; every other game node then goes through its list: for
// each match whose lease has lapsed it claims the lease (a conditional
// create: exactly one node wins), loads the last snapshot and restores the
// match; gateways need not be told, since requests and inputs go to the
// match's subjects, which the new host subscribes to. A match that cannot
// be restored (no snapshot, a handler without Snapshotter, a Restore
// error) is ended with a recorded reason (Deps.OnLost) instead of staying
// "started". When the list is done the dead node leaves the directory.
//
// Drain: a node that stops (or is asked to drain) marks itself draining
// (placement skips it), then hands each live match over at a tick
// boundary: Engine.Handoff, lease released, the snapshot sent to the least
// loaded other node, which claims the lease and restores it. A match no
// node takes stays and ends with the engine's shutdown.

const matchListPrefix = "router:node-matches:"

// Leases is the game node's hold on its matches' directory records
// (*gamenode.Node).
type Leases interface {
	Claim(ctx context.Context, s match.Snapshot) error
	Release(ctx context.Context, id string)
}

// Reasons recorded for matches that could not be taken over.
const (
	ReasonNodeLost      = "node_lost"      // its node died and left no snapshot to restore, or died as the match ended (endAgain)
	ReasonRestoreFailed = "restore_failed" // the snapshot could not be restored
)

type matchList struct {
	Node    string        `json:"node"`
	Matches []listedMatch `json:"matches"`
}

// listedMatch is enough to record a match as lost when it left no
// snapshot.
type listedMatch struct {
	ID      string    `json:"id"`
	Mode    string    `json:"mode"`
	Created time.Time `json:"created"`
}

// writeMatchList records the matches this node hosts, for whoever takes
// them over if it dies.
func (r *Router) writeMatchList(ctx context.Context) error {
	r.listMu.Lock() // the list is taken and written in one go: an older one never overwrites a newer
	defer r.listMu.Unlock()
	var ms []listedMatch
	for _, m := range r.engine.List(match.Filter{}) {
		ms = append(ms, listedMatch{ID: m.ID, Mode: m.Mode, Created: m.Created})
	}
	b, _ := json.Marshal(matchList{Node: r.cfg.NodeID, Matches: ms})
	_, err := r.reg.kv.Put(ctx, matchListPrefix+r.cfg.NodeID, b, r.cfg.ListTTL)
	return err
}

// listNow writes the match list at once, not at the next heartbeat, after
// this node took a match: if it dies before the heartbeat, the others find
// the match there. It writes the whole list (one key-value write per new
// match, of a size that grows with the node's matches).
func (r *Router) listNow(ctx context.Context) {
	if err := r.writeMatchList(ctx); err != nil {
		r.log.Warn("router: write the match list", "err", err)
	}
}

// recoverDead takes over the matches of every dead node in the directory.
func (r *Router) recoverDead(ctx context.Context) {
	dead, err := r.reg.dead(ctx)
	if err != nil {
		r.log.Warn("router: read the node directory", "err", err)
		return
	}
	for _, d := range dead {
		if d == r.cfg.NodeID {
			continue // our own record lapsed (a stall): the heartbeat writes it again
		}
		if r.recoverNode(ctx, d) {
			_ = r.reg.kv.Delete(ctx, matchListPrefix+d)
			_ = r.reg.forget(ctx, d)
			r.log.Info("router: dead node's matches taken over", "node", d)
		}
	}
}

// recoverNode goes through a dead node's matches; it reports whether none
// is left to take over.
func (r *Router) recoverNode(ctx context.Context, dead string) bool {
	it, err := r.reg.kv.Get(ctx, matchListPrefix+dead)
	if errors.Is(err, kv.ErrNotFound) {
		return true
	}
	if err != nil {
		return false
	}
	var list matchList
	if err := json.Unmarshal(it.Value, &list); err != nil {
		r.log.Error("router: a dead node's match list is unreadable", "node", dead, "err", err)
		return true
	}
	// Survivors go through the list in different orders, so they share
	// the work instead of racing for the same match.
	rand.Shuffle(len(list.Matches), func(i, j int) { list.Matches[i], list.Matches[j] = list.Matches[j], list.Matches[i] })
	done := true
	for _, m := range list.Matches {
		if !r.takeOver(ctx, m, dead) {
			done = false
		}
	}
	return done
}

// takeOver restores one match of a dead node here if its lease has lapsed
// and nobody else has claimed it. It reports whether the match needs no
// more work (restored here or elsewhere, ended, or recorded as lost).
func (r *Router) takeOver(ctx context.Context, m listedMatch, dead string) bool {
	id := m.ID
	rec, err := gamenode.Lookup(ctx, r.reg.kv, id)
	switch {
	case err == nil:
		return rec.Node != dead // still the dead node's lease: wait for it to lapse
	case !errors.Is(err, kv.ErrNotFound):
		return false
	}
	snap, _, err := gamenode.LoadSnapshot(ctx, r.reg.kv, id)
	switch {
	case errors.Is(err, kv.ErrNotFound):
		snap = match.Snapshot{MatchID: id, Mode: m.Mode, Created: m.Created}
	case err != nil:
		return false
	case snap.Final:
		r.endAgain(snap)
		return true
	}
	if err := r.leases.Claim(ctx, snap); err != nil {
		return errors.Is(err, kv.ErrExists) // another node won the claim
	}
	if snap.Data == nil {
		r.lost(snap, ReasonNodeLost, errors.New("no snapshot"))
		r.leases.Release(ctx, id)
		return true
	}
	if err := r.engine.Restore(ctx, snap); err != nil {
		r.lost(snap, ReasonRestoreFailed, err)
		r.leases.Release(ctx, id)
		return true
	}
	r.host(id)
	r.listNow(ctx)
	r.announce(snap)
	r.Recovered.Add(1)
	r.log.Info("router: match taken over from a dead node", "match", id, "from", dead, "tick", snap.Tick)
	return true
}

// endAgain publishes the end of a match that ended on a node which then
// died: its match.ended may not have reached the queue before the node
// did. The hook makes the event id the node made (events.StableID of the
// match, its creation time and the type), so if the real end went out, the
// queue (duplicate window) and persistence (event ids, first end wins)
// drop this one; if it did not, the match ends as node_lost, without
// results, instead of staying "started".
func (r *Router) endAgain(s match.Snapshot) {
	r.log.Info("router: a dead node's match had ended; its end is published again in case it was lost", "match", s.MatchID)
	if r.onLost != nil {
		r.onLost(s, ReasonNodeLost)
	}
}

func (r *Router) lost(s match.Snapshot, reason string, err error) {
	r.Lost.Add(1)
	r.log.Error("router: a dead node's match cannot be restored; ending it", "match", s.MatchID, "reason", reason, "err", err)
	if r.onLost != nil {
		r.onLost(s, reason)
	}
}

// --- drain ---------------------------------------------------------------------

// ErrUnknownNode is returned by DrainNode for a node that does not answer.
var ErrUnknownNode = errors.New("router: no such game node")

// DrainNode asks game node id (this one or another) to drain: it stops
// taking matches and hands its live ones over, in the background; the
// node keeps running, draining, until it is stopped.
func (r *Router) DrainNode(ctx context.Context, id string) error {
	if !ValidNodeID(id) {
		return ErrUnknownNode
	}
	if id == r.cfg.NodeID && r.engine != nil {
		r.drainLater()
		return nil
	}
	_, err := r.call(ctx, r.subject("n", id, "ctl"), request{Op: opDrain})
	if errors.Is(err, match.ErrNotFound) {
		return ErrUnknownNode
	}
	return err
}

// drainLater starts Drain on a goroutine that Run waits for, unless the
// node is draining already or stopping.
func (r *Router) drainLater() {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.bgClosed || r.draining.Load() {
		return
	}
	r.draining.Store(true)
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
		defer cancel()
		r.Drain(ctx)
	}()
}

// Drain stops placement on this node and hands every live match over to
// other nodes. Matches no node takes stay here. It returns the number moved.
func (r *Router) Drain(ctx context.Context) int {
	if r.engine == nil {
		return 0
	}
	r.draining.Store(true)
	if err := r.reg.register(ctx, r.record()); err != nil {
		r.log.Warn("router: mark this node draining", "err", err)
	}
	live := r.engine.List(match.Filter{})
	work := make(chan match.Info)
	var moved int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(4, len(live)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				if err := r.move(ctx, m); err != nil {
					r.log.Warn("router: match not handed over; it ends here", "match", m.ID, "err", err)
					continue
				}
				mu.Lock()
				moved++
				mu.Unlock()
			}
		}()
	}
	for _, m := range live {
		work <- m
	}
	close(work)
	wg.Wait()
	r.log.Info("router: drained", "moved", moved, "of", len(live))
	return moved
}

// move hands one match over to the least loaded other node with room.
func (r *Router) move(ctx context.Context, m match.Info) error {
	nodes, err := r.reg.nodes(ctx)
	if err != nil {
		return err
	}
	var others []NodeRecord
	for _, n := range nodes {
		if n.ID != r.cfg.NodeID {
			others = append(others, n)
		}
	}
	targets := place(others, m.Mode, "", r.placedCounts())
	if len(targets) == 0 {
		return ErrNoNode
	}
	start := time.Now()
	snap, err := r.engine.Handoff(ctx, m.ID)
	if err != nil {
		return err
	}
	r.unhost(m.ID)
	r.leases.Release(ctx, m.ID)
	enc, err := gamenode.EncodeSnapshot(snap, r.cfg.NodeID)
	if err != nil {
		return r.keep(ctx, snap, err)
	}
	for i, n := range targets {
		if i == 3 {
			break
		}
		r.notePlaced(n.ID)
		if _, err = r.call(ctx, r.subject("n", n.ID, "ctl"), request{Op: opAdopt, Snapshot: enc}); err == nil {
			r.Moved.Add(1)
			r.log.Debug("router: match handed over", "match", m.ID, "to", n.ID, "took", time.Since(start))
			return nil
		}
	}
	return r.keep(ctx, snap, err)
}

// keep restores a match here after no node took it.
func (r *Router) keep(ctx context.Context, snap match.Snapshot, cause error) error {
	if err := r.leases.Claim(ctx, snap); err != nil {
		r.log.Error("router: reclaim a match nobody took", "match", snap.MatchID, "err", err)
	}
	if err := r.engine.Restore(ctx, snap); err != nil {
		r.lost(snap, ReasonRestoreFailed, err)
		r.leases.Release(ctx, snap.MatchID)
		return err
	}
	r.host(snap.MatchID)
	r.listNow(ctx)
	r.announce(snap)
	return cause
}

// adopt restores a match another node handed over.
func (r *Router) adopt(ctx context.Context, enc []byte) error {
	if r.draining.Load() {
		return match.ErrShuttingDown
	}
	snap, _, err := gamenode.DecodeSnapshot(enc)
	if err != nil {
		return err
	}
	if err := r.leases.Claim(ctx, snap); err != nil {
		return err
	}
	if err := r.engine.Restore(ctx, snap); err != nil {
		r.leases.Release(ctx, snap.MatchID)
		return err
	}
	r.host(snap.MatchID)
	r.listNow(ctx)
	r.announce(snap)
	return nil
}

// announce tells the gateways of a match's players that it now runs here,
// so their inputs stop going to the node it left (which may be dead).
func (r *Router) announce(snap match.Snapshot) {
	told := map[string]bool{}
	for _, st := range snap.Seats {
		gw := r.gatewayOf(st.Presence.SessionID)
		if gw != "" && !told[gw] {
			told[gw] = true
			r.sendHost(st.Presence, snap.MatchID, r.cfg.NodeID)
		}
	}
}

// unhost drops a match's subscriptions (it moved away).
func (r *Router) unhost(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.hosted[id] {
		_ = s.Unsubscribe()
	}
	delete(r.hosted, id)
}

// moving reports whether a match that answered no request is live, so
// the request is worth trying again: its lease is held (it is being
// restored somewhere), or it has a snapshot that is not its last. The
// second covers a match between two nodes after its lease is released: a
// handoff releases it before the new node claims it, and a crashed node's
// lease lapses before a survivor claims it.
func (r *Router) moving(ctx context.Context, id string) bool {
	if _, err := gamenode.Lookup(ctx, r.reg.kv, id); err == nil {
		return true
	}
	s, _, err := gamenode.LoadSnapshot(ctx, r.reg.kv, id)
	return err == nil && !s.Final
}
