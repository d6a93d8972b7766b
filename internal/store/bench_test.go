package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// Throughput of match results: BenchmarkApplyChanges applies batches of 500
// match-ended events (arena, 2 players drawn from 10,000 accounts: results,
// stats of 2 modes and 3 leaderboards per player); BenchmarkRawInsert writes
// only the same match and result rows with plain multi-row INSERTs in one
// transaction per batch, the floor any durable write of the results pays.
// Both report events/s.
//
//	go test ./internal/store -run '^$' -bench 'ApplyChanges|RawInsert' -benchtime 40x -count 3

const (
	benchBatch    = 500
	benchAccounts = 10000
)

type benchEnv struct {
	s   *store.Store
	raw *sql.DB // a second pool on the same database, for the raw inserts
}

func benchEngines(b *testing.B, fn func(*testing.B, benchEnv)) {
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "bench.db")
		s, err := store.Open(context.Background(), store.Options{URL: "sqlite://" + path})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(context.Background()); err != nil {
			b.Fatal(err)
		}
		// The store's writer settings: WAL, synchronous NORMAL, one connection.
		raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
		if err != nil {
			b.Fatal(err)
		}
		raw.SetMaxOpenConns(1)
		defer raw.Close()
		fn(b, benchEnv{s, raw})
	})
	b.Run("postgres", func(b *testing.B) {
		u := storetest.PostgresURL(b)
		s, err := store.Open(context.Background(), store.Options{URL: u})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(context.Background()); err != nil {
			b.Fatal(err)
		}
		raw, err := sql.Open("pgx", u)
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		fn(b, benchEnv{s, raw})
	})
}

type benchGen struct {
	rng      *rand.Rand
	accounts []string
	at       time.Time
}

func newBenchGen() *benchGen {
	g := &benchGen{rng: rand.New(rand.NewPCG(1, 2)), at: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}
	for i := 0; i < benchAccounts; i++ {
		g.accounts = append(g.accounts, storetest.UUIDv7())
	}
	return g
}

func (g *benchGen) batch() []store.Change {
	cs := make([]store.Change, benchBatch)
	for i := range cs {
		g.at = g.at.Add(37 * time.Millisecond)
		a := g.rng.IntN(benchAccounts)
		o := (a + 1 + g.rng.IntN(benchAccounts-1)) % benchAccounts
		cs[i] = storetest.End(storetest.UUIDv7(), "arena", g.at,
			store.ResultRecord{AccountID: g.accounts[a], Placement: 1, Score: int64(g.rng.IntN(100)), Stats: map[string]float64{"kills": 3}},
			store.ResultRecord{AccountID: g.accounts[o], Placement: 2, Score: int64(g.rng.IntN(100)), Stats: map[string]float64{"kills": 1}})
	}
	return cs
}

func reportEvents(b *testing.B) {
	b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkApplyChanges(b *testing.B) {
	benchEngines(b, func(b *testing.B, env benchEnv) {
		g := newBenchGen()
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			batch := g.batch()
			b.StartTimer()
			n, err := env.s.ApplyChanges(ctx, batch)
			if err != nil || n != benchBatch {
				b.Fatalf("ApplyChanges = %d, %v", n, err)
			}
		}
		reportEvents(b)
	})
}

func BenchmarkRawInsert(b *testing.B) {
	benchEngines(b, func(b *testing.B, env benchEnv) {
		g := newBenchGen()
		ctx := context.Background()
		pg := env.s.Dialect() == "postgres"
		ts := func(t time.Time) any {
			if pg {
				return t
			}
			return t.UnixMicro()
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			batch := g.batch()
			var matches, results []any
			for _, c := range batch {
				e := c.End
				matches = append(matches, e.MatchID, e.Mode, e.Label, e.Node, ts(e.StartedAt), ts(e.EndedAt), e.DurationMs, e.Reason)
				for _, r := range e.Results {
					// the stats JSON is encoded here, as ApplyChanges does
					results = append(results, e.MatchID, r.AccountID, r.Placement, r.Score, fmt.Sprintf(`{"kills":%g}`, r.Stats["kills"]))
				}
			}
			b.StartTimer()
			tx, err := env.raw.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO matches (id, mode, label, node, started_at, ended_at, duration_ms, end_reason) VALUES `+
				storetest.ValuesList(pg, len(batch), 8), matches...); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO match_results (match_id, account_id, placement, score, stats) VALUES `+
				storetest.ValuesList(pg, 2*len(batch), 5), results...); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		reportEvents(b)
	})
}
