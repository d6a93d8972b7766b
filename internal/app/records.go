package app

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/store"
)

// endedMatchTTL is how long an ended match's record stays cached: it never
// changes once ended.
const endedMatchTTL = 10 * time.Minute

// maxCachedID: longer ids (never valid ones) skip the cache.
const maxCachedID = 128

// cachedRecords is the records read API's store with its hot reads behind
// the cache: leaderboard pages and the list of boards for ttl (every
// player asks for the same top N; a page is read from the database once per
// ttl per cache, and may be up to ttl stale, also across a daily or weekly
// reset), and ended matches (immutable). A player's history, match events
// and around-me pages go to the database.
type cachedRecords struct {
	*store.Store
	ttl     time.Duration
	top     *cache.Typed[[]store.RankedRecord]
	boards  *cache.Typed[[]store.Leaderboard]
	matches *cache.Typed[store.MatchRecord]
}

func newCachedRecords(st *store.Store, b cache.Backend, m *cache.Metrics, ttl time.Duration, log *slog.Logger) *cachedRecords {
	opts := func(name string) cache.TypedOptions {
		return cache.TypedOptions{Metrics: m, Name: name, Logger: log}
	}
	return &cachedRecords{
		Store:   st,
		ttl:     ttl,
		top:     cache.NewTyped[[]store.RankedRecord](b, "lbtop", 1, opts("leaderboard_top")),
		boards:  cache.NewTyped[[]store.Leaderboard](b, "lbs", 1, opts("leaderboards")),
		matches: cache.NewTyped[store.MatchRecord](b, "match", 1, opts("match_record")),
	}
}

// LeaderboardTop serves a board's top limit from the cache.
func (c *cachedRecords) LeaderboardTop(ctx context.Context, boardID string, now time.Time, limit int) ([]store.RankedRecord, error) {
	if len(boardID) > maxCachedID {
		return c.Store.LeaderboardTop(ctx, boardID, now, limit) // no such board; not worth a key
	}
	return c.top.GetOrLoad(ctx, boardID+"/"+strconv.Itoa(limit), c.ttl, func(ctx context.Context) ([]store.RankedRecord, error) {
		return c.Store.LeaderboardTop(ctx, boardID, now, limit)
	})
}

// Leaderboards serves the list of boards from the cache.
func (c *cachedRecords) Leaderboards(ctx context.Context) ([]store.Leaderboard, error) {
	return c.boards.GetOrLoad(ctx, "all", c.ttl, c.Store.Leaderboards)
}

// Match serves ended matches from the cache; a running match is read from
// the database every time (its end is coming).
func (c *cachedRecords) Match(ctx context.Context, id string) (store.MatchRecord, error) {
	if len(id) > maxCachedID {
		return c.Store.Match(ctx, id)
	}
	if m, ok, err := c.matches.Get(ctx, id); err == nil && ok {
		return m, nil
	}
	m, err := c.Store.Match(ctx, id)
	if err == nil && m.Ended() {
		_ = c.matches.Set(ctx, id, m, endedMatchTTL) // logged and counted by the cache
	}
	return m, err
}
