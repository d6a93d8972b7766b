package events

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events/eventstest"
)

func TestBusStreams(t *testing.T) {
	forEachBus(t, func(t *testing.T, b *Bus) {
		ctx := context.Background()
		if err := b.Ready(ctx); err != nil {
			t.Fatalf("ready: %v", err)
		}
		s, err := b.JetStream().Stream(ctx, b.EventsStream())
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		if cfg.Storage != jetstream.FileStorage || cfg.Duplicates != 2*time.Minute || cfg.Replicas != 1 ||
			cfg.MaxAge != DefaultMaxAge || len(cfg.Subjects) != 1 || !strings.HasSuffix(cfg.Subjects[0], "mj.events.>") {
			t.Fatalf("events stream config: %+v", cfg)
		}
		d, err := b.JetStream().Stream(ctx, b.DLQStream())
		if err != nil {
			t.Fatal(err)
		}
		if c := d.CachedInfo().Config; c.MaxAge != DefaultDLQMaxAge || !strings.HasSuffix(c.Subjects[0], "mj.dlq.>") {
			t.Fatalf("dlq stream config: %+v", c)
		}
		if !strings.HasSuffix(b.Subject(TypeMatchEnded), "mj.events.match.ended") || !strings.HasSuffix(b.DLQSubject(TypeMatchEnded), "mj.dlq.match.ended") {
			t.Fatalf("subjects: %s %s", b.Subject(TypeMatchEnded), b.DLQSubject(TypeMatchEnded))
		}
		// Ensuring again (a second node, a restart) updates in place.
		if err := b.ensureStreams(ctx); err != nil {
			t.Fatalf("ensure again: %v", err)
		}
	})
}

func TestBusNames(t *testing.T) {
	b := openEmbedded(t, Config{})
	if b.EventsStream() != "MJ_EVENTS" || b.DLQStream() != "MJ_DLQ" || b.Subject(TypeMatchStarted) != "mj.events.match.started" ||
		b.DLQSubject(TypeMatchEvent) != "mj.dlq.match.event" || !b.Embedded() {
		t.Fatalf("names: %s %s %s %s", b.EventsStream(), b.DLQStream(), b.Subject(TypeMatchStarted), b.DLQSubject(TypeMatchEvent))
	}
	p := openEmbedded(t, Config{Prefix: "x1"})
	if p.EventsStream() != "x1_MJ_EVENTS" || p.Subject(TypeMatchEnded) != "x1.mj.events.match.ended" {
		t.Fatalf("prefixed names: %s %s", p.EventsStream(), p.Subject(TypeMatchEnded))
	}
}

func TestBusConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{},                              // embedded without a data directory
		{DataDir: "x", Replicas: 3},     // embedded has one replica
		{DataDir: "x", Replicas: -1},    // negative
		{URL: "nats://x", Replicas: 6},  // more than JetStream allows
		{DataDir: "x", Prefix: "a.b"},   // prefix with a dot
		{DataDir: "x", Sync: "never"},   // unknown sync
		{URL: "nats://x", Listen: ":1"}, // listen is embedded only
		{DataDir: "x", DuplicateWindow: time.Hour, MaxAge: time.Minute},
	} {
		if _, err := Open(context.Background(), c, nil); err == nil {
			t.Errorf("Open(%+v) accepted", c)
		}
	}
}

// The embedded server keeps acknowledged events across a restart.
func TestEmbeddedRestartKeepsEvents(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(context.Background(), Config{DataDir: dir}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(b, PublisherConfig{}, testLog(t))
	ev := ended(t, "m1")
	if err := p.Publish(ev); err != nil {
		t.Fatal(err)
	}
	closePublisher(t, p)
	if p.Published.Load() != 1 {
		t.Fatalf("published %d", p.Published.Load())
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	b2 := openEmbedded(t, Config{DataDir: dir})
	msgs := stored(t, b2)
	if len(msgs) != 1 || msgs[0].Header.Get("Nats-Msg-Id") != ev.ID {
		t.Fatalf("after restart: %d messages", len(msgs))
	}
}

// Listen lets other processes reach the embedded server.
func TestEmbeddedListen(t *testing.T) {
	srv := eventstest.StartServer(t) // only to borrow a free port
	port := srv.Port
	srv.Stop()
	dir := t.TempDir()
	b := openEmbedded(t, Config{DataDir: dir, Listen: "127.0.0.1:" + itoa(port)})
	auth, ok, err := EmbeddedAuth(context.Background(), dir, RoleOperator, nil)
	if err != nil || !ok {
		t.Fatalf("EmbeddedAuth: %v, %v", ok, err)
	}
	other, err := Open(context.Background(), Config{URL: "nats://127.0.0.1:" + itoa(port), Auth: auth}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if err := other.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.EventsStream() != other.EventsStream() {
		t.Fatal("names differ")
	}
}
