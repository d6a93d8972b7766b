package match_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
)

// wsHeader is a stand-in transport header: 0x82 and the length in one byte.
func wsHeader(dst []byte, n int) []byte { return append(dst, 0x82, byte(n)) }

// broadcastFrame returns a frame a match broadcast (from the pool).
func broadcastFrame(t *testing.T) *match.Frame {
	t.Helper()
	snd := &holder{frames: map[string][]*match.Frame{}}
	v := newEnv(t, match.Config{Sender: snd})
	h := &hooks{settings: match.Settings{TickRate: 10, MaxPlayers: 4}}
	h.loop = func(d *match.Dispatcher, _ []match.Input) { _ = d.Broadcast(7, []byte("state")) }
	_ = v.e.Register("m", factory(&events{}, h))
	id := v.create(t, "m", nil)
	_ = v.e.Join(context.Background(), id, pres("a"), nil)
	v.clock.Advance(100 * time.Millisecond)
	return snd.frames["a"][0]
}

// Framed writes the header once, into the room in front of the frame: every
// recipient gets the same bytes, which share the frame's memory.
func TestFramedAddsHeaderInPlace(t *testing.T) {
	f := broadcastFrame(t)

	calls := 0
	header := func(dst []byte, n int) []byte { calls++; return wsHeader(dst, n) }
	var wg sync.WaitGroup
	wires := make([][]byte, 8)
	for i := range wires {
		wg.Go(func() { wires[i] = f.Framed(header) })
	}
	wg.Wait()
	body := f.Bytes()
	w := wires[0]
	if calls != 1 {
		t.Errorf("header computed %d times, want once", calls)
	}
	if len(w) != 2+len(body) || w[0] != 0x82 || int(w[1]) != len(body) || string(w[2:]) != string(body) {
		t.Fatalf("Framed = % x, want 82 %02x then % x", w, len(body), body)
	}
	for _, o := range wires[1:] {
		if &o[0] != &w[0] {
			t.Fatal("recipients got different slices")
		}
	}
	if &w[2] != &body[0] {
		t.Error("Framed copied the frame instead of writing the header in front of it")
	}
}

// A header longer than the headroom, and a parsed frame (no headroom), get
// a copy with the header in front.
func TestFramedCopiesWithoutRoom(t *testing.T) {
	enc := []byte{match.FrameKind, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'x', 'p', 'q'}
	f, err := match.ParseFrame(enc)
	if err != nil {
		t.Fatal(err)
	}
	w := f.Framed(wsHeader)
	if len(w) != 2+len(enc) || w[0] != 0x82 || string(w[2:]) != string(enc) {
		t.Fatalf("parsed frame: Framed = % x", w)
	}
	if enc[0] != match.FrameKind {
		t.Error("Framed wrote into the parsed bytes")
	}
	long := func(dst []byte, n int) []byte { return append(dst, make([]byte, match.Headroom+1)...) }
	g := broadcastFrame(t)
	if w := g.Framed(long); len(w) != match.Headroom+1+len(g.Bytes()) || string(w[match.Headroom+1:]) != string(g.Bytes()) {
		t.Errorf("long header: Framed = % x, frame % x", w, g.Bytes())
	}
}
