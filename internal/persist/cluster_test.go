package persist_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// play is a game node during a test: it publishes a match event every
// 4ms through a Publisher, every tenth the match's result, until Stop,
// and keeps every event Publish took. A Publish error fails the test and
// ends play.
type play struct {
	mu   sync.Mutex
	evs  []events.Event
	stop func()
}

func startPlay(t testing.TB, p *events.Publisher) *play {
	pl := &play{}
	stop, done := make(chan struct{}), make(chan struct{})
	pl.stop = sync.OnceFunc(func() { close(stop); <-done })
	t.Cleanup(pl.stop)
	go func() {
		defer close(done)
		tick := time.NewTicker(4 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			m := fmt.Sprintf("m%05d", i/10)
			ev, err := events.NewMatchEvent(m, "node-1", events.MatchEvent{Name: "goal"})
			if i%10 == 9 {
				ev, err = events.NewMatchEnded(m, "node-1", events.MatchEnded{Mode: "arena", Reason: "draw", StartedAt: t0, EndedAt: t0, Results: []events.PlayerResult{}})
			}
			if err == nil {
				err = p.Publish(ev)
			}
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			pl.mu.Lock()
			pl.evs = append(pl.evs, ev)
			pl.mu.Unlock()
		}
	}()
	return pl
}

// Stop ends play and returns the events published.
func (pl *play) Stop() []events.Event {
	pl.stop()
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.evs
}

// leaderOf is the node leading bus's events stream or, with a consumer
// name, that consumer.
func leaderOf(t testing.TB, cl *eventstest.Cluster, bus *events.Bus, consumer string) int {
	t.Helper()
	i := -1
	waitFor(t, 15*time.Second, "the leader of "+consumer, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var ci *jetstream.ClusterInfo
		if consumer == "" {
			if s, err := bus.JetStream().Stream(ctx, bus.EventsStream()); err == nil {
				ci = s.CachedInfo().Cluster
			}
		} else if cons, err := bus.JetStream().Consumer(ctx, bus.EventsStream(), consumer); err == nil {
			ci = cons.CachedInfo().Cluster
		}
		if ci != nil {
			i = cl.Index(ci.Leader)
		}
		return i >= 0
	})
	return i
}

// A NATS node killed during play, end to end: a game node's Publisher
// publishes matches (nine key moments and a result each) into R3 streams
// on a 3-node cluster while the persistence consumer writes them to
// SQLite; the stream's leader, then the consumer's, is killed and
// restarted. Afterwards every event published (each one acknowledged: the
// Publisher closes with nothing lost) is in the database exactly once.
func TestClusterNodeKilledEndToEnd(t *testing.T) {
	cl := eventstest.StartCluster(t, 3)
	open := func() *events.Bus {
		b, err := events.Open(context.Background(), events.Config{URL: cl.URLs(), Replicas: 3}, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	gameBus, persistBus := open(), open()
	st := storetest.SQLite(t)
	// Acks sent to a consumer leader that is then killed are lost: those
	// events come again after the ack wait, shortened here.
	cfg := fastConfig()
	cfg.AckWait = 2 * time.Second
	c := persist.New(persistBus, st, cfg, testLog(t))
	start(t, c)
	p := events.NewPublisher(gameBus, events.PublisherConfig{AckTimeout: time.Second, MaxRetryBackoff: 200 * time.Millisecond, SpoolDir: t.TempDir()}, testLog(t))
	pl := startPlay(t, p)

	// progress waits until 200 more events are in the database than now.
	progress := func(what string) {
		t.Helper()
		from := c.Processed.Load()
		waitFor(t, 20*time.Second, what, func() bool { return c.Processed.Load() >= from+200 })
	}
	progress("the first events in the database")
	for _, who := range []string{"", persist.DefaultDurable} {
		l := leaderOf(t, cl, persistBus, who)
		t.Logf("killing %s, leader of %q", cl.Name(l), who)
		cl.Kill(l)
		progress("events in the database with a node killed")
		cl.Restart(l)
		progress("events in the database with every node back")
	}
	evs := pl.Stop()
	closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.Close(closeCtx); err != nil || p.Dropped.Load() != 0 {
		t.Fatalf("close publisher: %v (%d dropped)", err, p.Dropped.Load())
	}
	var lag string
	defer func() {
		if t.Failed() {
			t.Logf("last lag: %s; %s", lag, counters(c))
		}
	}()
	waitFor(t, 20*time.Second, "no lag", func() bool {
		n, err := c.Lag(context.Background())
		lag = fmt.Sprint(n, err)
		return err == nil && n == 0
	})
	checkInStoreOnce(t, st, evs)
	t.Logf("%d events published (%d retried, %d spooled); %s", len(evs), p.Retried.Load(), p.Spooled.Load(), counters(c))
	if c.DeadLettered.Load() != 0 {
		t.Fatalf("%d events dead-lettered", c.DeadLettered.Load())
	}
}

// checkInStoreOnce checks that every key moment of evs is in the store
// once, in order, with no other, and every match with a result ended.
func checkInStoreOnce(t testing.TB, st *store.Store, evs []events.Event) {
	t.Helper()
	ctx := context.Background()
	moments := map[string][]string{} // match id: its key moments' event ids
	var ended []string
	for _, ev := range evs {
		if ev.Type == events.TypeMatchEnded {
			ended = append(ended, ev.MatchID)
		} else {
			moments[ev.MatchID] = append(moments[ev.MatchID], ev.ID)
		}
	}
	for m, want := range moments {
		got, _, err := st.MatchEvents(ctx, m, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("match %s: %d key moments in the database, %d published", m, len(got), len(want))
		}
		for i, r := range got { // in the order they happened: as published
			if r.EventID != want[i] {
				t.Fatalf("match %s: key moment %d is %s, published %s", m, i, r.EventID, want[i])
			}
		}
	}
	for _, m := range ended {
		if rec, err := st.Match(ctx, m); err != nil || !rec.Ended() {
			t.Fatalf("match %s not ended in the database: %+v, %v", m, rec, err)
		}
	}
}
