//go:build !race

package gateway_test

import (
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// frameCounter reads server frames off a socket without allocating per
// frame (headers are parsed by hand: gobwas's ReadHeader allocates) and
// counts the binary ones.
type frameCounter struct {
	s      *sock
	binary atomic.Int64
}

func (c *frameCounter) run() {
	var buf [4096]byte
	for {
		// Server frames are unmasked: 2 bytes, then a 2 or 8-byte length.
		if _, err := io.ReadFull(c.s, buf[:2]); err != nil {
			return
		}
		op, n := ws.OpCode(buf[0]&0x0f), int64(buf[1]&0x7f)
		ext := 0
		switch n {
		case 126:
			ext = 2
		case 127:
			ext = 8
		}
		if ext > 0 {
			if _, err := io.ReadFull(c.s, buf[:ext]); err != nil {
				return
			}
			n = 0
			for _, b := range buf[:ext] {
				n = n<<8 | int64(b)
			}
		}
		if n > int64(len(buf)) {
			return // no state of 8 players is this long
		}
		if _, err := io.ReadFull(c.s, buf[:n]); err != nil {
			return
		}
		if op == ws.OpBinary {
			c.binary.Add(1)
		}
	}
}

// A running arena match, sent to real sockets by the production sender (the
// realtime gateway on wsnet), allocates nothing per tick in steady state:
// frames come from the match's pool, the gateway writes the WebSocket
// header into each frame's headroom, and the socket releases the frame once
// written. The whole process is measured (runtime.MemStats), so the figure
// includes the transport's readers, flushers and sweeper. The race
// detector's sync.Pool drops items at random, so this runs without it only.
func TestRunningMatchAllocatesNothingPerTick(t *testing.T) {
	e := newEnv(t)
	const players = 8
	counters := make([]*frameCounter, players)
	var matchID string
	for i := range counters {
		s, _ := e.connect("alloc" + string(rune('a'+i)))
		if i == 0 {
			s.sendJSON("match.create", "", map[string]any{"mode": "arena", "params": map[string]string{"tick_rate": "60", "time_limit": "60s"}})
			matchID = s.expect("match.created").Payload["match_id"].(string)
		}
		s.sendJSON("match.join", "", map[string]any{"match_id": matchID})
		s.expect("match.joined")
		_ = s.nc.SetReadDeadline(time.Time{})
		counters[i] = &frameCounter{s: s}
		go counters[i].run() // ends when the test's cleanup closes the socket
	}
	ticks := func() int64 { return counters[0].binary.Load() }
	time.Sleep(time.Second) // warm up: pools, queues, buffers
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := ticks()
	time.Sleep(3 * time.Second)
	runtime.ReadMemStats(&after)
	n := ticks() - t0
	if n < 60 {
		t.Fatalf("only %d frames in 3 s at 60 Hz", n)
	}
	for _, c := range counters[1:] {
		if c.binary.Load() < n {
			t.Errorf("a player got %d frames, the first %d", c.binary.Load(), ticks())
		}
	}
	perTick := float64(after.Mallocs-before.Mallocs) / float64(n)
	t.Logf("%.2f allocations per tick (8 players, %d ticks, whole process)", perTick, n)
	if perTick >= 1 {
		t.Errorf("%.2f allocations per tick in steady state, want < 1 (0 in the match and send path)", perTick)
	}
}
