package match

import (
	"slices"
	"sync"
	"time"
)

// inbox is a match's bounded input queue and its players' rate limiters.
// Engine.Input (any goroutine) appends under mu; the match goroutine swaps
// the queue out once per tick. Two queues and two payload buffers alternate,
// so steady state allocates nothing.
type inbox struct {
	mu        sync.Mutex
	max       int
	rate      float64 // tokens per second; <= 0 disables the limit
	burst     float64
	kickAfter int

	pending []Input // filled by push
	pbuf    []byte  // payloads of pending
	spare   []Input // being consumed by the match goroutine
	sbuf    []byte

	// ops are the op codes the handler accepts, sorted, when declared
	// (InputOps); set before the match is published, read-only after.
	ops      []OpCode
	declared bool

	seats   map[string]*limiter // by UserID: who may send
	flagged []*limiter          // limiters with a warn or kick for the match goroutine

	dropped, limited uint64
}

type limiter struct {
	p         Presence
	connected bool
	tokens    float64
	last      time.Time
	strikes   int
	warn      bool
	kick      bool
	flagged   bool
}

// maxKeptPayloadBuf is the largest payload buffer kept between ticks.
const maxKeptPayloadBuf = 256 << 10

// action is a rate-limit consequence the match goroutine carries out.
type action struct {
	p          Presence
	warn, kick bool
}

func newInbox(cfg *Config) inbox {
	return inbox{
		max:       cfg.InputQueue,
		rate:      cfg.RateLimit.PerSecond,
		burst:     float64(cfg.RateLimit.Burst),
		kickAfter: cfg.RateLimit.KickAfter,
		pending:   make([]Input, 0, min(cfg.InputQueue, 16)),
		spare:     make([]Input, 0, min(cfg.InputQueue, 16)),
		seats:     make(map[string]*limiter),
	}
}

func (ib *inbox) flag(l *limiter) {
	if !l.flagged {
		l.flagged = true
		ib.flagged = append(ib.flagged, l)
	}
}

func (ib *inbox) push(p Presence, op OpCode, data []byte, now time.Time) error {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	l := ib.seats[p.UserID]
	if l == nil || !l.connected || l.p.SessionID != p.SessionID {
		return ErrNotInMatch
	}
	if ib.rate > 0 {
		if l.kick {
			ib.limited++
			return ErrRateLimited
		}
		if now.After(l.last) {
			l.tokens = min(ib.burst, l.tokens+now.Sub(l.last).Seconds()*ib.rate)
			l.last = now
		}
		if l.tokens < 1 {
			ib.limited++
			l.strikes++
			if l.strikes == 1 {
				l.warn = true
				ib.flag(l)
			}
			if l.strikes >= ib.kickAfter {
				l.kick = true
				ib.flag(l)
			}
			return ErrRateLimited
		}
		if l.tokens >= ib.burst {
			l.strikes = 0 // stayed under the limit long enough: forgiven
		}
		l.tokens--
	}
	if ib.declared && !ib.accepts(op) {
		return ErrUnknownOp // after the rate limit: unknown ops are a flood too
	}
	if len(ib.pending) >= ib.max {
		ib.dropped++
		return ErrQueueFull
	}
	off := len(ib.pbuf)
	ib.pbuf = append(ib.pbuf, data...)
	ib.pending = append(ib.pending, Input{
		Presence: l.p,
		Op:       op,
		Data:     ib.pbuf[off:len(ib.pbuf):len(ib.pbuf)],
		Received: now,
	})
	return nil
}

// accept restricts the inbox to the op codes ops (the handler's InputOps).
func (ib *inbox) accept(ops []OpCode) {
	ib.ops = make([]OpCode, 0, len(ops))
	for _, op := range ops {
		if op < OpReservedMin {
			ib.ops = append(ib.ops, op)
		}
	}
	slices.Sort(ib.ops)
	ib.ops = slices.Compact(ib.ops)
	ib.declared = true
}

// accepts reports whether op is one of the declared op codes.
func (ib *inbox) accepts(op OpCode) bool {
	if len(ib.ops) <= 8 {
		return slices.Contains(ib.ops, op)
	}
	_, ok := slices.BinarySearch(ib.ops, op)
	return ok
}

// swap takes the queued inputs and the pending rate-limit actions (appended
// to acts). The returned inputs stay valid until the next swap.
func (ib *inbox) swap(acts []action) ([]Input, []action) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	clear(ib.spare) // drop references from the previous tick
	in := ib.pending
	ib.pending, ib.spare = ib.spare[:0], in
	next := ib.sbuf[:0]
	if cap(next) > maxKeptPayloadBuf {
		next = nil // a burst of big inputs: do not pin its memory for good
	}
	ib.pbuf, ib.sbuf = next, ib.pbuf
	for _, l := range ib.flagged {
		acts = append(acts, action{p: l.p, warn: l.warn, kick: l.kick})
		l.warn, l.flagged = false, false
	}
	clear(ib.flagged)
	ib.flagged = ib.flagged[:0]
	return in, acts
}

func (ib *inbox) addSeat(p Presence, now time.Time) {
	ib.mu.Lock()
	ib.seats[p.UserID] = &limiter{p: p, connected: true, tokens: ib.burst, last: now}
	ib.mu.Unlock()
}

func (ib *inbox) updateSeat(p Presence, connected bool) {
	ib.mu.Lock()
	if l := ib.seats[p.UserID]; l != nil {
		l.p, l.connected = p, connected
	}
	ib.mu.Unlock()
}

func (ib *inbox) removeSeat(userID string) {
	ib.mu.Lock()
	delete(ib.seats, userID)
	ib.mu.Unlock()
}

func (ib *inbox) counters() (dropped, limited uint64) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return ib.dropped, ib.limited
}
