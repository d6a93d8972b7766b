package persist_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// BenchmarkEndToEnd measures match.ended events per second from Publish to
// a committed row: the embedded NATS JetStream (file storage; sync as
// MJ_BENCH_SYNC says, default "default"), the Publisher, the persistence
// consumer and PostgreSQL. b.N events of 2 players each, published as fast
// as Publish takes them while the consumer writes; reports events/s and
// the highest consumer lag seen.
func BenchmarkEndToEnd(b *testing.B) {
	for _, sync := range []string{events.SyncDefault, events.SyncAlways} {
		b.Run("sync="+sync, func(b *testing.B) {
			st := storetest.Postgres(b)
			bus, err := events.Open(context.Background(), events.Config{DataDir: b.TempDir(), Prefix: eventstest.Prefix(b), Sync: sync}, testLog(b))
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			pub := events.NewPublisher(bus, events.PublisherConfig{Buffer: b.N + 1, SpoolDir: b.TempDir()}, testLog(b))
			c := persist.New(bus, st, persist.Config{MaxWait: 20 * time.Millisecond}, testLog(b))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			base := time.Now().UTC().Add(-time.Hour)
			evs := make([]events.Event, b.N)
			for i := range evs {
				ev, err := events.NewMatchEnded(fmt.Sprintf("bench-%08d", i), "node", events.MatchEnded{Mode: "arena", Reason: "time_limit",
					StartedAt: base, EndedAt: base.Add(time.Second), DurationMs: 1000,
					Results: []events.PlayerResult{{AccountID: fmt.Sprintf("a%05d", i%10_000), Placement: 1, Score: int64(i % 17)},
						{AccountID: fmt.Sprintf("a%05d", (i*7+1)%10_000), Placement: 2, Score: int64(i % 5)}}})
				if err != nil {
					b.Fatal(err)
				}
				evs[i] = ev
			}
			var maxLag uint64
			b.ResetTimer()
			start := time.Now()
			for _, ev := range evs {
				if err := pub.Publish(ev); err != nil {
					b.Fatal(err)
				}
			}
			for c.Processed.Load() < int64(b.N) {
				time.Sleep(10 * time.Millisecond)
				if lag, err := c.Lag(context.Background()); err == nil && lag > maxLag {
					maxLag = lag
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(maxLag), "max-lag")
			b.Logf("n=%d processed %d duplicates %d retried %d dead %d in %s", b.N, c.Processed.Load(), c.Duplicates.Load(), c.Retried.Load(), c.DeadLettered.Load(), elapsed)
			cancel()
			<-done
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = pub.Close(cctx)
			ccancel()
		})
	}
}
