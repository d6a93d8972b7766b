package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
)

// batchPub is one publish a batcher made.
type batchPub struct {
	subject string
	data    []byte
	at      time.Time
}

// batchRecorder is a recording publish func. It copies the data (the
// batcher reuses its buffers) and reports an empty batch as an error.
type batchRecorder struct {
	t    *testing.T
	mu   sync.Mutex
	pubs []batchPub
}

func (r *batchRecorder) publish(subject string, data []byte) {
	if len(data) == 0 {
		r.t.Errorf("publish %s: got an empty batch, want none", subject)
	}
	p := batchPub{subject: subject, data: slices.Clone(data), at: time.Now()}
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
}

func (r *batchRecorder) all() []batchPub {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pubs)
}

// wait returns the publishes once there are at least n, failing after 10s.
func (r *batchRecorder) wait(n int) []batchPub {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p := r.all(); len(p) >= n {
			return p
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("waiting for %d publishes: got %d after 10s", n, len(r.all()))
		}
		time.Sleep(time.Millisecond)
	}
}

// bySubject concatenates the published data per subject.
func batchBySubject(pubs []batchPub) map[string]string {
	out := map[string]string{}
	for _, p := range pubs {
		out[p.subject] += string(p.data)
	}
	return out
}

func batchAdd(b *batcher, subject string, data []byte) {
	b.with(subject, func(bt *batch) { bt.buf = append(bt.buf, data...) })
}

// batchRun runs b until the returned stop is called (or the test ends);
// stop waits for run to return.
func batchRun(t *testing.T, b *batcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.run(ctx) }()
	stop = func() {
		t.Helper()
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("batcher run did not return 10s after its context ended")
		}
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return stop
}

// TestBatcherPublishesTogetherAfterInterval: a subject's messages leave as
// one batch no sooner than the interval after the first; another subject
// has its own batch.
func TestBatcherPublishesTogetherAfterInterval(t *testing.T) {
	const every = 30 * time.Millisecond
	rec := &batchRecorder{t: t}
	b := newBatcher(every, rec.publish)
	first := time.Now()
	batchAdd(b, "a", []byte("1"))
	batchAdd(b, "a", []byte("22"))
	batchAdd(b, "b", []byte("x"))
	batchAdd(b, "a", []byte("333"))
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("before the interval: got %d publishes, want 0", len(got))
	}
	batchRun(t, b) // started after the adds: they are all pending when its timer starts
	pubs := rec.wait(2)
	if len(pubs) != 2 {
		t.Fatalf("publishes: got %d, want 2", len(pubs))
	}
	if got, want := batchBySubject(pubs), map[string]string{"a": "122333", "b": "x"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batches: got %v, want %v", got, want)
	}
	for _, p := range pubs {
		if waited := p.at.Sub(first); waited < every {
			t.Fatalf("batch %s published %v after its first message, want at least the interval %v", p.subject, waited, every)
		}
	}

	// The next message starts a new batch, published after the interval.
	again := time.Now()
	batchAdd(b, "a", []byte("4444"))
	pubs = rec.wait(3)
	if p := pubs[2]; p.subject != "a" || string(p.data) != "4444" {
		t.Fatalf("third publish: got %s %q, want a \"4444\"", p.subject, p.data)
	} else if waited := p.at.Sub(again); waited < every {
		t.Fatalf("third batch published %v after its message, want at least %v", waited, every)
	}
}

// TestBatcherPublishesFullBatchAtOnce: a batch reaching maxBatch is
// published by the call that filled it, without waiting for the interval.
func TestBatcherPublishesFullBatchAtOnce(t *testing.T) {
	rec := &batchRecorder{t: t}
	b := newBatcher(time.Hour, rec.publish)
	stop := batchRun(t, b)

	head := bytes.Repeat([]byte("h"), 100)
	batchAdd(b, "a", head)
	batchAdd(b, "b", bytes.Repeat([]byte("b"), maxBatch-1))
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("below maxBatch: got %d publishes, want 0", len(got))
	}
	tail := bytes.Repeat([]byte("t"), maxBatch-len(head))
	batchAdd(b, "a", tail) // reaches maxBatch exactly
	pubs := rec.all()
	if len(pubs) != 1 || pubs[0].subject != "a" || !bytes.Equal(pubs[0].data, append(slices.Clone(head), tail...)) {
		t.Fatalf("after filling a: got %d publishes (%v), want a's %d bytes", len(pubs), batchSizes(pubs), maxBatch)
	}

	// One message bigger than maxBatch goes alone, at once.
	huge := bytes.Repeat([]byte("H"), maxBatch+10)
	batchAdd(b, "c", huge)
	pubs = rec.all()
	if len(pubs) != 2 || pubs[1].subject != "c" || !bytes.Equal(pubs[1].data, huge) {
		t.Fatalf("after an oversized message: got publishes %v, want a then c (%d bytes)", batchSizes(pubs), len(huge))
	}

	// a starts again empty; what is pending leaves when the run ends.
	batchAdd(b, "a", []byte("z"))
	stop()
	pubs = rec.all()
	if len(pubs) != 4 {
		t.Fatalf("after stop: got publishes %v, want 4", batchSizes(pubs))
	}
	rest := batchBySubject(pubs[2:])
	if rest["a"] != "z" || rest["b"] != string(bytes.Repeat([]byte("b"), maxBatch-1)) || len(rest) != 2 {
		t.Fatalf("flushed at stop: got %v, want a \"z\" and b's %d bytes", batchSizes(pubs[2:]), maxBatch-1)
	}
}

func batchSizes(pubs []batchPub) []string {
	var out []string
	for _, p := range pubs {
		out = append(out, fmt.Sprintf("%s:%d", p.subject, len(p.data)))
	}
	return out
}

// TestBatcherFlushesOnStop: when run's context ends every pending batch is
// published, however long the interval.
func TestBatcherFlushesOnStop(t *testing.T) {
	rec := &batchRecorder{t: t}
	b := newBatcher(time.Hour, rec.publish)
	stop := batchRun(t, b)
	batchAdd(b, "a", []byte("1"))
	batchAdd(b, "b", []byte("2"))
	batchAdd(b, "a", []byte("3"))
	batchAdd(b, "c", []byte("4"))
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("before stop: got %d publishes, want 0", len(got))
	}
	stop()
	pubs := rec.all()
	if got, want := batchBySubject(pubs), map[string]string{"a": "13", "b": "2", "c": "4"}; len(pubs) != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after stop: got %v (%d publishes), want %v in 3", got, len(pubs), want)
	}

	// A run whose context has already ended flushes what is pending and
	// returns.
	batchAdd(b, "d", []byte("5"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { defer close(done); b.run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run with an ended context: did not return within 10s")
	}
	if pubs := rec.all(); len(pubs) != 4 || pubs[3].subject != "d" || string(pubs[3].data) != "5" {
		t.Fatalf("run with an ended context: got publishes %v, want d \"5\" last of 4", batchSizes(pubs))
	}
}

// TestBatcherNoEmptyBatch: wake-ups that find nothing pending (the batch
// already left full, or joined an earlier flush) publish nothing.
func TestBatcherNoEmptyBatch(t *testing.T) {
	rec := &batchRecorder{t: t}
	b := newBatcher(20*time.Millisecond, rec.publish)
	b.flush() // nothing pending
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("flush of an idle batcher: got %d publishes, want 0", len(got))
	}
	batchRun(t, b)

	waitWoken := func() { // until run has taken the wake-up token
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(b.wake) > 0 {
			if time.Now().After(deadline) {
				t.Fatal("run did not take its wake-up within 10s")
			}
			time.Sleep(time.Millisecond)
		}
	}

	// The only pending batch leaves full before the timer: the timer's
	// flush finds nothing.
	batchAdd(b, "a", []byte("small"))
	waitWoken()
	batchAdd(b, "a", bytes.Repeat([]byte("f"), maxBatch))
	// A second subject during the wait leaves a wake-up for a later,
	// possibly empty, round.
	batchAdd(b, "b", []byte("b1"))
	waitWoken()
	batchAdd(b, "c", []byte("c1"))

	// A last message after all that: once it is out, every earlier round
	// has run.
	rec.wait(3)
	waitWoken()
	batchAdd(b, "z", []byte("last"))
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(rec.all(), func(p batchPub) bool { return p.subject == "z" }) {
		if time.Now().After(deadline) {
			t.Fatalf("z's batch not published within 10s: got %v", batchSizes(rec.all()))
		}
		time.Sleep(time.Millisecond)
	}
	pubs := rec.all()
	got := batchBySubject(pubs)
	want := map[string]string{"a": "small" + string(bytes.Repeat([]byte("f"), maxBatch)), "b": "b1", "c": "c1", "z": "last"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("published: got %v, want a (%d bytes), b, c, z", batchSizes(pubs), len(want["a"]))
	}
	for _, p := range pubs {
		if len(p.data) == 0 {
			t.Fatalf("published %v: got an empty batch, want none", batchSizes(pubs))
		}
	}
}

// TestBatcherConcurrentProducers: producers on several goroutines, with
// batches leaving both on the timer and full: every message is published
// exactly once, whole, and on a subject that never fills up each
// producer's messages keep their order.
func TestBatcherConcurrentProducers(t *testing.T) {
	rec := &batchRecorder{t: t}
	b := newBatcher(time.Millisecond, rec.publish)
	stop := batchRun(t, b)
	const producers, perProducer = 4, 300
	const small, big = 16, 4096 // record sizes; "small" totals 19,200 bytes, under maxBatch
	record := func(size, p, seq int) []byte {
		r := make([]byte, size)
		r[0] = byte(p)
		binary.LittleEndian.PutUint32(r[1:], uint32(seq))
		return r
	}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range perProducer {
				batchAdd(b, "small", record(small, p, seq))
				batchAdd(b, "big", record(big, p, seq))
				if seq%50 == 0 {
					time.Sleep(time.Millisecond) // let some timed batches go
				}
			}
		}()
	}
	wg.Wait()
	stop()

	full := 0
	for _, p := range rec.all() {
		if len(p.data) >= maxBatch {
			full++
		}
	}
	if full == 0 { // timing: a slow machine may flush every batch on the timer
		t.Logf("no batch filled up (all %d bytes of big records left on the timer)", producers*perProducer*big)
	}
	got := batchBySubject(rec.all())
	for _, sub := range []struct {
		name    string
		size    int
		ordered bool
	}{{"small", small, true}, {"big", big, false}} {
		data := []byte(got[sub.name])
		if len(data) != producers*perProducer*sub.size {
			t.Fatalf("%s: got %d bytes, want %d", sub.name, len(data), producers*perProducer*sub.size)
		}
		seen := map[[2]int]bool{}
		next := make([]int, producers)
		for off := 0; off < len(data); off += sub.size {
			r := data[off : off+sub.size]
			p, seq := int(r[0]), int(binary.LittleEndian.Uint32(r[1:]))
			if p >= producers || seq >= perProducer || !bytes.Equal(r, record(sub.size, p, seq)) {
				t.Fatalf("%s: record at %d: got %x, want a whole record", sub.name, off, r[:8])
			}
			if seen[[2]int{p, seq}] {
				t.Fatalf("%s: producer %d message %d: got it twice, want once", sub.name, p, seq)
			}
			seen[[2]int{p, seq}] = true
			if sub.ordered {
				if seq != next[p] {
					t.Fatalf("%s: producer %d: got message %d, want %d (in order)", sub.name, p, seq, next[p])
				}
				next[p]++
			}
		}
	}
}

// TestBatcherSealsFrameRun: a frame run pending in a batch is encoded when
// the batch leaves, as one frame entry listing its sessions, after what
// was appended before it.
func TestBatcherSealsFrameRun(t *testing.T) {
	frameBytes := append([]byte{match.FrameKind, 7, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}, "m1payload"...)
	f, err := match.ParseFrame(frameBytes)
	if err != nil {
		t.Fatalf("ParseFrame: %v", err)
	}
	rec := &batchRecorder{t: t}
	b := newBatcher(time.Hour, rec.publish)
	b.with("g", func(bt *batch) {
		bt.seal()
		bt.buf = appendClose(bt.buf, "m0", match.Presence{SessionID: "gw/0", UserID: "u0"}, "left")
	})
	b.with("g", func(bt *batch) {
		bt.seal()
		bt.run.f, bt.run.sessions = f, append(bt.run.sessions, "gw/1")
	})
	b.with("g", func(bt *batch) { bt.run.sessions = append(bt.run.sessions, "gw/2") })
	b.flush()
	pubs := rec.all()
	if len(pubs) != 1 {
		t.Fatalf("publishes: got %d, want 1", len(pubs))
	}
	outs, err := wireDecodeOut(pubs[0].data)
	if err != nil {
		t.Fatalf("decodeOut: got %v, want nil", err)
	}
	wireSameOuts(t, "published batch", outs, []Out{
		{Kind: kindClose, Match: "m0", Presence: match.Presence{SessionID: "gw/0", UserID: "u0"}, Reason: "left"},
		{Kind: kindFrame, Frame: frameBytes, Sessions: []string{"gw/1", "gw/2"}},
	})
}

// TestBatcherKeepsSubjectOrder: a batch filled past maxBatch while an
// older batch of the same subject is being published goes out after it
// (one player's inputs stay in order).
func TestBatcherKeepsSubjectOrder(t *testing.T) {
	rec := &batchRecorder{t: t}
	release := make(chan struct{})
	first := true
	b := newBatcher(time.Hour, func(subject string, data []byte) {
		if first {
			first = false
			<-release // the older batch is slow to go out
		}
		rec.publish(subject, data)
	})
	batchAdd(b, "m.1.in", []byte("X"))
	flushed := make(chan struct{})
	go func() { defer close(flushed); b.flush() }()
	// Wait until flush holds X (the pending map is empty again).
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flush never took the batch")
		}
		time.Sleep(time.Millisecond)
	}
	filled := make(chan struct{})
	go func() { defer close(filled); batchAdd(b, "m.1.in", bytes.Repeat([]byte("Y"), maxBatch)) }()
	time.Sleep(20 * time.Millisecond) // let the full batch try to go out first
	close(release)
	<-flushed
	<-filled
	pubs := rec.wait(2)
	if got := string(pubs[0].data); got != "X" {
		t.Fatalf("first publish: got %.10q, want X (the older batch)", got)
	}
}
