package persist_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store"
)

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("PERSIST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// openEmbedded opens a bus on an embedded server in a temporary directory.
func openEmbedded(t testing.TB) *events.Bus {
	t.Helper()
	b, err := events.Open(context.Background(), events.Config{DataDir: t.TempDir(), Prefix: eventstest.Prefix(t)}, testLog(t))
	if err != nil {
		t.Fatalf("open embedded bus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// openShared opens a bus on the machine's NATS under a prefix of the
// test's own.
func openShared(t testing.TB) *events.Bus {
	t.Helper()
	b, err := events.Open(context.Background(), events.Config{URL: eventstest.URL(t), Prefix: eventstest.Prefix(t)}, testLog(t))
	if err != nil {
		t.Fatalf("open shared bus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// fastConfig keeps the tests short.
func fastConfig() persist.Config {
	return persist.Config{MaxWait: 50 * time.Millisecond, Backoff: []time.Duration{50 * time.Millisecond}}
}

// start runs c until the test ends; Run must then return nil.
func start(t testing.TB, c *persist.Consumer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of its context's end")
		}
	})
}

func publisher(t testing.TB, bus *events.Bus) *events.Publisher {
	p := events.NewPublisher(bus, events.PublisherConfig{}, testLog(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close publisher: %v", err)
		}
	})
	return p
}

func publish(t testing.TB, p *events.Publisher, evs ...events.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := p.Publish(ev); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// publishRaw publishes data as is to the events subject of typ, with
// msgID as its Nats-Msg-Id.
func publishRaw(t testing.TB, bus *events.Bus, typ, msgID string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := &nats.Msg{Subject: bus.Subject(typ), Data: data, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	if _, err := bus.JetStream().PublishMsg(ctx, m); err != nil {
		t.Fatalf("raw publish: %v", err)
	}
}

func encode(t testing.TB, ev events.Event) []byte {
	t.Helper()
	b, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func matchID() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func startedEv(t testing.TB, id string) events.Event {
	t.Helper()
	ev, err := events.NewMatchStarted(id, "node-1", events.MatchStarted{Mode: "arena", Label: "l", Players: []string{"ann", "ben"}})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func endedEv(t testing.TB, id string, results ...events.PlayerResult) events.Event {
	t.Helper()
	if results == nil {
		results = []events.PlayerResult{
			{AccountID: "ann", Placement: 1, Score: 12, Stats: map[string]float64{"tags": 3}},
			{AccountID: "ben", Placement: 2, Score: -4},
		}
	}
	ev, err := events.NewMatchEnded(id, "node-1", events.MatchEnded{Mode: "arena", Label: "l", Reason: "winner",
		StartedAt: t0, EndedAt: t0.Add(90 * time.Second), DurationMs: 90000, Results: results})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ended reports whether the store holds match id as ended with n results.
func ended(s *store.Store, id string, n int) func() bool {
	return func() bool {
		m, err := s.Match(context.Background(), id)
		return err == nil && m.Ended() && len(m.Results) == n
	}
}

func counters(c *persist.Consumer) string {
	return fmt.Sprintf("processed %d retried %d dead-lettered %d duplicates %d", c.Processed.Load(),
		c.Retried.Load(), c.DeadLettered.Load(), c.Duplicates.Load())
}

// faultStore injects failures in front of a real store: it is fault
// injection, the writes that succeed are the real store's.
type faultStore struct {
	st       *store.Store
	failNext atomic.Int64 // fail that many calls with a transient error
	down     atomic.Bool  // fail every call with a transient error
	refuse   string       // refuse (store.ErrInvalid) a batch holding this match id
	calls    atomic.Int64
}

var errDown = errors.New("injected: database unreachable")

func (f *faultStore) ApplyChanges(ctx context.Context, ch []store.Change) (int, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return 0, errDown
	}
	if f.failNext.Add(-1) >= 0 {
		return 0, errDown
	}
	for i, c := range ch {
		if f.refuse != "" && c.End != nil && c.End.MatchID == f.refuse {
			return 0, fmt.Errorf("%w: change %d: injected refusal", store.ErrInvalid, i)
		}
	}
	return f.st.ApplyChanges(ctx, ch)
}
