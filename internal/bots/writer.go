package bots

import (
	"encoding/binary"
	"time"

	"github.com/multijuego/multijuego/games/arena"
)

// writer sends the arena inputs of a share of the players: each player
// sends InputHz inputs a second at its own random phase, from a wheel of
// 5 ms slots.
type writer struct {
	run   *run
	wheel [][]*bot
	slot  time.Duration
}

func newWriter(r *run, i int) *writer {
	period := time.Second / time.Duration(r.cfg.InputHz)
	n := max(int(period/(5*time.Millisecond)), 1)
	w := &writer{run: r, wheel: make([][]*bot, n), slot: period / time.Duration(n)}
	rng := uint64(i)*0x2545F4914F6CDD1D + 99
	for _, b := range r.bots {
		if b == nil || b.idx%r.cfg.Writers != i {
			continue
		}
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		k := int(rng % uint64(n))
		w.wheel[k] = append(w.wheel[k], b)
	}
	return w
}

func (w *writer) loop(stop <-chan struct{}) {
	t := time.NewTicker(w.slot)
	defer t.Stop()
	start := time.Now()
	next := 0
	var frame []byte
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		due := int(time.Since(start) / w.slot)
		if due-next > len(w.wheel) {
			next = due - len(w.wheel) // fell behind a whole period: skip, do not burst
		}
		for ; next <= due; next++ {
			for _, b := range w.wheel[next%len(w.wheel)] {
				if !b.seated.Load() {
					continue
				}
				b.seq++
				if b.seq%10 == 1 {
					b.dx, b.dy = int8(b.key()%255)-127, int8(b.key()%255)-127
				}
				frame = frame[:0]
				var in [2 + arena.InputSize]byte
				binary.LittleEndian.PutUint16(in[:], uint16(arena.OpInput))
				arena.AppendInput(in[2:2], arena.Input{Seq: b.seq, DX: b.dx, DY: b.dy})
				frame = appendFrame(frame, opBinary, in[:], b.key())
				k := b.seq % 64
				b.sentSeq[k].Store(0)
				b.sentAt[k].Store(w.run.now())
				b.sentSeq[k].Store(b.seq)
				if err := b.write(frame); err != nil {
					w.run.fail("player %d: send input: %v", b.idx, err)
					continue
				}
				if w.run.window.Load() {
					b.inputs.Add(1)
				}
			}
		}
	}
}
