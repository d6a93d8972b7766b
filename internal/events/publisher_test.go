package events

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/events/eventstest"
)

func TestPublishStoresEvents(t *testing.T) {
	forEachBus(t, func(t *testing.T, b *Bus) {
		p := NewPublisher(b, PublisherConfig{}, testLog(t))
		evs := []Event{started(t, "m1"), moment(t, "m1", 1), moment(t, "m1", 2), ended(t, "m1")}
		for _, ev := range evs {
			if err := p.Publish(ev); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 5*time.Second, "4 acks", func() bool { return p.Published.Load() == 4 })
		closePublisher(t, p)
		msgs := stored(t, b)
		if len(msgs) != len(evs) {
			t.Fatalf("%d messages stored, want %d", len(msgs), len(evs))
		}
		for i, m := range msgs {
			ev := evs[i]
			if m.Subject != b.Subject(ev.Type) || m.Header.Get("Nats-Msg-Id") != ev.ID {
				t.Fatalf("message %d: subject %s id %s, want %s %s", i, m.Subject, m.Header.Get("Nats-Msg-Id"), b.Subject(ev.Type), ev.ID)
			}
			got, err := Decode(m.Data)
			if err != nil {
				t.Fatalf("stored message does not decode: %v", err)
			}
			want, _ := Encode(ev)
			if b2, _ := Encode(got); !bytes.Equal(b2, want) {
				t.Fatalf("stored %s, want %s", b2, want)
			}
		}
		if p.Dropped.Load() != 0 || p.Retried.Load() != 0 || p.Spooled.Load() != 0 || p.Buffered() != 0 {
			t.Fatalf("counters: dropped %d retried %d spooled %d buffered %d", p.Dropped.Load(), p.Retried.Load(), p.Spooled.Load(), p.Buffered())
		}
	})
}

func TestPublishDeduplicates(t *testing.T) {
	forEachBus(t, func(t *testing.T, b *Bus) {
		p1 := NewPublisher(b, PublisherConfig{}, testLog(t))
		p2 := NewPublisher(b, PublisherConfig{}, testLog(t)) // another node, or a replay after a restart
		ev := ended(t, "m1")
		for _, p := range []*Publisher{p1, p1, p2} {
			if err := p.Publish(ev); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 5*time.Second, "3 acks", func() bool { return p1.Published.Load()+p2.Published.Load() == 3 })
		closePublisher(t, p1)
		closePublisher(t, p2)
		if n := len(stored(t, b)); n != 1 {
			t.Fatalf("%d copies stored, want 1", n)
		}
	})
}

func TestPublishRejectsInvalid(t *testing.T) {
	b := openEmbedded(t, Config{})
	p := NewPublisher(b, PublisherConfig{}, testLog(t))
	defer closePublisher(t, p)
	ev := ended(t, "m1")
	ev.Version = 2
	if err := p.Publish(ev); !errors.Is(err, ErrInvalid) {
		t.Fatalf("publish invalid: %v", err)
	}
	if p.Dropped.Load() != 1 {
		t.Fatalf("dropped %d", p.Dropped.Load())
	}
}

// NATS goes away with events in flight and comes back: match.ended
// events all arrive, once; other events arrive once unless Publish said
// they were dropped.
func TestPublishOutage(t *testing.T) {
	srv := eventstest.StartServer(t)
	b := openURL(t, srv.URL())
	spool := t.TempDir()
	p := NewPublisher(b, PublisherConfig{Buffer: 5, SpoolDir: spool, MaxRetryBackoff: 200 * time.Millisecond}, testLog(t))
	defer closePublisher(t, p)

	want := map[string]bool{} // event id -> is match.ended
	publish := func(ev Event) {
		t.Helper()
		switch err := p.Publish(ev); {
		case err == nil:
			want[ev.ID] = ev.Type == TypeMatchEnded
		case errors.Is(err, ErrQueueFull) && ev.Type != TypeMatchEnded:
		default:
			t.Fatalf("publish %s: %v", ev.Type, err)
		}
	}
	for i := 0; i < 3; i++ {
		publish(started(t, "before"+itoa(i)))
	}
	waitFor(t, 5*time.Second, "first events acked", func() bool { return p.Published.Load() == 3 })

	srv.Stop()
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !b.Conn().IsConnected() })
	for i := 0; i < 30; i++ {
		publish(moment(t, "during", i))
		if i%6 == 5 {
			publish(ended(t, "during"+itoa(i)))
		}
	}
	if p.Dropped.Load() == 0 || p.Spooled.Load() == 0 {
		t.Fatalf("with NATS down and a buffer of 5: dropped %d, spooled %d", p.Dropped.Load(), p.Spooled.Load())
	}
	if p.Dropped.Load() != int64(30+5+3-len(want)) {
		t.Fatalf("dropped %d, but Publish refused %d", p.Dropped.Load(), 30+5+3-len(want))
	}
	time.Sleep(300 * time.Millisecond) // a few failed attempts
	if p.Retried.Load() == 0 {
		t.Fatal("no retries counted")
	}

	srv.Restart()
	// and more events after the restart
	for i := 0; i < 3; i++ {
		publish(ended(t, "after"+itoa(i)))
	}
	waitFor(t, 8*time.Second, "every accepted event stored", func() bool { return storedCount(t, b) >= len(want) })
	waitFor(t, 2*time.Second, "spool emptied", func() bool { return p.Buffered() == 0 && spoolFiles(t, spool) == 0 })
	seen := map[string]int{}
	for _, m := range stored(t, b) {
		seen[m.Header.Get("Nats-Msg-Id")]++
	}
	for id, isEnded := range want {
		if seen[id] != 1 {
			t.Errorf("event %s (ended %v) stored %d times", id, isEnded, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d distinct events stored, %d accepted", len(seen), len(want))
	}
	t.Logf("accepted %d, dropped %d, spooled %d, retried %d, published %d", len(want), p.Dropped.Load(), p.Spooled.Load(), p.Retried.Load(), p.Published.Load())
}

func spoolFiles(t testing.TB, dir string) int {
	n := 0
	for _, name := range []string{spoolName, replayName} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Size() > 0 {
			n++
		}
	}
	return n
}

// Close with NATS down spools every match.ended; the next publisher on
// the same directory publishes them.
func TestCloseSpoolsResults(t *testing.T) {
	srv := eventstest.StartServer(t)
	b := openURL(t, srv.URL())
	spool := t.TempDir()
	cfg := PublisherConfig{SpoolDir: spool, MaxRetryBackoff: 100 * time.Millisecond}
	p := NewPublisher(b, cfg, testLog(t))

	srv.Stop()
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !b.Conn().IsConnected() })
	var results []Event
	for i := 0; i < 3; i++ {
		results = append(results, ended(t, "m"+itoa(i)))
		if err := p.Publish(results[i]); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(moment(t, "m"+itoa(i), i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := p.Close(ctx)
	cancel()
	if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "3 events (0 match.ended)") {
		t.Fatalf("close: %v", err)
	}
	if p.Spooled.Load() != 3 || p.Dropped.Load() != 3 {
		t.Fatalf("spooled %d dropped %d", p.Spooled.Load(), p.Dropped.Load())
	}
	// After Close, a result still goes to the spool; anything else is refused.
	results = append(results, ended(t, "late"))
	if err := p.Publish(results[3]); err != nil {
		t.Fatalf("match.ended after close: %v", err)
	}
	if err := p.Publish(moment(t, "late", 0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("event after close: %v", err)
	}
	lines, _ := os.ReadFile(filepath.Join(spool, spoolName))
	if n := bytes.Count(lines, []byte("\n")); n != 4 {
		t.Fatalf("spool holds %d lines, want 4", n)
	}

	srv.Restart()
	waitFor(t, 5*time.Second, "reconnect", func() bool { return b.Conn().IsConnected() })
	p2 := NewPublisher(b, cfg, testLog(t))
	waitFor(t, 5*time.Second, "spooled results published", func() bool { return p2.Published.Load() == 4 })
	closePublisher(t, p2)
	msgs := stored(t, b)
	if len(msgs) != 4 {
		t.Fatalf("%d stored, want 4", len(msgs))
	}
	for i, m := range msgs {
		if m.Header.Get("Nats-Msg-Id") != results[i].ID || m.Subject != b.Subject(TypeMatchEnded) {
			t.Fatalf("message %d: %s %s", i, m.Subject, m.Header.Get("Nats-Msg-Id"))
		}
	}
	if spoolFiles(t, spool) != 0 {
		t.Fatal("spool not emptied")
	}
}

// A torn last line (a crash mid-append) loses only that line: the next
// append starts on a line of its own and the replay skips the torn one.
func TestSpoolTornLine(t *testing.T) {
	dir := t.TempDir()
	good, _ := Encode(ended(t, "m1"))
	if err := os.WriteFile(filepath.Join(dir, spoolName), append(append(good, '\n'), good[:40]...), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	next, _ := Encode(ended(t, "m2"))
	if err := s.append([]item{{data: next}}); err != nil {
		t.Fatal(err)
	}
	b := openEmbedded(t, Config{})
	p := NewPublisher(b, PublisherConfig{SpoolDir: dir}, testLog(t))
	waitFor(t, 5*time.Second, "replay", func() bool { return p.Published.Load() == 2 && spoolFiles(t, dir) == 0 })
	closePublisher(t, p)
	if p.Dropped.Load() != 1 || len(stored(t, b)) != 2 {
		t.Fatalf("dropped %d, stored %d", p.Dropped.Load(), len(stored(t, b)))
	}
}

// BenchmarkPublish measures publish + ack throughput through the
// Publisher on the embedded server, with the default fsync policy and
// with sync=always.
func BenchmarkPublish(b *testing.B) {
	for _, sync := range []string{SyncDefault, SyncAlways} {
		b.Run("sync="+sync, func(b *testing.B) {
			bus := openEmbedded(b, Config{Sync: sync})
			p := NewPublisher(bus, PublisherConfig{Buffer: b.N + 1}, testLog(b))
			evs := make([]Event, b.N)
			for i := range evs {
				evs[i] = moment(b, "bench", i)
			}
			b.ResetTimer()
			start := time.Now()
			for _, ev := range evs {
				if err := p.Publish(ev); err != nil {
					b.Fatal(err)
				}
			}
			for p.Published.Load() < int64(b.N) {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			closePublisher(b, p)
		})
	}
}

// A crash during an outage (no Close) loses no result: once publishing
// fails, match.ended events are on disk, not only in memory.
func TestCrashDuringOutageKeepsResults(t *testing.T) {
	srv := eventstest.StartServer(t)
	b := openURL(t, srv.URL())
	spool := t.TempDir()
	cfg := PublisherConfig{SpoolDir: spool, MaxRetryBackoff: 100 * time.Millisecond}
	p := NewPublisher(b, cfg, testLog(t))
	srv.Stop()
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !b.Conn().IsConnected() })
	var results []Event
	for i := 0; i < 5; i++ {
		results = append(results, ended(t, "m"+itoa(i)))
		if err := p.Publish(results[i]); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(moment(t, "m"+itoa(i), i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "results spooled", func() bool { return p.Spooled.Load() == 5 })
	// The crash: the goroutine stops, Close's final spooling never runs.
	close(p.stop)
	<-p.done

	srv.Restart()
	waitFor(t, 5*time.Second, "reconnect", func() bool { return b.Conn().IsConnected() })
	p2 := NewPublisher(b, cfg, testLog(t))
	waitFor(t, 5*time.Second, "results published", func() bool { return p2.Published.Load() == 5 })
	closePublisher(t, p2)
	seen := map[string]int{}
	for _, m := range stored(t, b) {
		seen[m.Header.Get("Nats-Msg-Id")]++
	}
	for _, ev := range results {
		if seen[ev.ID] != 1 {
			t.Fatalf("result %s stored %d times", ev.ID, seen[ev.ID])
		}
	}
}

// A server that lost its streams (deleted, or a fresh one at the same
// address) gets them back, and the events wait meanwhile.
func TestPublishRecreatesLostStreams(t *testing.T) {
	b := openEmbedded(t, Config{})
	ctx := context.Background()
	if err := b.JetStream().DeleteStream(ctx, b.EventsStream()); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(b, PublisherConfig{MaxRetryBackoff: 100 * time.Millisecond}, testLog(t))
	ev := ended(t, "m1")
	if err := p.Publish(ev); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 8*time.Second, "published", func() bool { return p.Published.Load() == 1 })
	closePublisher(t, p)
	if msgs := stored(t, b); len(msgs) != 1 || msgs[0].Header.Get("Nats-Msg-Id") != ev.ID {
		t.Fatalf("%d stored", len(msgs))
	}
}

// Without a spool, results over the buffer stay in memory (never refused),
// and Close reports them lost if NATS stays down.
func TestNoSpoolKeepsResultsInMemory(t *testing.T) {
	srv := eventstest.StartServer(t)
	b := openURL(t, srv.URL())
	p := NewPublisher(b, PublisherConfig{Buffer: 2, MaxRetryBackoff: 50 * time.Millisecond}, testLog(t))
	srv.Stop()
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !b.Conn().IsConnected() })
	for i := 0; i < 5; i++ {
		if err := p.Publish(ended(t, "m"+itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Publish(moment(t, "m", 0)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("event over the buffer: %v", err)
	}
	if p.Buffered() != 5 {
		t.Fatalf("buffered %d", p.Buffered())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "5 events (5 match.ended)") {
		t.Fatalf("close: %v", err)
	}
	if p.Dropped.Load() != 6 {
		t.Fatalf("dropped %d", p.Dropped.Load())
	}
}
