package match

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

type opKind uint8

const (
	opJoin opKind = iota + 1
	opLeave
	opDisconnect
	opTerminate
	opSnapshot
	opEnd
	opHandoff
	opAbandon
)

// ctlOp is a request queued to the match goroutine.
type ctlOp struct {
	kind  opKind
	p     Presence
	meta  map[string]string
	why   string // opEnd: the reason recorded in the results
	reply chan ctlReply
}

type ctlReply struct {
	err      error
	data     []byte
	snapshot Snapshot // opHandoff
}

type seat struct {
	p         Presence
	connected bool
	since     time.Time // when the connection dropped
}

type pendingKick struct {
	p      Presence
	reason Reason
}

// warnRateLimited is the payload of the rate-limit warning frame.
var warnRateLimited = []byte(ReasonRateLimited)

// match is one hosted match. Fields below the "goroutine-owned" line are
// touched only by the match goroutine (and by Create before it starts).
type match struct {
	e    *Engine
	id   string
	mode string
	seq  uint64 // creation order; set before the match is published
	log  *slog.Logger
	in   inbox
	ctl  chan ctlOp
	stop chan struct{}
	done chan struct{}

	stopOnce      sync.Once
	framesDropped atomic.Uint64
	tickNanos     atomic.Int64 // smoothed duration of a tick (real time)
	created       time.Time

	infoMu   sync.Mutex
	label    string
	nplayers int
	players  []string // user ids of the seats, in seat order
	open     bool

	// goroutine-owned
	h           Handler
	watch       ConnectionWatcher
	snap        Snapshotter // nil if h is not one
	d           Dispatcher
	ticker      Ticker
	tickRate    int
	maxPlayers  int
	params      Params // the creation parameters, for snapshots
	restored    bool   // started by Restore: OnStart was reported by the first node
	emitTick    uint64 // the tick of the last Emit
	emitCount   int    // events emitted during emitTick
	tick        uint64
	seats       []*seat
	byUser      map[string]*seat
	acts        []action
	kicks       []pendingKick
	ending      bool
	results     Results
	terminating bool
	deadline    time.Time
	emptySince  time.Time // when the last seat emptied (or the first tick); zero while someone is seated
	finished    bool
	crashed     bool          // a callback panicked; finish takes no final snapshot
	reply       chan ctlReply // pending answer to the control request being handled
	replyVal    ctlReply
}

func newMatch(e *Engine, id, mode string) *match {
	m := &match{
		e:       e,
		id:      id,
		mode:    mode,
		log:     e.log.With("match_id", id, "mode", mode),
		in:      newInbox(&e.cfg),
		ctl:     make(chan ctlOp, 16),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		created: e.clock.Now(),
		byUser:  make(map[string]*seat),
	}
	m.d.m = m
	return m
}

// init makes the handler and runs its Init, on the caller's goroutine (the
// match goroutine does not exist yet). With checkKeys (a creation, not a
// restore) a handler declaring its ParamKeys gets no other parameter.
func (m *match) init(f Factory, params Params, checkKeys bool) (err error) {
	defer func() {
		if v := recover(); v != nil {
			logPanic(m.log, "match handler panicked in Init", v)
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, v)
		}
	}()
	m.h = f()
	if m.h == nil {
		return errors.New("match: factory returned a nil handler")
	}
	m.watch, _ = m.h.(ConnectionWatcher)
	m.snap, _ = m.h.(Snapshotter)
	if pk, ok := m.h.(ParamKeys); ok && checkKeys {
		if err := params.unknownKey(pk.ParamKeys()); err != nil {
			return err
		}
	}
	m.d.inInit, m.d.active = true, true
	s, err := m.h.Init(&m.d, params)
	m.d.inInit, m.d.active = false, false
	if err != nil {
		return err
	}
	switch {
	case s.TickRate < 1 || s.TickRate > 128:
		return fmt.Errorf("%w: tick rate %d not in 1..128", ErrInvalidSettings, s.TickRate)
	case s.MaxPlayers < 1 || s.MaxPlayers > m.e.cfg.MaxPlayers:
		return fmt.Errorf("%w: max players %d not in 1..%d", ErrInvalidSettings, s.MaxPlayers, m.e.cfg.MaxPlayers)
	case len(s.Label) > MaxLabelLen:
		return fmt.Errorf("%w: label longer than %d bytes", ErrInvalidSettings, MaxLabelLen)
	}
	m.tickRate, m.maxPlayers, m.label, m.params = s.TickRate, s.MaxPlayers, s.Label, maps.Clone(params)
	if io, ok := m.h.(InputOps); ok {
		m.in.accept(io.InputOps())
	}
	m.updateInfo()
	return nil
}

// send queues op to the match goroutine.
func (m *match) send(ctx context.Context, op ctlOp) error {
	select {
	case m.ctl <- op:
		return nil
	case <-m.done:
		return ErrNotFound
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call queues op and waits for the match goroutine's answer, both until
// ctx is done at most. An op ctx ended after it was queued is still carried
// out (the reply channel has room, so the match goroutine never waits for a
// caller that left); the caller gets ctx's error and does not know the
// outcome.
func (m *match) call(ctx context.Context, op ctlOp) (ctlReply, error) {
	op.reply = make(chan ctlReply, 1)
	if err := m.send(ctx, op); err != nil {
		return ctlReply{}, err
	}
	return m.await(ctx, op.reply)
}

// await waits for the answer to a queued op, until ctx is done at most.
func (m *match) await(ctx context.Context, reply chan ctlReply) (ctlReply, error) {
	select {
	case r := <-reply:
		return r, r.err
	case <-ctx.Done():
		return ctlReply{}, ctx.Err()
	case <-m.done:
		// finish answers before it closes done: an answer may be waiting.
		select {
		case r := <-reply:
			return r, r.err
		default:
			return ctlReply{}, ErrNotFound
		}
	}
}

func (m *match) run() {
	defer m.recoverCrash()
	if fn := m.e.cfg.OnStart; fn != nil && !m.restored {
		m.infoMu.Lock()
		label := m.label
		m.infoMu.Unlock()
		fn(Started{ID: m.id, Mode: m.mode, Label: label, Created: m.created, TickRate: m.tickRate})
	}
	if m.e.cfg.SnapshotEvery > 0 && !m.restored {
		m.snapshot(false) // tick 0: a match lost before its first periodic snapshot can be restored
	}
	tc := m.ticker.C()
	for !m.finished {
		select {
		case op := <-m.ctl:
			m.control(op)
		case <-tc:
			start := time.Now() // real time, not the engine's Clock
			m.onTick()
			if !m.finished {
				d := time.Since(start)
				// Exponential moving average over about 16 ticks.
				old := m.tickNanos.Load()
				m.tickNanos.Store(old + (int64(d)-old)/16)
				if fn := m.e.cfg.OnTick; fn != nil {
					fn(m.mode, d)
				}
			}
			if !m.finished {
				m.ticker.Done()
			}
		case <-m.stop:
			m.finish(Results{Reason: string(ReasonShutdown)}, ReasonShutdown)
		}
	}
}

// recoverCrash ends the match after a panic in a callback (or in the
// Sender): everyone is closed with ReasonMatchError and the match removed.
// Nothing outside this match is affected.
func (m *match) recoverCrash() {
	v := recover()
	if v == nil {
		return
	}
	logPanic(m.log, "match panicked; ending the match", v)
	if m.finished {
		return // the panic came from finish itself; it already cleaned up
	}
	m.d.active, m.ending, m.kicks, m.crashed = false, false, nil, true
	defer func() {
		if v := recover(); v != nil {
			logPanic(m.log, "panic while ending a crashed match", v)
		}
	}()
	m.finish(Results{Reason: string(ReasonMatchError)}, ReasonMatchError)
}

// stopNow asks the match goroutine to end the match at once.
func (m *match) stopNow() { m.stopOnce.Do(func() { close(m.stop) }) }

func (m *match) enter() { m.d.active = true }
func (m *match) exit()  { m.d.active = false }

func (m *match) control(op ctlOp) {
	var r ctlReply
	switch op.kind {
	case opJoin:
		r.err = m.join(op.p, op.meta)
	case opLeave:
		r.err = m.leave(op.p)
	case opDisconnect:
		r.err = m.disconnect(op.p)
	case opTerminate:
		m.terminate()
	case opEnd:
		// Ended from outside (an operator): no results, at once. finish
		// answers before the match is gone.
		m.reply, m.replyVal = op.reply, r
		m.finish(Results{Reason: op.why}, ReasonEndedByOperator)
		return
	case opSnapshot:
		if m.snap != nil {
			r.data, r.err = m.snap.Snapshot()
		} else {
			r.err = ErrNotSupported
		}
	case opHandoff:
		m.reply, m.replyVal = op.reply, r
		m.handoff()
		return
	case opAbandon:
		m.reply, m.replyVal = op.reply, r
		m.removeHere()
		return
	}
	// Answer once the request's consequences are carried out; finish
	// answers first if they end the match, so the caller sees the outcome
	// rather than ErrNotFound.
	m.reply, m.replyVal = op.reply, r
	m.settle()
	m.answer()
}

// answer sends the pending control reply, if any (the channel has room).
func (m *match) answer() {
	if m.reply != nil {
		m.reply <- m.replyVal
		m.reply = nil
	}
}

func (m *match) join(p Presence, meta map[string]string) error {
	if s := m.byUser[p.UserID]; s != nil {
		if s.connected && s.p.SessionID == p.SessionID {
			return nil // already seated
		}
		old, wasConnected := s.p, s.connected
		s.p, s.connected = p, true
		m.in.updateSeat(p, true)
		if wasConnected {
			m.e.sender.Close(old, m.id, ReasonReplaced)
		}
		if m.watch != nil {
			m.enter()
			m.watch.Reconnected(&m.d, p)
			m.exit()
		}
		return nil
	}
	if m.terminating {
		return ErrShuttingDown
	}
	if len(m.seats) >= m.maxPlayers {
		return ErrMatchFull
	}
	m.enter()
	err := m.h.JoinAttempt(&m.d, p, meta)
	m.exit()
	if err != nil {
		return &RejectedError{Reason: err.Error()}
	}
	if m.ending {
		return ErrEnded
	}
	s := &seat{p: p, connected: true}
	m.seats = append(m.seats, s)
	m.byUser[p.UserID] = s
	m.in.addSeat(p, m.e.clock.Now())
	m.updateInfo()
	m.enter()
	m.h.Join(&m.d, p)
	m.exit()
	return nil
}

func (m *match) leave(p Presence) error {
	s := m.byUser[p.UserID]
	if s == nil || s.p.SessionID != p.SessionID {
		return ErrNotInMatch
	}
	m.removeSeat(s, ReasonLeft)
	return nil
}

func (m *match) disconnect(p Presence) error {
	s := m.byUser[p.UserID]
	if s == nil || s.p.SessionID != p.SessionID {
		return ErrNotInMatch
	}
	if !s.connected {
		return nil
	}
	if m.e.cfg.DisconnectGrace < 0 {
		m.removeSeat(s, ReasonDisconnected)
		return nil
	}
	s.connected, s.since = false, m.e.clock.Now()
	m.in.updateSeat(s.p, false)
	if m.watch != nil {
		m.enter()
		m.watch.Disconnected(&m.d, s.p)
		m.exit()
	}
	return nil
}

// removeSeat frees s: the gateway is told (Close), then the handler (Leave).
func (m *match) removeSeat(s *seat, reason Reason) {
	if i := slices.Index(m.seats, s); i >= 0 {
		m.seats = slices.Delete(m.seats, i, i+1)
	}
	delete(m.byUser, s.p.UserID)
	m.in.removeSeat(s.p.UserID)
	m.updateInfo()
	m.e.sender.Close(s.p, m.id, reason)
	m.enter()
	m.h.Leave(&m.d, s.p, reason)
	m.exit()
}

func (m *match) terminate() {
	if m.terminating || m.ending {
		return
	}
	grace := max(m.e.cfg.ShutdownGrace, 0)
	m.terminating = true
	m.deadline = m.e.clock.Now().Add(grace)
	m.updateInfo()
	m.enter()
	m.h.Terminate(&m.d, grace)
	m.exit()
	if grace == 0 && !m.ending {
		m.settle()
		m.finish(Results{Reason: string(ReasonShutdown)}, ReasonShutdown)
	}
}

// settle carries out what the last callback asked for: kicks (each calling
// Leave, which may kick again), then the end of the match.
func (m *match) settle() {
	for i := 0; !m.finished; i++ {
		if m.ending {
			m.kicks = m.kicks[:0]
			m.finish(m.results, ReasonMatchEnded)
			return
		}
		if i >= len(m.kicks) {
			clear(m.kicks)
			m.kicks = m.kicks[:0]
			return
		}
		k := m.kicks[i]
		if s := m.byUser[k.p.UserID]; s != nil {
			m.removeSeat(s, k.reason)
		}
	}
}

func (m *match) onTick() {
	m.tick++
	now := m.e.clock.Now()
	if m.terminating && !now.Before(m.deadline) {
		m.finish(Results{Reason: string(ReasonShutdown)}, ReasonShutdown)
		return
	}
	inputs, acts := m.in.swap(m.acts[:0])
	m.acts = acts
	for _, a := range acts {
		s := m.byUser[a.p.UserID]
		if s == nil || s.p.SessionID != a.p.SessionID {
			continue
		}
		if a.warn {
			m.broadcast(OpWarning, warnRateLimited, s.p)
		}
		if a.kick {
			m.kicks = append(m.kicks, pendingKick{s.p, ReasonRateLimited})
		}
	}
	clear(acts)
	if grace := m.e.cfg.DisconnectGrace; grace >= 0 {
		for _, s := range m.seats {
			if !s.connected && now.Sub(s.since) >= grace {
				m.kicks = append(m.kicks, pendingKick{s.p, ReasonDisconnected})
			}
		}
	}
	m.settle()
	if m.finished || m.endIfEmpty(now) {
		return
	}
	n := 0
	for i := range inputs {
		s := m.byUser[inputs[i].Presence.UserID]
		if s != nil && s.connected && s.p.SessionID == inputs[i].Presence.SessionID {
			inputs[n] = inputs[i]
			n++
		}
	}
	m.enter()
	m.h.Loop(&m.d, inputs[:n])
	m.exit()
	m.settle()
	if every := m.e.cfg.SnapshotEvery; every > 0 && !m.finished && m.tick%uint64(every) == 0 {
		m.snapshot(false)
	}
}

// endIfEmpty ends the match once nobody has been seated for
// Config.EmptyTimeout, and reports whether it did.
func (m *match) endIfEmpty(now time.Time) bool {
	if len(m.seats) > 0 {
		m.emptySince = time.Time{}
		return false
	}
	if m.emptySince.IsZero() {
		m.emptySince = now
	}
	if t := m.e.cfg.EmptyTimeout; t <= 0 || now.Sub(m.emptySince) < t {
		return false
	}
	m.finish(Results{Reason: string(ReasonEmpty)}, ReasonEmpty)
	return true
}

// snapshot hands the handler's state to Config.OnSnapshot, if the handler is
// a Snapshotter and someone listens. A Snapshot error is logged and the
// snapshot skipped; a panic propagates like any callback's.
func (m *match) snapshot(final bool) {
	if m.snap == nil || m.e.cfg.OnSnapshot == nil {
		return
	}
	s, err := m.takeSnapshot(final)
	if err != nil {
		m.log.Error("match snapshot failed; skipped", "tick", m.tick, "final", final, "err", err)
		return
	}
	m.e.cfg.OnSnapshot(s)
}

// takeSnapshot asks the handler for its state (m.snap is not nil) and adds
// the engine's.
func (m *match) takeSnapshot(final bool) (Snapshot, error) {
	data, err := m.snap.Snapshot()
	if err != nil {
		return Snapshot{}, err
	}
	m.infoMu.Lock()
	label := m.label
	m.infoMu.Unlock()
	seats := make([]SeatState, len(m.seats))
	for i, s := range m.seats {
		seats[i] = SeatState{Presence: s.p, Connected: s.connected}
	}
	return Snapshot{
		MatchID: m.id, Mode: m.mode, Label: label,
		Tick: m.tick, Players: len(m.seats), Taken: m.e.clock.Now(),
		Data: data, Final: final, Params: m.params, Seats: seats, Created: m.created,
	}, nil
}

// finalSnapshot takes the snapshot of a match that is ending (but did not
// crash: its handler's state is then suspect). The match ends anyway, so a
// panic here is only logged.
func (m *match) finalSnapshot() {
	if m.crashed || m.snap == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			logPanic(m.log, "match panicked in its final snapshot", v)
		}
	}()
	m.snapshot(true)
}

// broadcast encodes one frame and hands it to every recipient: to (matched
// by UserID), or every connected seat if to is empty.
func (m *match) broadcast(op OpCode, data []byte, to ...Presence) {
	f := newFrame(m.id, m.tick, op, data)
	if len(to) == 0 {
		for _, s := range m.seats {
			if s.connected {
				m.deliver(s.p, f)
			}
		}
	} else {
		for i := range to {
			if s := m.byUser[to[i].UserID]; s != nil && s.connected {
				m.deliver(s.p, f)
			}
		}
	}
	f.Release()
}

func (m *match) deliver(p Presence, f *Frame) {
	f.retain()
	if !m.e.sender.Send(p, f) {
		f.Release()
		m.framesDropped.Add(1)
	}
}

// finish ends the match: the final snapshot is taken, every seated player
// is closed with reason, OnEnd gets the summary, the match is removed. Only
// the ticker's Stop comes last, so a manual clock's Advance returns after all
// of it.
func (m *match) finish(r Results, reason Reason) {
	if m.finished {
		return
	}
	m.finished = true
	m.d.active = false
	defer func() {
		m.e.remove(m.id)
		m.answer()
		close(m.done)
		m.ticker.Stop()
	}()
	m.updateInfo()
	m.finalSnapshot()
	for _, s := range m.seats {
		m.e.sender.Close(s.p, m.id, reason)
	}
	if m.e.cfg.OnEnd != nil {
		m.infoMu.Lock()
		label := m.label
		m.infoMu.Unlock()
		m.e.cfg.OnEnd(Summary{
			ID: m.id, Mode: m.mode, Label: label,
			Created: m.created, Ended: m.e.clock.Now(),
			Ticks: m.tick, Results: r,
		})
	}
}

func (m *match) updateInfo() {
	m.infoMu.Lock()
	m.nplayers = len(m.seats)
	m.players = m.players[:0]
	for _, s := range m.seats {
		m.players = append(m.players, s.p.UserID)
	}
	m.open = !m.terminating && !m.ending && !m.finished && len(m.seats) < m.maxPlayers
	m.infoMu.Unlock()
}

func (m *match) info() Info {
	dropped, limited := m.in.counters()
	m.infoMu.Lock()
	defer m.infoMu.Unlock()
	return Info{
		ID: m.id, Mode: m.mode, Label: m.label,
		TickRate: m.tickRate, Players: m.nplayers, MaxPlayers: m.maxPlayers,
		Open: m.open, Created: m.created,
		PlayerIDs:     slices.Clone(m.players),
		TickTime:      time.Duration(m.tickNanos.Load()),
		InputsDropped: dropped, InputsRateLimited: limited,
		FramesDropped: m.framesDropped.Load(),
	}
}
