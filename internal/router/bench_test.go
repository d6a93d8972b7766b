package router_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/match"
)

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInputPath is the CPU one player input costs from the gateway to
// the engine of the match's game node: in process (the all-in-one path:
// Engine.Input) and across NATS (the gateway's router batches it, a NATS
// server carries the batch, the node's router decodes it and calls
// Engine.Input). Every party runs in this process, NATS server included,
// so cpu-ns/input counts the whole path; ns/op is wall time per input
// with the batches pipelined.
func BenchmarkInputPath(b *testing.B) {
	c := startCluster(b, 10, func(cfg *match.Config) {
		cfg.RateLimit.PerSecond = -1 // the benchmark is one player sending as fast as it can
		cfg.InputQueue = 1 << 22
	})
	ctx := context.Background()
	id, err := c.gw.Create(ctx, idleMode, nil)
	if err != nil {
		b.Fatal(err)
	}
	x := match.Presence{UserID: "ux", SessionID: c.gw.SessionPrefix() + "sx"}
	o := match.Presence{UserID: "uo", SessionID: c.gw.SessionPrefix() + "so"}
	for _, p := range []match.Presence{x, o} {
		if err := c.gw.Join(ctx, id, p, nil); err != nil {
			b.Fatal(err)
		}
	}
	move := []byte{4}
	b.Run("in-process", func(b *testing.B) {
		start := cpuTime(b)
		b.ResetTimer()
		for b.Loop() {
			if err := c.engine.Input(id, x, tictactoe.OpMove, move); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/input")
	})
	b.Run("nats", func(b *testing.B) {
		// The first input goes on the match's subject and teaches the
		// gateway the host; the rest go in the node's batches.
		if err := c.gw.Input(id, x, tictactoe.OpMove, move); err != nil {
			b.Fatal(err)
		}
		waitFor(b, "the host hint", func() bool { return c.gw.Host(id) != "" })
		base := c.node.Received.Load()
		start := cpuTime(b)
		b.ResetTimer()
		for b.Loop() {
			if err := c.gw.Input(id, x, tictactoe.OpMove, move); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, "every input on the node", func() bool { return c.node.Received.Load()-base >= int64(b.N) })
		b.StopTimer()
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/input")
		if r := c.gwSide.refusals(); len(r) > 0 {
			b.Fatalf("%d inputs refused on the node, first: %v", len(r), r[0])
		}
	})
}
