package events

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events/eventstest"
)

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("EVENTS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// openEmbedded opens a bus on an embedded server in a temporary directory.
func openEmbedded(t testing.TB, cfg Config) *Bus {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	b, err := Open(context.Background(), cfg, testLog(t))
	if err != nil {
		t.Fatalf("open embedded bus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// openShared opens a bus on the machine's NATS under a prefix of the
// test's own.
func openShared(t testing.TB) *Bus {
	t.Helper()
	b, err := Open(context.Background(), Config{URL: eventstest.URL(t), Prefix: eventstest.Prefix(t)}, testLog(t))
	if err != nil {
		t.Fatalf("open shared bus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// openURL opens a bus on a test's private server.
func openURL(t testing.TB, url string) *Bus {
	t.Helper()
	b, err := Open(context.Background(), Config{URL: url}, testLog(t))
	if err != nil {
		t.Fatalf("open bus on %s: %v", url, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// forEachBus runs f against the embedded server and the shared one.
func forEachBus(t *testing.T, f func(t *testing.T, b *Bus)) {
	t.Run("embedded", func(t *testing.T) { f(t, openEmbedded(t, Config{})) })
	t.Run("shared", func(t *testing.T) { f(t, openShared(t)) })
}

// stored returns every message in the bus's events stream.
func stored(t testing.TB, b *Bus) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.JetStream().Stream(ctx, b.EventsStream())
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

func storedCount(t testing.TB, b *Bus) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.JetStream().Stream(ctx, b.EventsStream())
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
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

func closePublisher(t testing.TB, p *Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close publisher: %v", err)
	}
}
