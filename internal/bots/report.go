package bots

import (
	"context"
	"fmt"
	"math"
	"time"
)

// window is what the measuring window saw: the counters at its start and
// end, its length in seconds, and why the server's tick durations could
// not be read, if they could not.
type window struct {
	snap, snap2 counters
	wall        float64
	tickErr     error
}

// measure runs the measuring window (cfg.Duration) and fills res with the
// load tool's, the machine's and the server's use of it; rssBefore is the
// server's memory before the sockets opened (idle mode).
func (r *run) measure(ctx context.Context, res *Result, line func() string, rssBefore int64) (w window, err error) {
	cfg := r.cfg
	var ticksBefore promHistogram
	if cfg.MetricsURL != "-" && cfg.Mode != ModeIdle {
		ticksBefore, w.tickErr = scrapeTicks(ctx, r.hc, cfg.MetricsURL, cfg.Mode)
	}
	w.snap = r.snapshot()
	u0 := sampleUsage(cfg.PID)
	r.window.Store(true)
	err = r.waitProgress(ctx, cfg.Duration, "measuring", line)
	r.window.Store(false)
	if err != nil {
		return w, err
	}
	w.wall = u0.cores(res, sampleUsage(cfg.PID))
	w.snap2 = r.snapshot()
	if cfg.PID > 0 {
		if rss, err := procRSS(cfg.PID); err == nil {
			v := round2(float64(rss) / (1 << 20))
			res.ServerRSSMiB = &v
			if cfg.Mode == ModeIdle && rssBefore > 0 && r.connected.Load() > 0 {
				b := round2(float64(rssBefore) / (1 << 20))
				per := round2(float64(rss-rssBefore) / 1024 / float64(r.connected.Load()))
				res.ServerRSSBeforeMiB, res.ServerKiBPerConn = &b, &per
			}
		}
	}
	if ticksBefore != nil {
		ticksAfter, err := scrapeTicks(ctx, r.hc, cfg.MetricsURL, cfg.Mode)
		if err == nil {
			st := tickDelta(ticksBefore, ticksAfter)
			res.ServerTickMs = &st
		} else {
			w.tickErr = err
		}
	}
	return w, nil
}

// cpuUsage is the CPU time the load tool, the machine and the server (pid; 0
// for none) had used at one instant.
type cpuUsage struct {
	at                 time.Time
	self, busy, server time.Duration
	serverOK           bool // the server's could be read
}

func sampleUsage(pid int) cpuUsage {
	u := cpuUsage{at: time.Now(), self: selfCPU()}
	u.busy, _ = machineBusy()
	if pid > 0 {
		var err error
		u.server, err = procCPU(pid)
		u.serverOK = err == nil
	}
	return u
}

// cores fills res's CPU use, in cores, from u to end (the load tool's,
// the machine's, the server's when it could be read) and returns the
// seconds between them.
func (u cpuUsage) cores(res *Result, end cpuUsage) float64 {
	wall := end.at.Sub(u.at).Seconds()
	res.BotsCPUCores = round2((end.self - u.self).Seconds() / wall)
	res.MachineBusyCores = round2((end.busy - u.busy).Seconds() / wall)
	if u.serverOK && end.serverOK {
		v := round2((end.server - u.server).Seconds() / wall)
		res.ServerCPUCores = &v
	}
	return wall
}

// report fills res with what the window measured: snap and snap2 are the
// counters at its start and end, wall its length in seconds.
func (r *run) report(res *Result, snap, snap2 counters, wall float64) {
	cfg := r.cfg
	res.WindowS = round2(wall)
	res.PlayersConnected = int(r.connected.Load())
	res.PlayersInMatches = int(r.seated.Load())
	res.InputsSentPerS = round2(float64(snap2.inputs-snap.inputs) / wall)
	res.Disconnects = r.disconnects.Load()
	res.Reconnects = r.reconnected.Load()
	res.Errors = r.errors.Load()
	res.GamesCompleted = r.games.Load()
	res.MovesResent = r.resent.Load()
	var states int64
	ticks, inputs := newHistogram(), newHistogram()
	for _, rd := range r.readers {
		rd.mu.Lock()
		states += rd.windowStates
		ticks.merge(rd.tickToClient)
		inputs.merge(rd.inputToState)
		rd.mu.Unlock()
	}
	res.StatesRecvPerS = round2(float64(states) / wall)
	switch cfg.Mode {
	case ModeArena:
		res.StatesExpectedPerS = float64(res.PlayersInMatches * cfg.TickRate)
	case ModeTicTacToe:
		// Every applied move sends the new state to both players.
		res.StatesExpectedPerS = round2(2 * float64(snap2.inputs-snap.inputs) / wall)
	}
	if res.StatesExpectedPerS > 0 {
		res.DeliveryRatio = math.Round(res.StatesRecvPerS/res.StatesExpectedPerS*1000) / 1000
	}
	res.TickToClientMs = ticks.latency()
	res.InputToStateMs = inputs.latency()
	r.errMu.Lock()
	res.ErrorSamples = append([]string(nil), r.errSamples...)
	r.errMu.Unlock()

}

// judge says whether the server kept up with the run (KeepsUp), and if not
// why (KeepsUpFailures). tickErr is why the server's tick durations could
// not be read, if they could not.
func (res *Result) judge(cfg Config, tickErr error) {
	var f []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			f = append(f, fmt.Sprintf(format, args...))
		}
	}
	check(res.PlayersConnected == cfg.Players, "%d of %d players connected", res.PlayersConnected, cfg.Players)
	if cfg.Reconnect {
		check(res.Reconnects == res.Disconnects, "%d disconnects, %d players connected again", res.Disconnects, res.Reconnects)
	} else {
		check(res.Disconnects == 0, "%d disconnects", res.Disconnects)
	}
	check(res.Errors == 0, "%d errors", res.Errors)
	if cfg.Mode != ModeIdle {
		check(res.PlayersInMatches == cfg.Players, "%d of %d players seated", res.PlayersInMatches, cfg.Players)
		check(res.DeliveryRatio >= 0.98, "delivery ratio %.3f < 0.98", res.DeliveryRatio)
		switch {
		case res.ServerTickMs == nil:
			check(false, "no server tick durations (%v)", tickErr)
		case res.ServerTickMs.Ticks == 0:
			check(false, "the server reported no ticks in the window")
		default:
			check(res.ServerTickMs.P99 < 5, "server tick p99 %.2f ms >= 5 ms", res.ServerTickMs.P99)
		}
	}
	if cfg.Mode == ModeArena {
		check(res.TickToClientMs.Count > 0 && res.TickToClientMs.P99 <= 50, "tick_to_client p99 %.2f ms > 50 ms", res.TickToClientMs.P99)
		limit := 1000/float64(cfg.TickRate) + 50
		check(res.InputToStateMs.Count > 0 && res.InputToStateMs.P99 <= limit, "input_to_state p99 %.2f ms > %.0f ms", res.InputToStateMs.P99, limit)
	}
	if cfg.Mode == ModeTicTacToe {
		check(res.GamesCompleted > 0, "no game completed")
	}
	res.KeepsUp = len(f) == 0
	res.KeepsUpFailures = append([]string{}, f...)
}
