package router_test

import (
	"context"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/procstat"
	"github.com/multijuego/multijuego/match"
)

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(tb testing.TB) time.Duration {
	d, err := procstat.CPUTime()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// BenchmarkInputPath is the CPU one player input costs from the gateway to
// the match on a game node: in process (the all-in-one path: Engine.Input
// straight from the gateway) and across NATS (the gateway's router batches
// it, a NATS server carries the batch, the node's router decodes it and
// calls Engine.Input). Every party runs in this process, NATS server
// included, so cpu-ns/input (getrusage) counts the whole path; both paths
// end in the same match, which consumes the inputs at its ticks. Inputs go
// in rounds of [inputRound], each sent once the match has consumed the one
// before last, as players' inputs would between two ticks; so wall time per
// op is mostly waiting for ticks and only cpu-ns/input is meaningful.
func BenchmarkInputPath(b *testing.B) {
	c := startCluster(b, 10, func(cfg *match.Config) {
		cfg.RateLimit.PerSecond = -1 // one player sends every input of the run
		cfg.InputQueue = 4 * inputRound
	})
	ctx := context.Background()
	id, err := c.gw.Create(ctx, idleMode, nil)
	if err != nil {
		b.Fatal(err)
	}
	x := match.Presence{UserID: "ux", SessionID: c.gw.SessionPrefix() + "sx"}
	if err := c.gw.Join(ctx, id, x, nil); err != nil {
		b.Fatal(err)
	}
	move := []byte{4}
	b.Run("in-process", func(b *testing.B) {
		paced(b, func() error { return c.engine.Input(id, x, tictactoe.OpMove, move) })
	})
	b.Run("nats", func(b *testing.B) {
		// The first input goes on the match's subject and teaches the
		// gateway the host; the rest go in the node's batches.
		if err := c.gw.Input(id, x, tictactoe.OpMove, move); err != nil {
			b.Fatal(err)
		}
		waitFor(b, "the host hint", func() bool { return c.gw.Host(id) != "" })
		paced(b, func() error { return c.gw.Input(id, x, tictactoe.OpMove, move) })
		if r := c.gwSide.refusals(); len(r) > 0 {
			b.Fatalf("%d inputs refused on the node, first: %v", len(r), r[0])
		}
	})
}

// inputRound is how many inputs BenchmarkInputPath sends before it looks
// at what the match consumed.
const inputRound = 16384

// paced calls send b.N times in rounds, keeping at most two rounds ahead
// of what the idle match consumed, then waits for the last input, and
// reports CPU per input.
func paced(b *testing.B, send func() error) {
	base := idleConsumed.Load()
	caughtUp := func(sent int) func() bool {
		return func() bool { return idleConsumed.Load()-base >= int64(sent) }
	}
	start := cpuTime(b)
	sent := 0
	for b.Loop() {
		if err := send(); err != nil {
			b.Fatal(err)
		}
		if sent++; sent%inputRound == 0 && sent > 2*inputRound {
			waitFor(b, "the match to consume a round", caughtUp(sent-2*inputRound))
		}
	}
	waitFor(b, "the match to consume every input", caughtUp(sent))
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/input")
}
