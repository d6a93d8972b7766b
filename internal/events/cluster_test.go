package events

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/logtest"
)

func openCluster(t testing.TB, c *eventstest.Cluster, replicas int, log *slog.Logger) *Bus {
	t.Helper()
	b, err := Open(context.Background(), Config{URL: c.URLs(), Replicas: replicas}, log)
	if err != nil {
		t.Fatalf("open bus on the cluster (replicas %d): %v", replicas, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// streamInfo is the stream's info, or nil while the cluster cannot answer
// (during an election).
func streamInfo(b *Bus, name string) *jetstream.StreamInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := b.JetStream().Stream(ctx, name)
	if err != nil {
		return nil
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil
	}
	return info
}

// waitReplicas waits until both streams have want replicas, all current,
// with a leader.
func waitReplicas(t testing.TB, b *Bus, want int) {
	t.Helper()
	waitStreamReplicas(t, b, b.EventsStream(), want)
	waitStreamReplicas(t, b, b.DLQStream(), want)
}

func waitStreamReplicas(t testing.TB, b *Bus, name string, want int) {
	t.Helper()
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("%s last seen: %s", name, last)
		}
	}()
	waitFor(t, 15*time.Second, fmt.Sprintf("%s with %d current replicas", name, want), func() bool {
		info := streamInfo(b, name)
		if info == nil || info.Cluster == nil {
			return false
		}
		last = fmt.Sprintf("config %d, leader %q, peers %+v", info.Config.Replicas, info.Cluster.Leader, info.Cluster.Replicas)
		if info.Config.Replicas != want || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != want-1 {
			return false
		}
		for _, p := range info.Cluster.Replicas {
			if !p.Current || p.Offline {
				return false
			}
		}
		return true
	})
}

// events.replicas on a 3-node cluster: unset, a new stream has 1 replica
// (with a warning); 3 raises it; 1 then, and unset, never lower it.
func TestClusterReplicasNeverLowered(t *testing.T) {
	c := eventstest.StartCluster(t, 3)
	open := func(replicas int) (*Bus, *logtest.Buffer) {
		var logs logtest.Buffer
		b := openCluster(t, c, replicas, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
		return b, &logs
	}
	steps := []struct {
		replicas, want int
		warn           string // in the warnings; "" for none
	}{
		{0, 1, "events.replicas is not set"},
		{3, 3, ""},
		{1, 3, "events.replicas is lower than the stream's replica count"},
		{0, 3, ""},
	}
	for _, s := range steps {
		b, logs := open(s.replicas)
		waitReplicas(t, b, s.want)
		got := logs.String()
		switch {
		case s.warn == "" && got != "":
			t.Errorf("replicas %d: unexpected warnings:\n%s", s.replicas, got)
		case s.warn != "" && strings.Count(got, s.warn) != 2: // one per stream
			t.Errorf("replicas %d: want 2 warnings with %q, got:\n%s", s.replicas, s.warn, got)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// play is a game node during a test: it publishes a match event every
// 4ms through a Publisher, every tenth a result, until Stop, and keeps
// every event Publish took. A Publish error fails the test and ends play.
type play struct {
	mu     sync.Mutex
	evs    []Event
	failed atomic.Bool
	stop   func()
}

func startPlay(t testing.TB, p *Publisher) *play {
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
			ev, err := NewMatchEvent(m, "node-1", MatchEvent{Name: "goal"})
			if i%10 == 9 {
				ev, err = NewMatchEnded(m, "node-1", MatchEnded{Mode: "arena", Reason: "draw", StartedAt: t0, EndedAt: t0, Results: []PlayerResult{}})
			}
			if err == nil {
				err = p.Publish(ev)
			}
			if err != nil {
				pl.failed.Store(true)
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
func (pl *play) Stop() []Event {
	pl.stop()
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.evs
}

// streamLeader is the node leading the bus's events stream.
func streamLeader(t testing.TB, c *eventstest.Cluster, b *Bus) int {
	t.Helper()
	i := -1
	waitFor(t, 15*time.Second, "the events stream's leader", func() bool {
		if info := streamInfo(b, b.EventsStream()); info != nil && info.Cluster != nil {
			i = c.Index(info.Cluster.Leader)
		}
		return i >= 0
	})
	return i
}

// A NATS node killed during play: a game node's Publisher publishes a
// steady stream of events into an R3 stream while a follower and then the
// stream's leader are killed (and restarted). Publishing goes on after
// each kill, no Publish fails, and every event (each one acknowledged:
// the Publisher closes with nothing lost) is in the stream afterwards,
// once.
func TestClusterNodeKilledDuringPlay(t *testing.T) {
	c := eventstest.StartCluster(t, 3)
	b := openCluster(t, c, 3, testLog(t))
	waitReplicas(t, b, 3)
	p := NewPublisher(b, PublisherConfig{AckTimeout: time.Second, MaxRetryBackoff: 200 * time.Millisecond, SpoolDir: t.TempDir()}, testLog(t))
	pl := startPlay(t, p)

	// progress waits until 200 more events are acknowledged than now.
	progress := func(what string) time.Duration {
		t.Helper()
		start, from := time.Now(), p.Published.Load()
		waitFor(t, 20*time.Second, what, func() bool { return p.Published.Load() >= from+200 || pl.failed.Load() })
		return time.Since(start)
	}
	progress("the first acks")

	// The follower killed is the node the bus is connected to, if that is
	// not the leader: either kill then makes the client reconnect.
	l := streamLeader(t, c, b)
	follower := c.Index(b.Conn().ConnectedServerName())
	if follower == l || follower < 0 {
		follower = (l + 1) % 3
	}
	t.Logf("killing follower %s (the bus is on %s)", c.Name(follower), b.Conn().ConnectedServerName())
	c.Kill(follower)
	d1 := progress("acks with a follower killed")
	c.Restart(follower)
	waitReplicas(t, b, 3)

	l = streamLeader(t, c, b)
	t.Logf("killing the stream leader %s (the bus is on %s)", c.Name(l), b.Conn().ConnectedServerName())
	c.Kill(l)
	d2 := progress("acks with the stream leader killed")
	c.Restart(l)
	waitReplicas(t, b, 3)
	progress("acks with every node back")
	evs := pl.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close publisher: %v", err)
	}
	if p.Dropped.Load() != 0 {
		t.Fatalf("publisher dropped %d events", p.Dropped.Load())
	}
	t.Logf("%d events published (%d retried, %d spooled); 200 acks took %v after the follower's kill, %v after the leader's",
		len(evs), p.Retried.Load(), p.Spooled.Load(), d1.Round(time.Millisecond), d2.Round(time.Millisecond))
	checkStoredOnce(t, b, evs)
}

// checkStoredOnce checks that the bus's events stream holds each of evs
// exactly once, and nothing else.
func checkStoredOnce(t testing.TB, b *Bus, evs []Event) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range stored(t, b) {
		seen[m.Header.Get(jetstream.MsgIDHeader)]++
	}
	missing, dups := 0, 0
	for _, ev := range evs {
		switch n := seen[ev.ID]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are not in the stream", missing, len(evs))
	}
	if len(seen) != len(evs) || dups > 0 {
		t.Fatalf("%d distinct ids stored (%d duplicates), %d published", len(seen), dups, len(evs))
	}
}
