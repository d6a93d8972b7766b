// Package gamenode keeps the volatile state of a game node's live matches in
// the shared key-value store (Redis at scale, in-process when embedded):
//
//   - each live match's latest snapshot (from its handler's optional
//     match.Snapshotter), written every match.Config.SnapshotEvery ticks and
//     when the match ends, with a TTL;
//   - a directory record per live match (match id -> owning node, mode,
//     label, player count), held as a lease: claimed with a conditional
//     create, renewed every Heartbeat by compare-and-set on its version, and
//     left to expire (3 heartbeats) if the node dies.
//
// This is the ground the scale-out work stands on to find, recover and move
// matches. The node never blocks a match loop: OnSnapshot only records the
// latest snapshot per match, and one writer goroutine (Run) stores them.
package gamenode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/match"
)

// Key prefixes in the key-value store.
const (
	snapshotPrefix  = "match:snap:"
	directoryPrefix = "match:dir:"
)

// Config configures a node.
type Config struct {
	NodeID      string        // this node's name, unique in the cluster
	SnapshotTTL time.Duration // how long a snapshot is kept after its last write
	Heartbeat   time.Duration // directory lease renewal; the lease lasts 3 heartbeats
	MaxPending  int           // matches with a snapshot waiting to be written (the bound)
	Timeout     time.Duration // bound of one flush or heartbeat round
}

func (c *Config) defaults() {
	if c.SnapshotTTL <= 0 {
		c.SnapshotTTL = 10 * time.Minute
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 2 * time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 10_000
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
}

// Matches is what the node needs from the match engine.
type Matches interface {
	List(f match.Filter) []match.Info
	// Abandon stops a match without a word: another node runs it now.
	Abandon(ctx context.Context, id string) error
}

// Record is a directory entry: where a live match runs.
type Record struct {
	MatchID    string    `json:"match_id"`
	Node       string    `json:"node"`
	Mode       string    `json:"mode"`
	Label      string    `json:"label"`
	Players    int       `json:"players"`
	MaxPlayers int       `json:"max_players"`
	Open       bool      `json:"open"`
	Renewed    time.Time `json:"renewed"`
}

// storedSnapshot is the stored form of a match.Snapshot.
type storedSnapshot struct {
	MatchID string            `json:"match_id"`
	Node    string            `json:"node"`
	Mode    string            `json:"mode"`
	Label   string            `json:"label"`
	Tick    uint64            `json:"tick"`
	Players int               `json:"players"`
	Taken   time.Time         `json:"taken"`
	Final   bool              `json:"final"`
	Data    []byte            `json:"data"`
	Params  map[string]string `json:"params,omitempty"`
	Seats   []storedSeat      `json:"seats,omitempty"`
	Created time.Time         `json:"created"`
}

type storedSeat struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	Username  string `json:"username,omitempty"`
	Connected bool   `json:"connected"`
}

// EncodeSnapshot is the stored form of s, written by node.
func EncodeSnapshot(s match.Snapshot, node string) ([]byte, error) {
	seats := make([]storedSeat, len(s.Seats))
	for i, st := range s.Seats {
		seats[i] = storedSeat{UserID: st.Presence.UserID, SessionID: st.Presence.SessionID, Username: st.Presence.Username, Connected: st.Connected}
	}
	return json.Marshal(storedSnapshot{MatchID: s.MatchID, Node: node, Mode: s.Mode, Label: s.Label,
		Tick: s.Tick, Players: s.Players, Taken: s.Taken, Final: s.Final, Data: s.Data,
		Params: s.Params, Seats: seats, Created: s.Created})
}

// DecodeSnapshot reads what EncodeSnapshot wrote, and the node that wrote
// it.
func DecodeSnapshot(b []byte) (match.Snapshot, string, error) {
	var s storedSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return match.Snapshot{}, "", err
	}
	seats := make([]match.SeatState, len(s.Seats))
	for i, st := range s.Seats {
		seats[i] = match.SeatState{Presence: match.Presence{UserID: st.UserID, SessionID: st.SessionID, Username: st.Username}, Connected: st.Connected}
	}
	return match.Snapshot{MatchID: s.MatchID, Mode: s.Mode, Label: s.Label, Tick: s.Tick, Players: s.Players,
		Taken: s.Taken, Data: s.Data, Final: s.Final, Params: s.Params, Seats: seats, Created: s.Created}, s.Node, nil
}

// Node writes snapshots and directory leases for one engine.
type Node struct {
	cfg     Config
	kv      kv.Store
	matches Matches
	log     *slog.Logger

	mu      sync.Mutex
	pending map[string]match.Snapshot // latest unwritten snapshot per match
	wake    chan struct{}             // capacity 1: "there is work"

	// leaseMu serialises every lease operation: Run's heartbeat and
	// releases, and Claim/Release from the router taking matches over.
	leaseMu sync.Mutex
	leases  map[string]uint64   // match id -> directory record version we hold
	ended   map[string]struct{} // matches whose final snapshot is written: never claimed again; Run's goroutine only

	// Counters for metrics and tests.
	SnapshotsWritten, SnapshotsDropped, WriteErrors, LeasesLost, Abandoned atomic.Int64
	Renewals                                                               atomic.Int64 // lease writes (claims and renewals) that held
}

// New returns a node; call Run to start writing, and pass OnSnapshot as the
// engine's match.Config.OnSnapshot.
func New(cfg Config, store kv.Store, matches Matches, log *slog.Logger) *Node {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg, kv: store, matches: matches, log: log,
		pending: map[string]match.Snapshot{}, wake: make(chan struct{}, 1), leases: map[string]uint64{}, ended: map[string]struct{}{}}
}

// OnSnapshot records a snapshot for the writer. It never blocks. Overflow
// rule: a newer snapshot of a match replaces its unwritten older one; a
// snapshot of a match not yet pending is dropped (and counted) when
// MaxPending matches are already waiting, unless it is a final snapshot,
// which is always kept.
func (n *Node) OnSnapshot(s match.Snapshot) {
	n.mu.Lock()
	old, exists := n.pending[s.MatchID]
	switch {
	case exists && old.Final:
		// The final snapshot is the last word on a match.
	case exists, s.Final, len(n.pending) < n.cfg.MaxPending:
		n.pending[s.MatchID] = s
	default:
		n.mu.Unlock()
		if n.SnapshotsDropped.Add(1)%1000 == 1 {
			n.log.Warn("snapshot queue full; dropping snapshots", "match", s.MatchID, "dropped", n.SnapshotsDropped.Load())
		}
		return
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run writes snapshots as they come and renews the directory every
// Heartbeat, until ctx ends; then it writes what is pending one last time
// and releases the leases of matches that are gone (bounded by Timeout),
// and returns. Leases of matches still running are left to expire.
func (n *Node) Run(ctx context.Context) error {
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	n.heartbeat(context.WithoutCancel(ctx))
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.Timeout)
			n.flush(fctx)
			n.leaseMu.Lock()
			n.releaseGone(fctx, n.liveIDs())
			n.leaseMu.Unlock()
			cancel()
			return nil
		case <-n.wake:
			// Writes run to completion (bounded by Timeout) even when ctx
			// ends meanwhile: cancelling stops the loop, not a write.
			n.flush(context.WithoutCancel(ctx))
		case <-t.C:
			n.heartbeat(context.WithoutCancel(ctx))
		}
	}
}

// flush writes every pending snapshot.
func (n *Node) flush(ctx context.Context) {
	n.mu.Lock()
	batch := n.pending
	n.pending = make(map[string]match.Snapshot, len(batch))
	n.mu.Unlock()
	for id, s := range batch {
		data, err := EncodeSnapshot(s, n.cfg.NodeID)
		if err == nil {
			wctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
			_, err = n.kv.Put(wctx, snapshotPrefix+id, data, n.cfg.SnapshotTTL)
			cancel()
		}
		if err != nil {
			n.WriteErrors.Add(1)
			n.log.Error("write match snapshot", "match", id, "tick", s.Tick, "err", err)
			n.requeue(s)
			continue
		}
		n.SnapshotsWritten.Add(1)
		if s.Final {
			n.ended[id] = struct{}{}
			n.leaseMu.Lock()
			n.release(ctx, id)
			n.leaseMu.Unlock()
		}
	}
}

// requeue puts a snapshot whose write failed back, unless a newer one came.
func (n *Node) requeue(s match.Snapshot) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, newer := n.pending[s.MatchID]; !newer {
		n.pending[s.MatchID] = s
	}
}

// heartbeat claims or renews the directory lease of every live match and
// releases those of matches that are gone. A match whose record another
// node holds (it took the match over while this node was cut off from the
// store) is abandoned here: the other copy is the match now (fencing).
func (n *Node) heartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	var lost []string
	n.leaseMu.Lock()
	live := map[string]bool{}
	for _, m := range n.matches.List(match.Filter{}) {
		live[m.ID] = true
		if _, done := n.ended[m.ID]; done {
			continue // ended; the engine has not removed it yet
		}
		if n.renew(ctx, m) {
			lost = append(lost, m.ID)
		}
	}
	n.releaseGone(ctx, live)
	for id := range n.ended {
		if !live[id] {
			delete(n.ended, id)
		}
	}
	n.leaseMu.Unlock()
	for _, id := range lost {
		if err := n.matches.Abandon(ctx, id); err != nil && !errors.Is(err, match.ErrNotFound) {
			n.log.Error("abandon a match another node runs", "match", id, "err", err)
			continue
		}
		n.Abandoned.Add(1)
		n.log.Warn("match abandoned: another node runs it now", "match", id)
	}
}

// renew claims or renews m's lease, with n.leaseMu held. It reports
// whether another node holds m's record: then this node must stop m.
func (n *Node) renew(ctx context.Context, m match.Info) (lost bool) {
	rec, err := json.Marshal(Record{MatchID: m.ID, Node: n.cfg.NodeID, Mode: m.Mode, Label: m.Label, Players: m.Players,
		MaxPlayers: m.MaxPlayers, Open: m.Open, Renewed: time.Now().UTC()})
	if err != nil {
		return false
	}
	key, ttl := directoryPrefix+m.ID, 3*n.cfg.Heartbeat
	ver, held := n.leases[m.ID]
	if held {
		ver, err = n.kv.CompareAndSet(ctx, key, rec, ttl, ver)
		if errors.Is(err, kv.ErrNotFound) {
			held = false // our lease expired unclaimed: claim it again
		}
	}
	if !held {
		ver, err = n.kv.PutIfAbsent(ctx, key, rec, ttl)
	}
	if errors.Is(err, kv.ErrVersionMismatch) || errors.Is(err, kv.ErrExists) {
		return n.settle(ctx, m.ID, key)
	}
	if err != nil {
		n.WriteErrors.Add(1)
		n.log.Error("renew directory lease", "match", m.ID, "err", err)
		return false
	}
	n.leases[m.ID] = ver
	n.Renewals.Add(1)
	return false
}

// settle follows a lease write refused because the record of match id at
// key is not the one n holds, with n.leaseMu held, and reports whether
// another node runs the match now. Its own record at a version it did not
// see (a write that timed out here but was applied) is adopted; a record
// gone meanwhile, or unreadable, is the next heartbeat's.
func (n *Node) settle(ctx context.Context, id, key string) (lost bool) {
	it, err := n.kv.Get(ctx, key)
	var r Record
	switch {
	case errors.Is(err, kv.ErrNotFound):
		delete(n.leases, id)
		return false
	case err != nil:
		n.WriteErrors.Add(1)
		return false
	case json.Unmarshal(it.Value, &r) == nil && r.Node == n.cfg.NodeID:
		n.leases[id] = it.Version
		n.Renewals.Add(1)
		return false
	}
	delete(n.leases, id)
	n.LeasesLost.Add(1)
	n.log.Error("directory lease held by another node", "match", id, "node", r.Node)
	return true
}

func (n *Node) liveIDs() map[string]bool {
	live := map[string]bool{}
	for _, m := range n.matches.List(match.Filter{}) {
		live[m.ID] = true
	}
	return live
}

// releaseGone releases the leases of matches that are not live (leaseMu
// held).
func (n *Node) releaseGone(ctx context.Context, live map[string]bool) {
	for id := range n.leases {
		if !live[id] {
			n.release(ctx, id)
		}
	}
}

// release deletes a match's directory record if this node still holds it
// (leaseMu held). On failure the lease is kept, so the next heartbeat (or
// the last round at shutdown) tries again.
func (n *Node) release(ctx context.Context, id string) {
	if _, held := n.leases[id]; !held {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	if err := n.kv.Delete(dctx, directoryPrefix+id); err != nil {
		n.WriteErrors.Add(1)
		n.log.Error("release directory lease", "match", id, "err", err)
		return
	}
	delete(n.leases, id)
}

// Lookup reads a match's directory record.
func Lookup(ctx context.Context, store kv.Store, matchID string) (Record, error) {
	it, err := store.Get(ctx, directoryPrefix+matchID)
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(it.Value, &r); err != nil {
		return Record{}, fmt.Errorf("gamenode: directory record of %s: %w", matchID, err)
	}
	return r, nil
}

// LoadSnapshot reads a match's latest snapshot and the node that wrote it.
func LoadSnapshot(ctx context.Context, store kv.Store, matchID string) (match.Snapshot, string, error) {
	it, err := store.Get(ctx, snapshotPrefix+matchID)
	if err != nil {
		return match.Snapshot{}, "", err
	}
	s, node, err := DecodeSnapshot(it.Value)
	if err != nil {
		return match.Snapshot{}, "", fmt.Errorf("gamenode: snapshot of %s: %w", matchID, err)
	}
	return s, node, nil
}

// Claim takes the directory lease of a match this node is about to run
// (taken over from a node that died or is draining): a conditional create,
// so of several nodes trying exactly one wins. It returns kv.ErrExists if
// another node holds the lease.
func (n *Node) Claim(ctx context.Context, s match.Snapshot) error {
	rec, err := json.Marshal(Record{MatchID: s.MatchID, Node: n.cfg.NodeID, Mode: s.Mode, Label: s.Label, Players: len(s.Seats),
		Renewed: time.Now().UTC()})
	if err != nil {
		return err
	}
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	ver, err := n.kv.PutIfAbsent(ctx, directoryPrefix+s.MatchID, rec, 3*n.cfg.Heartbeat)
	if err != nil {
		return err
	}
	n.leases[s.MatchID] = ver
	return nil
}

// Release gives up the directory lease of a match at once (a handoff to
// another node, or a claim whose restore failed).
func (n *Node) Release(ctx context.Context, id string) {
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	n.release(ctx, id)
}
