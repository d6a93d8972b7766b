package wsnet

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
)

// countRel counts its Release calls.
type countRel struct{ n atomic.Int32 }

func (r *countRel) Release() { r.n.Add(1) }

// releases tracks the releasers of accepted and refused sends.
type releases struct {
	accepted, refused []*countRel
}

func (rs *releases) send(c *Conn, frame []byte) bool {
	r := &countRel{}
	ok := c.SendRelease(frame, r)
	if ok {
		rs.accepted = append(rs.accepted, r)
	} else {
		rs.refused = append(rs.refused, r)
	}
	return ok
}

// check waits until every accepted releaser ran, then checks each ran
// exactly once and no refused one ran.
func (rs *releases) check(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, r := range rs.accepted {
		for r.n.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(20 * time.Millisecond) // a second call would come now
	for i, r := range rs.accepted {
		if n := r.n.Load(); n != 1 {
			t.Fatalf("accepted frame %d of %d: Release called %d times, want 1", i, len(rs.accepted), n)
		}
	}
	for i, r := range rs.refused {
		if n := r.n.Load(); n != 0 {
			t.Fatalf("refused frame %d: Release called %d times, want 0", i, n)
		}
	}
}

func TestSendReleaseWritten(t *testing.T) { eachTransport(t, testSendReleaseWritten) }

func testSendReleaseWritten(t *testing.T, tr transport) {
	h := newTestHandler(false)
	_, url := startServer(t, tr, Config{}, h)
	c := dial(t, url, nil)
	sc := waitEvent(t, h.opened, 5*time.Second)
	var rs releases
	for i := range 100 {
		if !rs.send(sc, EncodeFrame(OpBinary, []byte{byte(i)})) {
			t.Fatalf("send %d refused", i)
		}
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 100 {
		m, _, err := wsutil.ReadServerData(c)
		if err != nil || len(m) != 1 || m[0] != byte(i) {
			t.Fatalf("frame %d: got %v %v", i, m, err)
		}
	}
	rs.check(t)
}

// fillUntilRefused sends 16 KiB frames to a client that does not read until
// the connection refuses one.
func fillUntilRefused(t *testing.T, sc *Conn, rs *releases) {
	t.Helper()
	frame := EncodeFrame(OpBinary, bytes.Repeat([]byte{7}, 16<<10))
	deadline := time.Now().Add(10 * time.Second)
	for rs.send(sc, frame) {
		if time.Now().After(deadline) {
			t.Fatal("the connection never refused a frame")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestSendReleaseDroppedBySlowConsumer(t *testing.T) {
	eachTransport(t, testSendReleaseDroppedBySlowConsumer)
}

func testSendReleaseDroppedBySlowConsumer(t *testing.T, tr transport) {
	h := newTestHandler(false)
	_, url := startServer(t, tr, Config{SendQueueLen: 16, WriteTimeout: time.Minute}, h)
	c := dial(t, url, nil) // never reads
	c.shrinkReadBuffer()
	sc := waitEvent(t, h.opened, 5*time.Second)
	var rs releases
	fillUntilRefused(t, sc, &rs)
	if ev := waitEvent(t, h.closed, 5*time.Second); ev.r != ReasonSlowConsumer {
		t.Fatalf("closed with %+v, want slow consumer", ev.r)
	}
	if rs.send(sc, []byte{0x82, 0}) {
		t.Fatal("send after close accepted")
	}
	rs.check(t)
}

func TestSendReleaseDroppedByClose(t *testing.T) { eachTransport(t, testSendReleaseDroppedByClose) }

func testSendReleaseDroppedByClose(t *testing.T, tr transport) {
	h := newTestHandler(false)
	s, url := startServer(t, tr, Config{SendQueueLen: 1 << 20, SendQueueBytes: 1 << 30, WriteTimeout: time.Minute}, h)
	c := dial(t, url, nil) // never reads
	c.shrinkReadBuffer()
	sc := waitEvent(t, h.opened, 5*time.Second)
	var rs releases
	frame := EncodeFrame(OpBinary, bytes.Repeat([]byte{7}, 16<<10))
	for range 200 { // 3.2 MiB: more than the socket buffers hold
		if !rs.send(sc, frame) {
			t.Fatal("send refused")
		}
	}
	_ = s.Close()
	if ev := waitEvent(t, h.closed, 5*time.Second); ev.r != ReasonShutdown {
		t.Fatalf("closed with %+v, want shutdown", ev.r)
	}
	if rs.send(sc, frame) {
		t.Fatal("send after close accepted")
	}
	rs.check(t)
}

// chanRel signals each Release on a channel (no allocation per call).
type chanRel struct{ ch chan struct{} }

func (r *chanRel) Release() { r.ch <- struct{}{} }

// BenchmarkSendRelease sends one frame and waits for its release: the whole
// path from SendRelease through the flusher's write to Release, on an
// established connection whose client discards what it reads.
func BenchmarkSendRelease(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) { benchSendRelease(b, tr) })
	}
}

func benchSendRelease(b *testing.B, tr transport) {
	h := newTestHandler(false)
	_, url := startServer(b, tr, Config{}, h)
	c := dial(b, url, nil)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
	b.Cleanup(wg.Wait)
	b.Cleanup(func() { _ = c.Close() })
	sc := waitEvent(b, h.opened, 5*time.Second)
	frame := EncodeFrame(OpBinary, make([]byte, 64))
	r := &chanRel{ch: make(chan struct{}, 1)}
	b.ReportAllocs()
	for b.Loop() {
		if !sc.SendRelease(frame, r) {
			b.Fatal("refused")
		}
		<-r.ch
	}
}
