package persist_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// benchMix is the shape of the matches whose events a benchmark publishes.
type benchMix struct {
	name    string
	players int // results in each match.ended
	moments int // match.event events between start and end
	started bool
}

var benchMixes = []benchMix{
	// Only results: every event is a match.ended of 2 players, the most
	// expensive event (a match row, 2 results, 4 stats rows, ~3 board
	// records, all in the batch's transaction).
	{name: "ended", players: 2},
	// An arena-like match: 8 players, started, 30 key moments (tags),
	// ended: 32 events per match, the mix a running game produces.
	{name: "game", players: 8, moments: 30, started: true},
}

// perMatch is how many events a match of mix makes.
func (mix benchMix) perMatch() int {
	n := mix.moments + 1
	if mix.started {
		n++
	}
	return n
}

// matchesFor is how many whole matches make at least n events.
func (mix benchMix) matchesFor(n int) int { return (n + mix.perMatch() - 1) / mix.perMatch() }

// genMatch makes the events of match m of mix, in order, as a game node
// does: with the New functions (ids, checks and the wire form included).
func genMatch(b *testing.B, mix benchMix, base time.Time, m int, out []events.Event) []events.Event {
	id := uuid.Must(uuid.NewV7()).String()
	start := base.Add(time.Duration(m) * time.Millisecond)
	if mix.started {
		ev, err := events.NewMatchStarted(id, "node", events.MatchStarted{Mode: "arena", Players: []string{}})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, ev)
	}
	for k := 0; k < mix.moments; k++ {
		ev, err := events.NewMatchEvent(id, "node", events.MatchEvent{Name: "tag",
			Data: []byte(fmt.Sprintf(`{"by":"a%05d","tagged":"a%05d"}`, (m*7+k)%10_000, (m*13+k+1)%10_000))})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, ev)
	}
	rs := make([]events.PlayerResult, mix.players)
	for p := range rs {
		rs[p] = events.PlayerResult{AccountID: fmt.Sprintf("a%05d", (m*mix.players*7+p*1009)%10_000), Placement: p + 1, Score: int64((m + p) % 17)}
	}
	ev, err := events.NewMatchEnded(id, "node", events.MatchEnded{Mode: "arena", Reason: "time_limit",
		StartedAt: start, EndedAt: start.Add(time.Minute), DurationMs: 60_000, Results: rs})
	if err != nil {
		b.Fatal(err)
	}
	return append(out, ev)
}

// BenchmarkEndToEnd measures events per second from Publish to a committed
// row: the embedded NATS JetStream (file storage, with each sync setting),
// the Publisher, the persistence consumer and PostgreSQL, for each event
// mix. The events are made inside the timed part, as a game node makes
// them (MJ_BENCH_PREMADE=1: before it). b.N is rounded up to whole matches. It reports events/s, the
// highest consumer lag seen, and raw-events/s: the same rows (matches,
// results, match events) written by plain multi-row INSERTs in
// transactions of 500 events, in the same run, with no queue, no
// idempotency and nothing derived; and the CPU time per event, over the
// timed part, of this process (NATS, publisher, consumer) and of
// PostgreSQL. MJ_BENCH_SYNC=default|always runs one
// sync setting only; MJ_BENCH_BATCH=N sets the consumer's batch size.
func BenchmarkEndToEnd(b *testing.B) {
	syncs := []string{events.SyncDefault, events.SyncAlways}
	if v := os.Getenv("MJ_BENCH_SYNC"); v != "" {
		syncs = []string{v}
	}
	for _, mix := range benchMixes {
		for _, sync := range syncs {
			b.Run("mix="+mix.name+"/sync="+sync, func(b *testing.B) { benchEndToEnd(b, mix, sync, false) })
		}
	}
}

// BenchmarkDrain is BenchmarkEndToEnd with every event published before the
// clock starts: how fast the persistence consumer works off a backlog (after
// an outage of the database, say), without publishers sharing the cores.
func BenchmarkDrain(b *testing.B) {
	for _, mix := range benchMixes {
		b.Run("mix="+mix.name, func(b *testing.B) { benchEndToEnd(b, mix, events.SyncDefault, true) })
	}
}

func benchEndToEnd(b *testing.B, mix benchMix, sync string, backlog bool) {
	st := storetest.Postgres(b)
	bus, err := events.Open(context.Background(), events.Config{DataDir: b.TempDir(), Prefix: eventstest.Prefix(b), Sync: sync}, testLog(b))
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	matches := mix.matchesFor(b.N)
	total := matches * mix.perMatch()
	base := time.Now().UTC().Add(-time.Hour)
	pub := events.NewPublisher(bus, events.PublisherConfig{Buffer: total + 1, SpoolDir: b.TempDir()}, testLog(b))
	batch := 0 // the default
	if v := os.Getenv("MJ_BENCH_BATCH"); v != "" {
		if _, err := fmt.Sscan(v, &batch); err != nil {
			b.Fatalf("MJ_BENCH_BATCH=%q: %v", v, err)
		}
	}
	c := persist.New(bus, st, persist.Config{MaxWait: 20 * time.Millisecond, Batch: batch}, testLog(b))
	// publish makes each match's events and publishes them, as a game
	// node does: in the end-to-end run that is inside the timed part.
	// With MJ_BENCH_PREMADE=1 the events are made before the clock starts
	// and the clock covers Publish to committed row only (which then leaves
	// out the encoding the New functions do for Publish).
	var premade []events.Event
	if os.Getenv("MJ_BENCH_PREMADE") == "1" {
		premade = make([]events.Event, 0, total)
		for m := 0; m < matches; m++ {
			premade = genMatch(b, mix, base, m, premade)
		}
	}
	publish := func() {
		var evs []events.Event
		for m := 0; m < matches; m++ {
			if premade != nil {
				evs = premade[m*mix.perMatch() : (m+1)*mix.perMatch()]
			} else {
				evs = genMatch(b, mix, base, m, evs[:0])
			}
			for _, ev := range evs {
				if err := pub.Publish(ev); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if backlog {
		publish()
		for pub.Buffered() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var maxLag uint64
	b.ResetTimer()
	cpu0 := sampleCPU()
	start := time.Now()
	go func() { done <- c.Run(ctx) }()
	if !backlog {
		publish()
	}
	last, lastAt := int64(0), time.Now()
	for c.Processed.Load() < int64(total) {
		time.Sleep(10 * time.Millisecond)
		lag, err := c.Lag(context.Background())
		if err == nil && lag > maxLag {
			maxLag = lag
		}
		// A stall is worth a line: it shows what waits.
		if p := c.Processed.Load(); p != last {
			last, lastAt = p, time.Now()
		} else if time.Since(lastAt) > 2*time.Second {
			detail := ""
			if cons, err := bus.JetStream().Consumer(context.Background(), bus.EventsStream(), persist.DefaultDurable); err == nil {
				i := cons.CachedInfo()
				detail = fmt.Sprintf("pending %d ack-pending %d waiting pulls %d redelivered %d delivered %d/%d ack floor %d",
					i.NumPending, i.NumAckPending, i.NumWaiting, i.NumRedelivered, i.Delivered.Consumer, i.Delivered.Stream, i.AckFloor.Stream)
			}
			b.Logf("stalled %s at processed %d: lag %d (%v), publisher buffered %d, retried %d, NATS async errors %d; %s", time.Since(lastAt).Round(time.Second), p, lag, err, pub.Buffered(), c.Retried.Load(), bus.AsyncErrors(), detail)
			lastAt = time.Now()
		}
	}
	elapsed := time.Since(start)
	cpu1 := sampleCPU()
	b.StopTimer()
	cancel()
	<-done
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = pub.Close(cctx)
	ccancel()
	if c.Duplicates.Load() != 0 || c.DeadLettered.Load() != 0 || bus.AsyncErrors() != 0 {
		b.Fatalf("duplicates %d dead-lettered %d NATS async errors %d: the run is not clean", c.Duplicates.Load(), c.DeadLettered.Load(), bus.AsyncErrors())
	}
	raw := rawInsertRate(b, mix, base, matches)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(maxLag), "max-lag")
	b.ReportMetric(raw, "raw-events/s")
	perEvent := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(total) }
	b.ReportMetric(perEvent(cpu1.self-cpu0.self), "proc-cpu-µs/event")
	b.ReportMetric(perEvent(cpu1.postgres-cpu0.postgres), "pg-cpu-µs/event")
	b.Logf("events=%d processed %d retried %d in %s; raw insert of the same rows %.0f events/s", total, c.Processed.Load(), c.Retried.Load(), elapsed, raw)
}

// rawInsertRate writes the rows of the events of matches of mix (made
// again, before its clock starts) into a fresh schema with plain multi-row
// INSERTs, 500 events per transaction, and returns events/s.
func rawInsertRate(b *testing.B, mix benchMix, base time.Time, matches int) float64 {
	evs := make([]events.Event, 0, matches*mix.perMatch())
	for m := 0; m < matches; m++ {
		evs = genMatch(b, mix, base, m, evs)
	}
	u := storetest.PostgresURL(b)
	s, err := store.Open(context.Background(), store.Options{URL: u})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("pgx", u)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	insert := func(tx *sql.Tx, head string, cols int, args []any) {
		if len(args) == 0 {
			return
		}
		if _, err := tx.ExecContext(ctx, head+storetest.ValuesList(true, len(args)/cols, cols), args...); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	for i := 0; i < len(evs); i += 500 {
		var matches, results, moments []any
		for _, ev := range evs[i:min(i+500, len(evs))] {
			switch ev.Type {
			case events.TypeMatchEvent:
				p, _ := events.DecodeData[events.MatchEvent](ev)
				moments = append(moments, ev.ID, ev.MatchID, p.Name, ev.Time, string(p.Data))
			case events.TypeMatchEnded:
				p, _ := events.DecodeData[events.MatchEnded](ev)
				matches = append(matches, ev.MatchID, p.Mode, "", ev.Node, p.StartedAt, p.EndedAt, p.DurationMs, p.Reason)
				for _, r := range p.Results {
					results = append(results, ev.MatchID, r.AccountID, r.Placement, r.Score, "{}")
				}
			}
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		insert(tx, `INSERT INTO matches (id, mode, label, node, started_at, ended_at, duration_ms, end_reason) VALUES `, 8, matches)
		insert(tx, `INSERT INTO match_results (match_id, account_id, placement, score, stats) VALUES `, 5, results)
		insert(tx, `INSERT INTO match_events (event_id, match_id, name, at, data) VALUES `, 5, moments)
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(evs)) / time.Since(start).Seconds()
}
