package persist_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

var ctx = context.Background()

// Embedded NATS + SQLite: events published by a Publisher reach the store;
// the same event again (another message id, so the stream keeps it) changes
// nothing.
func TestConsumeAndDeduplicate(t *testing.T) {
	bus := openEmbedded(t)
	st := storetest.SQLite(t)
	pub := publisher(t, bus)
	id := matchID()
	startEv, endEv := startedEv(t, id), endedEv(t, id)
	moment, err := events.NewMatchEvent(id, "node-1", events.MatchEvent{Name: "goal", Data: []byte(`{"by":"ann"}`)})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, pub, startEv, moment, endEv)

	c := persist.New(bus, st, fastConfig(), testLog(t))
	if _, err := c.Lag(ctx); err == nil {
		t.Fatal("Lag before Run: no error")
	}
	start(t, c)
	waitFor(t, 10*time.Second, "the match in the store", ended(st, id, 2))
	waitFor(t, 5*time.Second, "3 processed", func() bool { return c.Processed.Load() == 3 })
	m, err := st.Match(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := store.MatchRecord{ID: id, Mode: "arena", Label: "l", Node: "node-1", StartedAt: t0, EndedAt: t0.Add(90 * time.Second),
		DurationMs: 90000, EndReason: "winner", Results: []store.ResultRecord{
			{AccountID: "ann", Placement: 1, Score: 12, Stats: map[string]float64{"tags": 3}},
			{AccountID: "ben", Placement: 2, Score: -4},
		}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("stored match:\n got %+v\nwant %+v", m, want)
	}
	stats, err := st.PlayerStats(ctx, "ann")
	if err != nil || len(stats) != 2 || stats[0].Games != 1 || stats[0].Wins != 1 {
		t.Fatalf("stats of ann: %+v, %v", stats, err)
	}
	if c.Duplicates.Load() != 0 || c.DeadLettered.Load() != 0 || c.Retried.Load() != 0 {
		t.Fatalf("counters: %s", counters(c))
	}
	if evs, _, err := st.MatchEvents(ctx, id, "", 10); err != nil || len(evs) != 1 || evs[0].EventID != moment.ID ||
		evs[0].Name != "goal" || string(evs[0].Data) != `{"by":"ann"}` || !evs[0].At.Equal(moment.Time.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("stored match events: %+v, %v", evs, err)
	}

	// The same events again under other message ids: stored twice in the
	// stream, applied once.
	publishRaw(t, bus, events.TypeMatchEnded, "again-1", encode(t, endEv))
	publishRaw(t, bus, events.TypeMatchStarted, "again-2", encode(t, startEv))
	waitFor(t, 5*time.Second, "2 duplicates", func() bool { return c.Duplicates.Load() == 2 })
	if m2, err := st.Match(ctx, id); err != nil || !reflect.DeepEqual(m2, m) {
		t.Fatalf("after duplicates:\n got %+v, %v\nwant %+v", m2, err, m)
	}
	if s2, err := st.PlayerStats(ctx, "ann"); err != nil || !reflect.DeepEqual(s2, stats) {
		t.Fatalf("stats after duplicates: %+v, %v; want %+v", s2, err, stats)
	}
	if c.Processed.Load() != 5 || c.DeadLettered.Load() != 0 {
		t.Fatalf("counters: %s", counters(c))
	}
	waitFor(t, 5*time.Second, "no lag", func() bool { n, err := c.Lag(ctx); return err == nil && n == 0 })

	// The consumer deleted under the running service: it is recreated
	// and goes on (from the start of the stream: all duplicates).
	if err := bus.JetStream().DeleteConsumer(ctx, bus.EventsStream(), persist.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	id2 := matchID()
	publish(t, pub, endedEv(t, id2))
	waitFor(t, 10*time.Second, "a match after the consumer was deleted", ended(st, id2, 2))
	waitFor(t, 5*time.Second, "every event again", func() bool { return c.Processed.Load() == 11 && c.Duplicates.Load() == 7 })
}

// Shared NATS + PostgreSQL: poison and invalid events go to the DLQ with
// their error and the events after them are processed; an event
// dead-lettered after MaxDeliver transient failures is written exactly once
// by Replay.
func TestDeadLettersAndReplay(t *testing.T) {
	bus := openShared(t)
	st := storetest.Postgres(t)
	fs := &faultStore{st: st}
	cfg := fastConfig()
	cfg.MaxDeliver = 2
	c := persist.New(bus, fs, cfg, testLog(t))
	start(t, c)
	dlq := persist.NewDLQ(bus)

	// Poison: not JSON at all. The event after it is processed.
	publishRaw(t, bus, events.TypeMatchEnded, "poison-1", []byte("not json"))
	id1 := matchID()
	publishRaw(t, bus, events.TypeMatchEnded, "ok-1", encode(t, endedEv(t, id1)))
	waitFor(t, 10*time.Second, "the event after the poison", ended(st, id1, 2))
	waitFor(t, 5*time.Second, "1 dead letter", func() bool { return c.DeadLettered.Load() == 1 })
	list, err := dlq.List(ctx, 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	poison := list[0]
	if string(poison.Payload) != "not json" || poison.Subject != bus.Subject(events.TypeMatchEnded) ||
		!strings.Contains(poison.Error, "malformed") || poison.Deliveries != 1 || poison.EventID != "" ||
		poison.StreamSeq != 1 || time.Since(poison.Time) > time.Minute {
		t.Fatalf("poison dead letter: %+v", poison)
	}
	if got, err := dlq.Get(ctx, poison.Seq); err != nil || !reflect.DeepEqual(got, poison) {
		t.Fatalf("Get(%d): %+v, %v; want %+v", poison.Seq, got, err, poison)
	}
	if _, err := dlq.Get(ctx, poison.Seq+1000); !errors.Is(err, persist.ErrNotFound) {
		t.Fatalf("Get of a missing dead letter: %v", err)
	}

	// Well-formed but invalid: placement 0.
	bad := endedEv(t, matchID())
	raw := bytes.Replace(encode(t, bad), []byte(`"placement":2`), []byte(`"placement":0`), 1)
	publishRaw(t, bus, events.TypeMatchEnded, bad.ID, raw)
	id2 := matchID()
	publishRaw(t, bus, events.TypeMatchEnded, "ok-2", encode(t, endedEv(t, id2)))
	waitFor(t, 10*time.Second, "the event after the invalid one", ended(st, id2, 2))
	waitFor(t, 5*time.Second, "2 dead letters", func() bool { return c.DeadLettered.Load() == 2 })
	list, err = dlq.List(ctx, 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	if inv := list[1]; inv.EventID != bad.ID || inv.Type != events.TypeMatchEnded || inv.MatchID != bad.MatchID ||
		!strings.Contains(inv.Error, "placement 0") || !bytes.Equal(inv.Payload, raw) || inv.Seq <= poison.Seq {
		t.Fatalf("invalid dead letter: %+v", inv)
	}
	if l1, err := dlq.List(ctx, 1); err != nil || len(l1) != 1 || l1[0].Seq != poison.Seq {
		t.Fatalf("List(1): %+v, %v", l1, err)
	}

	// The database is down long enough: after MaxDeliver deliveries the
	// event is dead-lettered with the error.
	fs.down.Store(true)
	id3 := matchID()
	ev3 := endedEv(t, id3)
	publishRaw(t, bus, events.TypeMatchEnded, ev3.ID, encode(t, ev3))
	waitFor(t, 10*time.Second, "3 dead letters", func() bool { return c.DeadLettered.Load() == 3 })
	fs.down.Store(false)
	list, err = dlq.List(ctx, 10)
	if err != nil || len(list) != 3 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	dl := list[2]
	if dl.EventID != ev3.ID || dl.Deliveries != 2 || !strings.Contains(dl.Error, errDown.Error()) || c.Retried.Load() < 1 {
		t.Fatalf("dead letter after MaxDeliver: %+v; %s", dl, counters(c))
	}
	if _, err := st.Match(ctx, id3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dead-lettered match in the store: %v", err)
	}

	// Replay: applied exactly once, gone from the DLQ.
	processed, dups := c.Processed.Load(), c.Duplicates.Load()
	if err := dlq.Replay(ctx, dl.Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the replayed event in the store", ended(st, id3, 2))
	waitFor(t, 5*time.Second, "the replayed event processed", func() bool { return c.Processed.Load() == processed+1 })
	if c.Duplicates.Load() != dups {
		t.Fatalf("replayed event counted as a duplicate: %s", counters(c))
	}
	if _, err := dlq.Get(ctx, dl.Seq); !errors.Is(err, persist.ErrNotFound) {
		t.Fatalf("replayed dead letter still there: %v", err)
	}
	if err := dlq.Replay(ctx, dl.Seq); !errors.Is(err, persist.ErrNotFound) {
		t.Fatalf("second replay: %v", err)
	}
	if stats, err := st.PlayerStats(ctx, "ann"); err != nil || stats[0].Games != 3 {
		t.Fatalf("stats of ann after 3 matches: %+v, %v", stats, err)
	}

	// Replaying poison dead-letters it again, as a new dead letter.
	if err := dlq.Replay(ctx, poison.Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the poison dead-lettered again", func() bool { return c.DeadLettered.Load() == 4 })
	list, err = dlq.List(ctx, 10)
	if err != nil || len(list) != 2 || list[0].EventID != bad.ID || string(list[1].Payload) != "not json" ||
		list[1].Seq <= dl.Seq || list[1].Subject != poison.Subject {
		t.Fatalf("after replaying the poison: %+v, %v", list, err)
	}
	waitFor(t, 5*time.Second, "no lag", func() bool { n, err := c.Lag(ctx); return err == nil && n == 0 })
}

// A transient store failure: the events are redelivered and written once.
func TestTransientFailureRetries(t *testing.T) {
	bus := openEmbedded(t)
	st := storetest.SQLite(t)
	fs := &faultStore{st: st}
	fs.failNext.Store(2)
	pub := publisher(t, bus)
	id := matchID()
	publish(t, pub, startedEv(t, id), endedEv(t, id))
	c := persist.New(bus, fs, fastConfig(), testLog(t))
	start(t, c)
	waitFor(t, 10*time.Second, "the match in the store", ended(st, id, 2))
	waitFor(t, 5*time.Second, "2 processed", func() bool { return c.Processed.Load() == 2 })
	if c.Retried.Load() < 2 || c.DeadLettered.Load() != 0 || c.Duplicates.Load() != 0 || fs.calls.Load() < 3 {
		t.Fatalf("counters: %s; store calls %d", counters(c), fs.calls.Load())
	}
	if stats, err := st.PlayerStats(ctx, "ben"); err != nil || len(stats) != 2 || stats[0].Games != 1 {
		t.Fatalf("stats of ben: %+v, %v", stats, err)
	}
	waitFor(t, 5*time.Second, "no lag", func() bool { n, err := c.Lag(ctx); return err == nil && n == 0 })
}

// A batch the store refuses (store.ErrInvalid) is applied event by event:
// only the refused event is dead-lettered.
func TestStoreRefusalIsolates(t *testing.T) {
	bus := openEmbedded(t)
	st := storetest.SQLite(t)
	badID := matchID()
	fs := &faultStore{st: st, refuse: badID}
	pub := publisher(t, bus)
	good1, good2 := matchID(), matchID()
	bad := endedEv(t, badID)
	publish(t, pub, endedEv(t, good1), bad, endedEv(t, good2))
	waitFor(t, 5*time.Second, "3 events published", func() bool { return pub.Published.Load() == 3 })
	c := persist.New(bus, fs, fastConfig(), testLog(t))
	start(t, c)
	waitFor(t, 10*time.Second, "the good events in the store", func() bool { return ended(st, good1, 2)() && ended(st, good2, 2)() })
	waitFor(t, 5*time.Second, "1 dead letter", func() bool { return c.DeadLettered.Load() == 1 })
	if c.Processed.Load() != 2 || c.Retried.Load() != 0 || fs.calls.Load() != 4 {
		t.Fatalf("counters: %s; store calls %d (want 1 batch + 3 single)", counters(c), fs.calls.Load())
	}
	list, err := persist.NewDLQ(bus).List(ctx, 0)
	if err != nil || len(list) != 1 || list[0].EventID != bad.ID || !strings.Contains(list[0].Error, "injected refusal") ||
		list[0].Deliveries != 1 || list[0].MatchID != badID {
		t.Fatalf("DLQ: %+v, %v", list, err)
	}
}

// ReplayAll replays every dead letter; Purge drops them all.
func TestReplayAllAndPurge(t *testing.T) {
	bus := openShared(t)
	st := storetest.Postgres(t)
	fs := &faultStore{st: st}
	fs.down.Store(true)
	cfg := fastConfig()
	cfg.MaxDeliver = 1
	c := persist.New(bus, fs, cfg, testLog(t))
	start(t, c)
	dlq := persist.NewDLQ(bus)

	ids := []string{matchID(), matchID(), matchID()}
	for _, id := range ids {
		ev := endedEv(t, id)
		publishRaw(t, bus, events.TypeMatchEnded, ev.ID, encode(t, ev))
	}
	waitFor(t, 10*time.Second, "3 dead letters", func() bool { return c.DeadLettered.Load() == 3 })
	fs.down.Store(false)
	n, err := dlq.ReplayAll(ctx)
	if err != nil || n != 3 {
		t.Fatalf("ReplayAll: %d, %v", n, err)
	}
	for _, id := range ids {
		waitFor(t, 10*time.Second, "replayed match "+id, ended(st, id, 2))
	}
	if list, err := dlq.List(ctx, 0); err != nil || len(list) != 0 {
		t.Fatalf("DLQ after ReplayAll: %+v, %v", list, err)
	}
	if n, err := dlq.ReplayAll(ctx); err != nil || n != 0 {
		t.Fatalf("ReplayAll of an empty DLQ: %d, %v", n, err)
	}

	publishRaw(t, bus, events.TypeMatchStarted, "poison-a", []byte(`{"id":"x","type":"match.started"}`))
	publishRaw(t, bus, events.TypeMatchEvent, "poison-b", []byte(`[1,2]`))
	waitFor(t, 10*time.Second, "5 dead letters", func() bool { return c.DeadLettered.Load() == 5 })
	list, err := dlq.List(ctx, 0)
	if err != nil || len(list) != 2 || list[0].Type != events.TypeMatchStarted || list[0].EventID != "x" || list[1].Type != "" {
		t.Fatalf("poison in the DLQ: %+v, %v", list, err)
	}
	if n, err := dlq.Purge(ctx); err != nil || n != 2 {
		t.Fatalf("Purge: %d, %v", n, err)
	}
	if list, err := dlq.List(ctx, 0); err != nil || len(list) != 0 {
		t.Fatalf("DLQ after Purge: %+v, %v", list, err)
	}
	if n, err := dlq.Purge(ctx); err != nil || n != 0 {
		t.Fatalf("second Purge: %d, %v", n, err)
	}
	if c.Processed.Load() != 3 {
		t.Fatalf("counters: %s", counters(c))
	}
}

// Stopping a consumer hands back the messages it had pulled but not
// written: another instance gets them at once, not after AckWait.
func TestStopHandsBackPulledMessages(t *testing.T) {
	bus := openEmbedded(t)
	st := storetest.SQLite(t)
	pub := publisher(t, bus)
	slow := &slowStore{st: st, delay: 300 * time.Millisecond}
	cfg := fastConfig()
	cfg.Batch = 10 // pulls 20 ahead, writes 10 at a time
	cfg.AckWait = time.Minute
	a := persist.New(bus, slow, cfg, testLog(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var ids []string
	for i := 0; i < 100; i++ {
		id := matchID()
		ids = append(ids, id)
		publish(t, pub, endedEv(t, id))
	}
	waitFor(t, 10*time.Second, "the first batch written", func() bool { return a.Processed.Load() > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b := persist.New(bus, st, cfg, testLog(t))
	start(t, b)
	// Far less than the minute of AckWait.
	waitFor(t, 15*time.Second, "every match stored", func() bool {
		for _, id := range ids {
			if !ended(st, id, 2)() {
				return false
			}
		}
		return true
	})
}

// slowStore delays every write.
type slowStore struct {
	st    *store.Store
	delay time.Duration
}

func (s *slowStore) ApplyChanges(ctx context.Context, ch []store.Change) (int, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return s.st.ApplyChanges(ctx, ch)
}
