package app

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// The records API's cache: a leaderboard page is read once per TTL however
// often it is asked for, a new result shows once the TTL is over, ended
// matches come from the cache, and a running match is always read fresh.
func TestCachedRecords(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	step := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := newCachedRecords(st, cache.NewMemory(cache.MemoryOptions{Now: clock}), nil, 2*time.Second, nil)

	end := func(account string, score int64) string {
		id := uuid.Must(uuid.NewV7()).String()
		ended := time.Now().UTC()
		if _, err := st.ApplyChanges(ctx, []store.Change{store.EndChange(store.MatchEndRecord{
			EventID: uuid.Must(uuid.NewV7()).String(), MatchID: id, Mode: "arena", StartedAt: ended.Add(-time.Minute), EndedAt: ended,
			Results: []store.ResultRecord{{AccountID: account, Placement: 1, Score: score}},
		})}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	id := end("ann", 5)
	top, err := c.LeaderboardTop(ctx, "arena_best_score", time.Now(), 10)
	if err != nil || len(top) != 1 || top[0].AccountID != "ann" {
		t.Fatalf("top = %+v, %v", top, err)
	}
	end("bob", 9)
	if top, _ = c.LeaderboardTop(ctx, "arena_best_score", time.Now(), 10); len(top) != 1 {
		t.Fatalf("within the TTL the cached page is served: %+v", top)
	}
	if top, _ = c.LeaderboardTop(ctx, "arena_best_score", time.Now(), 5); len(top) != 2 {
		t.Fatalf("another limit is another page: %+v", top)
	}
	step(3 * time.Second)
	if top, _ = c.LeaderboardTop(ctx, "arena_best_score", time.Now(), 10); len(top) != 2 || top[0].AccountID != "bob" {
		t.Fatalf("after the TTL: %+v", top)
	}
	if _, err := c.LeaderboardTop(ctx, "no_such_board", time.Now(), 10); err == nil {
		t.Fatal("unknown board: no error")
	}
	if boards, err := c.Leaderboards(ctx); err != nil || len(boards) == 0 {
		t.Fatalf("boards = %+v, %v", boards, err)
	}

	m, err := c.Match(ctx, id)
	if err != nil || !m.Ended() {
		t.Fatalf("match = %+v, %v", m, err)
	}
	if got, ok, _ := c.matches.Get(ctx, id); !ok || got.ID != id || len(got.Results) != 1 {
		t.Fatalf("ended match not cached: %+v %v", got, ok)
	}
	// A running match is not cached: its end shows at once.
	live := uuid.Must(uuid.NewV7()).String()
	if _, err := st.ApplyChanges(ctx, []store.Change{store.StartChange(store.MatchStartRecord{EventID: uuid.Must(uuid.NewV7()).String(),
		MatchID: live, Mode: "arena", StartedAt: time.Now()})}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Match(ctx, live); err != nil || m.Ended() {
		t.Fatalf("live match = %+v, %v", m, err)
	}
	if _, ok, _ := c.matches.Get(ctx, live); ok {
		t.Fatal("a running match was cached")
	}
	if _, err := c.Match(ctx, string(make([]byte, 300))); err == nil {
		t.Fatal("an overlong id: no error")
	}
}
