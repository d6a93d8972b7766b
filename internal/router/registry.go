package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/multijuego/multijuego/internal/kv"
)

// The node directory lives in the shared key-value store (Redis or DynamoDB
// at scale, in-process when embedded): one record per game node, written
// every heartbeat with a TTL of three heartbeats (the lease), and one index
// item listing the node ids, since the store has no scan. A node adds itself
// to the index with compare-and-set; whoever adds drops ids whose record
// has expired.

const (
	nodeKeyPrefix = "router:node:"
	indexKey      = "router:nodes"
)

// NodeRecord is a game node as the directory shows it.
type NodeRecord struct {
	ID         string    `json:"id"`
	Region     string    `json:"region,omitempty"`
	Zone       string    `json:"zone,omitempty"`
	Modes      []string  `json:"modes"`
	MaxMatches int       `json:"max_matches"`
	MaxPlayers int       `json:"max_players"`
	Matches    int       `json:"matches"`
	Players    int       `json:"players"`
	TickMax    float64   `json:"tick_max_ms"` // the slowest of its matches' recent tick times, ms
	CPU        float64   `json:"cpu"`         // cores the process used over the last heartbeat
	Draining   bool      `json:"draining,omitempty"`
	Renewed    time.Time `json:"renewed"`
}

// hasRoom reports whether the node takes one more match of mode.
func (n NodeRecord) hasRoom(mode string) bool {
	return !n.Draining && n.Matches < n.MaxMatches && (n.MaxPlayers == 0 || n.Players < n.MaxPlayers) &&
		slices.Contains(n.Modes, mode)
}

// load orders nodes for placement: the fraction of match slots in use,
// then players.
func (n NodeRecord) load() float64 {
	if n.MaxMatches == 0 {
		return 1
	}
	return float64(n.Matches) / float64(n.MaxMatches)
}

type registry struct {
	kv  kv.Store
	ttl time.Duration
}

// register writes the node's record and makes sure the index names it.
func (g registry) register(ctx context.Context, rec NodeRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := g.kv.Put(ctx, nodeKeyPrefix+rec.ID, b, g.ttl); err != nil {
		return err
	}
	return g.index(ctx, func(ids []string) []string {
		if slices.Contains(ids, rec.ID) {
			return nil
		}
		return append(ids, rec.ID)
	})
}

// deregister removes the node's record (a graceful stop).
func (g registry) deregister(ctx context.Context, id string) error {
	if err := g.kv.Delete(ctx, nodeKeyPrefix+id); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	return g.forget(ctx, id)
}

// index applies change to the id list with compare-and-set, retrying on a
// concurrent writer. change returns nil when nothing is to be written.
func (g registry) index(ctx context.Context, change func([]string) []string) error {
	for range 16 {
		var ids []string
		it, err := g.kv.Get(ctx, indexKey)
		switch {
		case errors.Is(err, kv.ErrNotFound):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(it.Value, &ids); err != nil {
				return fmt.Errorf("router: node index: %w", err)
			}
		}
		next := change(slices.Clone(ids))
		if next == nil {
			return nil
		}
		b, _ := json.Marshal(next)
		if it.Version == 0 {
			_, err = g.kv.PutIfAbsent(ctx, indexKey, b, 0)
		} else {
			_, err = g.kv.CompareAndSet(ctx, indexKey, b, 0, it.Version)
		}
		if errors.Is(err, kv.ErrExists) || errors.Is(err, kv.ErrVersionMismatch) || errors.Is(err, kv.ErrNotFound) {
			continue // another node wrote the index meanwhile
		}
		return err
	}
	return errors.New("router: node index: too many concurrent writers")
}

// nodes returns the live node records, sorted by id.
func (g registry) nodes(ctx context.Context) ([]NodeRecord, error) {
	out, _, err := g.read(ctx)
	return out, err
}

// dead returns the ids in the index whose record has expired: nodes that
// stopped without leaving the directory. They stay in the index until a
// survivor has taken their matches over (forget).
func (g registry) dead(ctx context.Context) ([]string, error) {
	_, gone, err := g.read(ctx)
	return gone, err
}

// forget removes a dead node from the index.
func (g registry) forget(ctx context.Context, id string) error {
	return g.index(ctx, func(ids []string) []string {
		i := slices.Index(ids, id)
		if i < 0 {
			return nil
		}
		return slices.Delete(ids, i, i+1)
	})
}

func (g registry) read(ctx context.Context) (live []NodeRecord, gone []string, err error) {
	it, err := g.kv.Get(ctx, indexKey)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var ids []string
	if err := json.Unmarshal(it.Value, &ids); err != nil {
		return nil, nil, fmt.Errorf("router: node index: %w", err)
	}
	for _, id := range ids {
		it, err := g.kv.Get(ctx, nodeKeyPrefix+id)
		if errors.Is(err, kv.ErrNotFound) {
			gone = append(gone, id)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		var rec NodeRecord
		if err := json.Unmarshal(it.Value, &rec); err != nil {
			return nil, nil, fmt.Errorf("router: node record %s: %w", id, err)
		}
		live = append(live, rec)
	}
	sort.Slice(live, func(i, j int) bool { return live[i].ID < live[j].ID })
	return live, gone, nil
}

// place orders the nodes that can take a match of mode in region (any
// region if empty), least loaded first. extra counts matches placed on a
// node since its record was written.
func place(nodes []NodeRecord, mode, region string, extra map[string]int) []NodeRecord {
	var out []NodeRecord
	for _, n := range nodes {
		n.Matches += extra[n.ID]
		if (region == "" || n.Region == region) && n.hasRoom(mode) {
			out = append(out, n)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := out[i].load(), out[j].load(); a != b {
			return a < b
		}
		return out[i].Players < out[j].Players
	})
	return out
}
