package persist_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

func signer(t testing.TB, key string) *events.Signer {
	s, err := events.NewSigner([]byte(strings.Repeat(key, 32)[:32]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// publishSigned publishes data as is with sig as its signature header.
func publishSigned(t testing.TB, bus *events.Bus, typ, msgID string, data []byte, sig string) {
	t.Helper()
	m := &nats.Msg{Subject: bus.Subject(typ), Data: data, Header: nats.Header{}}
	m.Header.Set(events.HeaderSignature, sig)
	if _, err := bus.JetStream().PublishMsg(context.Background(), m, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

// A match.ended that no game node signed (hand-made with a raw NATS client
// on a bus it could reach, signed with another key, or a genuine event
// with its scores edited) is dead-lettered with the reason and never
// reaches the matches, stats or leaderboards; genuine events pass, and a
// genuine dead letter replayed keeps its signature and is applied.
func TestForgedEventsRefused(t *testing.T) {
	bus := openEmbedded(t)
	st := storetest.SQLite(t)
	fs := &faultStore{st: st}
	key := signer(t, "k")
	cfg := fastConfig()
	cfg.MaxDeliver, cfg.Signer = 2, key
	c := persist.New(bus, fs, cfg, testLog(t))
	start(t, c)
	dlq := persist.NewDLQ(bus)
	pub := events.NewPublisher(bus, events.PublisherConfig{Signer: key}, testLog(t))
	t.Cleanup(func() { _ = pub.Close(context.Background()) })

	genuine := matchID()
	publish(t, pub, startedEv(t, genuine), endedEv(t, genuine))
	waitFor(t, 10*time.Second, "the genuine match", ended(st, genuine, 2))

	cheat := []events.PlayerResult{{AccountID: "mallory", Placement: 1, Score: 999999}}
	unsigned, otherKey, edited := endedEv(t, matchID(), cheat...), endedEv(t, matchID(), cheat...), endedEv(t, matchID())
	publishRaw(t, bus, events.TypeMatchEnded, unsigned.ID, encode(t, unsigned))
	publishSigned(t, bus, events.TypeMatchEnded, otherKey.ID, encode(t, otherKey), signer(t, "x").Sign(encode(t, otherKey)))
	orig := encode(t, edited)
	publishSigned(t, bus, events.TypeMatchEnded, edited.ID,
		bytes.Replace(orig, []byte(`"score":12`), []byte(`"score":999999`), 1), key.Sign(orig))
	waitFor(t, 10*time.Second, "3 dead letters", func() bool { return c.DeadLettered.Load() == 3 })

	if c.Refused.Load() != 3 {
		t.Fatalf("refused %d, want 3", c.Refused.Load())
	}
	list, err := dlq.List(ctx, 10)
	if err != nil || len(list) != 3 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	for i, want := range []struct {
		ev  events.Event
		err string
	}{{unsigned, "unsigned event"}, {otherKey, "bad event signature"}, {edited, "bad event signature"}} {
		if dl := list[i]; dl.EventID != want.ev.ID || dl.MatchID != want.ev.MatchID || !strings.Contains(dl.Error, want.err) {
			t.Errorf("dead letter %d: %+v; want event %s refused with %q", i, dl, want.ev.ID, want.err)
		}
		if _, err := st.Match(ctx, want.ev.MatchID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("forged match %s in the store: %v", want.ev.MatchID, err)
		}
	}
	for _, board := range []string{"global_wins", "arena_best_score"} {
		top, err := st.LeaderboardTop(ctx, board, t0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range top {
			if r.AccountID == "mallory" || r.Value >= 999999 {
				t.Errorf("%s: forged record %+v", board, r)
			}
		}
		if len(top) == 0 {
			t.Errorf("%s: empty, want the genuine match's players", board)
		}
	}
	if s, err := st.PlayerStats(ctx, "mallory"); err != nil || len(s) != 0 {
		t.Fatalf("stats of mallory: %+v, %v", s, err)
	}

	// Replaying a forged dead letter refuses it again.
	if err := dlq.Replay(ctx, list[0].Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the replayed forgery refused again", func() bool { return c.DeadLettered.Load() == 4 })

	// A genuine event dead-lettered (the database down past MaxDeliver)
	// keeps its signature: replayed, it is applied.
	fs.down.Store(true)
	late := matchID()
	publish(t, pub, endedEv(t, late))
	waitFor(t, 10*time.Second, "the genuine event dead-lettered", func() bool { return c.DeadLettered.Load() == 5 })
	fs.down.Store(false)
	list, err = dlq.List(ctx, 10)
	if err != nil || len(list) != 4 || list[3].MatchID != late {
		t.Fatalf("List: %d dead letters, %v; want 4, the last of match %s", len(list), err, late)
	}
	if err := dlq.Replay(ctx, list[3].Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the replayed genuine event", ended(st, late, 2))
	if c.DeadLettered.Load() != 5 {
		t.Fatalf("counters: %s", counters(c))
	}
}
