package match

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
)

// A live match can move between engines (game nodes): Handoff stops it on
// one at a tick boundary and returns its snapshot, Restore starts it from
// that snapshot on another. Between the two the match does not exist
// anywhere; the players' seats, the tick count and the handler's state
// carry over, and nobody is told it moved (no Close, no Leave, no OnEnd
// here, no OnStart or Join there). The same Restore takes a match over
// from the last periodic snapshot of a node that died.

// ErrHosted is returned by [Engine.Restore] for a match this engine
// already runs.
var ErrHosted = errors.New("match: the match already runs on this engine")

// Handoff stops match id between two ticks and returns its snapshot, for
// [Engine.Restore] on another engine. The snapshot is also passed to
// [Config.OnSnapshot] (not Final), so it is stored like a periodic one. It
// fails with [ErrNotSupported] if the handler is not a [Snapshotter], the
// Snapshotter's error (the match then goes on here), or [ErrNotFound].
func (e *Engine) Handoff(ctx context.Context, id string) (Snapshot, error) {
	m := e.get(id)
	if m == nil {
		return Snapshot{}, ErrNotFound
	}
	if m.snap == nil {
		return Snapshot{}, ErrNotSupported
	}
	op := ctlOp{kind: opHandoff, reply: make(chan ctlReply, 1)}
	if err := m.send(ctx, op); err != nil {
		return Snapshot{}, err
	}
	// Once queued, the handoff is waited for whatever ctx says: it removes
	// the match here, and its snapshot is then the only copy to restore.
	r, err := m.await(context.Background(), op.reply)
	if err != nil {
		return Snapshot{}, err
	}
	return r.snapshot, r.err
}

// handoff takes the snapshot and, if it succeeded, removes the match
// without telling anyone: it goes on elsewhere.
func (m *match) handoff() {
	s, err := m.takeSnapshot(false)
	if err != nil {
		m.replyVal.err = err
		m.answer()
		return
	}
	m.replyVal.snapshot = s
	if fn := m.e.cfg.OnSnapshot; fn != nil {
		cp := s
		cp.Data = append([]byte(nil), s.Data...)
		cp.Seats = append([]SeatState(nil), s.Seats...)
		fn(cp)
	}
	m.removeHere()
}

// Abandon stops match id between two ticks and removes it without a word
// to anyone: no snapshot, no end, no results, no frame to its players. It
// is for a copy that must not go on because another engine runs the match
// now (a game node that lost its directory lease while cut off: the node
// that took the match over restored it from a snapshot). [ErrNotFound] if
// it is not here.
func (e *Engine) Abandon(ctx context.Context, id string) error {
	m := e.get(id)
	if m == nil {
		return ErrNotFound
	}
	op := ctlOp{kind: opAbandon, reply: make(chan ctlReply, 1)}
	if err := m.send(ctx, op); err != nil {
		return err
	}
	_, err := m.await(context.Background(), op.reply)
	return err
}

// removeHere removes the match from this engine, answers the pending
// request and ends the goroutine's loop: the match goes on elsewhere (a
// handoff), or must not go on here (an abandon).
func (m *match) removeHere() {
	m.finished = true
	m.d.active = false
	m.e.remove(m.id)
	m.answer()
	close(m.done)
	m.ticker.Stop()
}

// Restore starts match s.MatchID from a snapshot taken by another engine
// ([Engine.Handoff], or a periodic snapshot of a node that died): the
// mode's factory makes a handler, Init runs with the snapshot's
// parameters, then the handler's Restore with its data; the seats are
// taken as they were (a disconnected seat's grace starts again now) and
// the tick count goes on from the snapshot's. Neither OnStart nor any
// Join is called. It fails with [ErrUnknownMode], [ErrNotSupported] (the
// handler is no Snapshotter), the handler's Restore error,
// [ErrTooManyMatches], [ErrShuttingDown] or [ErrHosted].
func (e *Engine) Restore(ctx context.Context, s Snapshot) error {
	e.mu.RLock()
	f, closing, hosted := e.modes[s.Mode], e.closing, e.matches[s.MatchID] != nil
	e.mu.RUnlock()
	switch {
	case closing:
		return ErrShuttingDown
	case f == nil:
		return fmt.Errorf("%w: %q", ErrUnknownMode, s.Mode)
	case hosted:
		return ErrHosted
	case s.MatchID == "":
		return errors.New("match: a snapshot without a match id")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m := newMatch(e, s.MatchID, s.Mode)
	if err := m.init(f, maps.Clone(s.Params), false); err != nil {
		return err
	}
	if m.snap == nil {
		return ErrNotSupported
	}
	if err := m.restoreState(s); err != nil {
		return err
	}
	e.mu.Lock()
	switch {
	case e.closing:
		e.mu.Unlock()
		return ErrShuttingDown
	case e.matches[m.id] != nil:
		e.mu.Unlock()
		return ErrHosted
	case e.cfg.MaxMatches > 0 && len(e.matches) >= e.cfg.MaxMatches:
		e.mu.Unlock()
		return ErrTooManyMatches
	}
	e.seq++
	m.seq = e.seq
	e.matches[m.id] = m
	m.ticker = e.clock.NewTicker(time.Second / time.Duration(m.tickRate))
	e.mu.Unlock()
	go m.run()
	return nil
}

// restoreState gives the new handler the snapshot's state and seats the
// players, on the caller's goroutine (the match goroutine does not exist
// yet).
func (m *match) restoreState(s Snapshot) (err error) {
	defer func() {
		if v := recover(); v != nil {
			logPanic(m.log, "match handler panicked in Restore", v)
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, v)
		}
	}()
	if err := m.snap.Restore(s.Data); err != nil {
		return err
	}
	now := m.e.clock.Now()
	for _, st := range s.Seats {
		if checkPresence(st.Presence) != nil || m.byUser[st.Presence.UserID] != nil || len(m.seats) >= m.maxPlayers {
			return fmt.Errorf("match: snapshot of %s has an invalid or extra seat", s.MatchID)
		}
		seat := &seat{p: st.Presence, connected: st.Connected}
		if !st.Connected {
			seat.since = now
		}
		m.seats = append(m.seats, seat)
		m.byUser[st.Presence.UserID] = seat
		m.in.addSeat(st.Presence, now)
		if !st.Connected {
			m.in.updateSeat(st.Presence, false)
		}
	}
	m.tick, m.restored = s.Tick, true
	if !s.Created.IsZero() {
		m.created = s.Created
	}
	m.updateInfo()
	return nil
}
