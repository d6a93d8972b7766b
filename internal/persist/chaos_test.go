package persist_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// TestNoLossNoDuplicates: 100,000 events (50,000 arena matches, started
// and ended) from 4 publishers into a NATS server this test runs, while
// the persistence consumer is stopped and started again several times and
// the NATS server itself is restarted once. Afterwards every match is in
// PostgreSQL once with its results, the per-player totals add up to
// exactly the results published, and the derived data (stats and
// leaderboards) equals a recomputation from the raw results. Ratings are
// left out of that comparison: an Elo rating depends on the order in which
// results are applied, and several publishers and redeliveries do not keep
// one order (RecomputeDerived replays them in end order).
func TestNoLossNoDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	const (
		publishers = 4
		perPub     = 12_500 // matches per publisher: 2 events each
		accounts   = 200
	)
	st := storetest.Postgres(t)
	srv := eventstest.StartServer(t)
	prefix := eventstest.Prefix(t)
	open := func() *events.Bus {
		b, err := events.Open(context.Background(), events.Config{URL: srv.URL(), Prefix: prefix}, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	consumerBus := open()

	// Every match ends within one minute from base, inside one day (so
	// inside one daily and one weekly period); boards are read at now.
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-2 * time.Hour)
	if base.Add(time.Minute).Day() != base.Day() {
		base = base.Add(-2 * time.Minute)
	}
	now := base.Add(30 * time.Second)
	acct := func(i int) string { return fmt.Sprintf("acct-%03d", i) }

	// Publish from several publishers, each on its own connection.
	var (
		wg      sync.WaitGroup
		wantWin = make([]int64, accounts)
		winMu   sync.Mutex
		sample  []string
	)
	pubs := make([]*events.Publisher, publishers)
	for i := range publishers {
		pubs[i] = events.NewPublisher(open(), events.PublisherConfig{Buffer: 200_000, SpoolDir: t.TempDir(), MaxRetryBackoff: 200 * time.Millisecond}, testLog(t))
	}
	for w := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range perPub {
				id := fmt.Sprintf("m-%d-%06d", w, i)
				started := base.Add(time.Duration(w*perPub+i) * time.Millisecond)
				ev, err := events.NewMatchStarted(id, "node", events.MatchStarted{Mode: "arena"})
				if err == nil {
					err = pubs[w].Publish(ev)
				}
				if err != nil {
					t.Errorf("publish start: %v", err)
					return
				}
				a, b := rng.IntN(accounts), rng.IntN(accounts-1)
				if b >= a {
					b++
				}
				sa, sb := rng.Int64N(20), rng.Int64N(20)
				pa, pb := 1, 2
				if sb > sa {
					pa, pb = 2, 1
				}
				ev, err = events.NewMatchEnded(id, "node", events.MatchEnded{Mode: "arena", Reason: "time_limit",
					StartedAt: started, EndedAt: started.Add(time.Second), DurationMs: 1000,
					Results: []events.PlayerResult{{AccountID: acct(a), Placement: pa, Score: sa}, {AccountID: acct(b), Placement: pb, Score: sb}}})
				if err == nil {
					err = pubs[w].Publish(ev)
				}
				if err != nil {
					t.Errorf("publish end: %v", err)
					return
				}
				winMu.Lock()
				if pa == 1 {
					wantWin[a]++
				} else {
					wantWin[b]++
				}
				if i%100 == 0 {
					sample = append(sample, id)
				}
				winMu.Unlock()
			}
		}()
	}

	// Meanwhile: the consumer is killed and restarted, and NATS too.
	c := persist.New(consumerBus, st, persist.Config{MaxWait: 50 * time.Millisecond, Backoff: []time.Duration{100 * time.Millisecond}}, testLog(t))
	run := func(d time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if err := c.Run(ctx); err != nil {
			t.Errorf("consumer: %v", err)
		}
	}
	for i := range 4 {
		run(1500 * time.Millisecond) // killed mid-batch, often
		if i == 1 {
			srv.Stop()
			time.Sleep(time.Second)
			srv.Restart()
		}
	}
	wg.Wait()
	for _, p := range pubs {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := p.Close(ctx); err != nil {
			t.Fatalf("publisher close: %v", err)
		}
		cancel()
		if p.Dropped.Load() != 0 {
			t.Fatalf("publisher dropped %d events", p.Dropped.Load())
		}
	}

	// Drain: the consumer runs until nothing is pending.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		lag, err := c.Lag(context.Background())
		if err == nil && lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag still %d (%v) after 3 minutes", lag, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var pubd, retr, spooled int64
	for _, p := range pubs {
		pubd, retr, spooled = pubd+p.Published.Load(), retr+p.Retried.Load(), spooled+p.Spooled.Load()
	}
	var inStream uint64
	if s, err := consumerBus.JetStream().Stream(context.Background(), consumerBus.EventsStream()); err == nil {
		if info, err := s.Info(context.Background()); err == nil {
			inStream = info.State.Msgs
		}
	}
	t.Logf("published %d (retried %d, spooled %d), in the stream %d; processed %d, duplicates %d, retried %d, dead-lettered %d",
		pubd, retr, spooled, inStream, c.Processed.Load(), c.Duplicates.Load(), c.Retried.Load(), c.DeadLettered.Load())
	if c.DeadLettered.Load() != 0 {
		t.Fatalf("%d events dead-lettered", c.DeadLettered.Load())
	}

	// Exactly once: every player's games and wins add up to what was
	// published (a lost result lowers them, a double one raises them).
	bg := context.Background()
	var games int64
	for i := range accounts {
		ps, err := st.PlayerStats(bg, acct(i))
		if err != nil {
			t.Fatal(err)
		}
		var all store.PlayerStatsRecord
		for _, r := range ps {
			if r.Mode == "" {
				all = r
			}
		}
		games += all.Games
		if all.Wins != wantWin[i] {
			t.Errorf("%s: %d wins stored, %d published", acct(i), all.Wins, wantWin[i])
		}
	}
	if want := int64(2 * publishers * perPub); games != want {
		t.Fatalf("%d games stored in all, %d published", games, want)
	}
	for _, id := range sample {
		m, err := st.Match(bg, id)
		if err != nil || !m.Ended() || m.StartedAt.IsZero() || len(m.Results) != 2 {
			t.Fatalf("match %s: %+v %v", id, m, err)
		}
	}

	// Derived data equals a recomputation (ratings aside, see above).
	derived := func() (map[string][]store.PlayerStatsRecord, map[string][]string) {
		stats := map[string][]store.PlayerStatsRecord{}
		for i := range accounts {
			ps, err := st.PlayerStats(bg, acct(i))
			if err != nil {
				t.Fatal(err)
			}
			for j := range ps {
				ps[j].Rating, ps[j].UpdatedAt = 0, time.Time{}
			}
			stats[acct(i)] = ps
		}
		boards := map[string][]string{}
		for _, b := range []string{"global_wins", "arena_best_score", "arena_weekly_score"} {
			top, err := st.LeaderboardTop(bg, b, now, 1000)
			if err != nil {
				t.Fatal(err)
			}
			var rows []string
			for _, r := range top {
				rows = append(rows, fmt.Sprintf("%s=%d", r.AccountID, r.Value))
			}
			sort.Strings(rows)
			boards[b] = rows
		}
		return stats, boards
	}
	gotStats, gotBoards := derived()
	if err := st.RecomputeDerived(bg); err != nil {
		t.Fatal(err)
	}
	wantStats, wantBoards := derived()
	for a, w := range wantStats {
		if fmt.Sprint(gotStats[a]) != fmt.Sprint(w) {
			t.Errorf("stats of %s: %v, recomputed %v", a, gotStats[a], w)
		}
	}
	for b, w := range wantBoards {
		if fmt.Sprint(gotBoards[b]) != fmt.Sprint(w) {
			t.Errorf("board %s differs from its recomputation", b)
		}
	}
}
