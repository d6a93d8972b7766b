package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A snapshot taken while a publisher writes restores, in a new data
// directory, to the stream as the snapshot described it, with the durable
// consumer's acknowledged position.
func TestSnapshotRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := openEmbedded(t, Config{Roles: []string{RoleOperator, RolePersistence}})
	js := src.JetStream()
	for i := range 300 {
		if _, err := js.Publish(ctx, src.Subject(TypeMatchEnded), bytes.Repeat([]byte{byte(i)}, 2000)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, src.EventsStream(), jetstream.ConsumerConfig{Durable: "persist", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(100)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Publishing goes on during the snapshot: the snapshot is the stream
	// at one instant, which its info describes.
	stop := make(chan struct{})
	published := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				published <- nil
				return
			default:
			}
			if _, err := js.Publish(ctx, src.Subject(TypeMatchEnded), []byte(fmt.Sprint(i))); err != nil {
				published <- err
				return
			}
		}
	}()
	snaps := map[string]*bytes.Buffer{}
	infos := map[string]SnapshotInfo{}
	var calls int
	for _, s := range src.Streams() {
		snaps[s] = &bytes.Buffer{}
		if infos[s], err = src.Snapshot(ctx, s, snaps[s], func(int64) { calls++ }); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	ev := infos[src.EventsStream()]
	if ev.Messages < 300 || ev.LastSeq != ev.Messages || ev.Consumers != 1 || calls == 0 {
		t.Fatalf("events snapshot: %+v, %d progress calls", ev, calls)
	}

	dst := openEmbedded(t, Config{Roles: []string{RoleOperator}, NoStreams: true})
	for _, s := range dst.Streams() {
		if err := dst.Restore(ctx, infos[s], bytes.NewReader(snaps[s].Bytes()), nil); err != nil {
			t.Fatal(err)
		}
	}
	st, err := dst.JetStream().Stream(ctx, dst.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().State; got.Msgs != ev.Messages || got.LastSeq != ev.LastSeq {
		t.Fatalf("restored %d messages up to %d, want %d up to %d", got.Msgs, got.LastSeq, ev.Messages, ev.LastSeq)
	}
	ci, err := st.Consumer(ctx, "persist")
	if err != nil {
		t.Fatal(err)
	}
	if floor := ci.CachedInfo().AckFloor.Stream; floor != 100 {
		t.Fatalf("restored consumer's ack floor %d, want 100", floor)
	}

	// A stream that exists is not overwritten.
	if err := dst.Restore(ctx, ev, bytes.NewReader(snaps[src.EventsStream()].Bytes()), nil); err == nil {
		t.Fatal("restore over an existing stream: no error")
	}
}

// Two servers on one store directory would corrupt it: the second is
// refused while the first runs.
func TestEmbeddedStoreLocked(t *testing.T) {
	dir := t.TempDir()
	b := openEmbedded(t, Config{DataDir: dir})
	if _, err := Open(context.Background(), Config{DataDir: dir}, testLog(t)); !errors.Is(err, ErrStoreInUse) {
		t.Fatalf("second server on %s: %v, want ErrStoreInUse", dir, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	openEmbedded(t, Config{DataDir: dir})
}
