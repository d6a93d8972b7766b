package match

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Dispatcher is a match's handle on the engine, passed to every [Handler]
// callback. It is valid only during the callback it was passed to: its
// actions return [ErrExpired] afterwards, and it must never be used from
// another goroutine. Actions take effect as described on each method; kicks
// and the end of the match are carried out when the callback returns, so
// callbacks never nest.
type Dispatcher struct {
	m      *match
	active bool
	inInit bool
}

func (d *Dispatcher) check() error {
	switch {
	case !d.active:
		return ErrExpired
	case d.inInit:
		return ErrNotAllowed
	case d.m.ending || d.m.finished:
		return ErrEnded
	}
	return nil
}

// Tick returns the number of ticks run so far: 1 in the first Loop, 0 in
// Init and in callbacks before the first tick.
func (d *Dispatcher) Tick() uint64 { return d.m.tick }

// Now returns the engine clock's current time.
func (d *Dispatcher) Now() time.Time { return d.m.e.clock.Now() }

// MatchID returns the match's id.
func (d *Dispatcher) MatchID() string { return d.m.id }

// Mode returns the mode the match was created with.
func (d *Dispatcher) Mode() string { return d.m.mode }

// TickRate returns the match's ticks per second (0 during Init).
func (d *Dispatcher) TickRate() int { return d.m.tickRate }

// Label returns the match's current label.
func (d *Dispatcher) Label() string {
	d.m.infoMu.Lock()
	defer d.m.infoMu.Unlock()
	return d.m.label
}

// Logger returns a logger carrying the match id and mode.
func (d *Dispatcher) Logger() *slog.Logger { return d.m.log }

// Presences returns a copy of the seated players in join order, including
// those disconnected within their grace period (see [Dispatcher.Connected]).
func (d *Dispatcher) Presences() []Presence {
	out := make([]Presence, len(d.m.seats))
	for i, s := range d.m.seats {
		out[i] = s.p
	}
	return out
}

// PlayerCount returns the number of seated players, without allocating.
func (d *Dispatcher) PlayerCount() int { return len(d.m.seats) }

// Connected reports whether p's user has a seat and is connected now.
func (d *Dispatcher) Connected(p Presence) bool {
	s := d.m.byUser[p.UserID]
	return s != nil && s.connected
}

// Broadcast sends one frame with op and a copy of data to the players in
// to, or to every seated player if to is empty. Recipients are matched by
// UserID (a presence kept from before a reconnection still reaches the
// player); players without a seat or currently disconnected are skipped. The
// frame is encoded once and shared by all recipients (see [Frame]), and
// carries the current tick. data may be reused as soon as Broadcast returns.
// Op codes from [OpReservedMin] up are refused with [ErrReservedOp].
func (d *Dispatcher) Broadcast(op OpCode, data []byte, to ...Presence) error {
	if err := d.check(); err != nil {
		return err
	}
	if op >= OpReservedMin {
		return ErrReservedOp
	}
	d.m.broadcast(op, data, to...)
	return nil
}

// Kick frees p's seat (matched by UserID) once the callback returns: the
// gateway's Close and then the handler's Leave both get reason (or
// [ReasonKicked] if reason is empty). It returns [ErrNotInMatch] if p has
// no seat.
func (d *Dispatcher) Kick(p Presence, reason Reason) error {
	if err := d.check(); err != nil {
		return err
	}
	if d.m.byUser[p.UserID] == nil {
		return ErrNotInMatch
	}
	if reason == "" {
		reason = ReasonKicked
	}
	d.m.kicks = append(d.m.kicks, pendingKick{p, reason})
	return nil
}

// SetLabel replaces the match's label at once (see [Filter]). Labels are at
// most [MaxLabelLen] bytes.
func (d *Dispatcher) SetLabel(label string) error {
	if !d.active {
		return ErrExpired
	}
	if len(label) > MaxLabelLen {
		return ErrInvalidSettings
	}
	d.m.infoMu.Lock()
	d.m.label = label
	d.m.infoMu.Unlock()
	return nil
}

// Emit reports a key moment of the match (a goal, a tag, a level
// reached) to [Config.OnEvent], which the server forwards to persistence as
// a match.event. name is 1..64 bytes; data is JSON (or nil), at most
// [MaxEventData] bytes, copied. Emit is for moments worth keeping, not for
// per-tick state. Data that identifies a person (a chat line, a typed
// name, an address) goes through [Dispatcher.EmitPersonal] instead.
func (d *Dispatcher) Emit(name string, data []byte) error {
	if err := d.checkEvent(name, data); err != nil {
		return err
	}
	if fn := d.m.e.cfg.OnEvent; fn != nil {
		fn(d.event(name, data, ""))
	}
	return nil
}

// EmitPersonal is [Dispatcher.Emit] for a key moment whose data is
// personal to one player (what owner typed or said, a name or address it
// gave): the server seals data under owner's account data key before the
// event leaves the game node, so the queue and the database hold it only
// sealed; it is opened for owner and for administrators when read back,
// and erasing owner's account makes it unreadable everywhere. The name
// stays in clear: put nothing personal in it. owner is matched by UserID
// (1..128 bytes) and need not hold a seat.
//
// It returns [ErrPersonalData], and reports nothing, when the server
// cannot seal ([Config.OnPersonalEvent] is unset: a game node run without
// the data key vault); a handler may then fall back to Emit without the
// personal part. Name and data are checked as Emit checks them.
func (d *Dispatcher) EmitPersonal(name string, owner Presence, data []byte) error {
	if err := d.checkEvent(name, data); err != nil {
		return err
	}
	if owner.UserID == "" || len(owner.UserID) > maxOwnerLen {
		return fmt.Errorf("%w: owner's UserID must be 1..%d bytes", ErrInvalidEvent, maxOwnerLen)
	}
	fn := d.m.e.cfg.OnPersonalEvent
	if fn == nil {
		return ErrPersonalData
	}
	fn(d.event(name, data, owner.UserID))
	return nil
}

// maxOwnerLen bounds EmitPersonal's owner: an account id.
const maxOwnerLen = 128

func (d *Dispatcher) checkEvent(name string, data []byte) error {
	if err := d.check(); err != nil {
		return err
	}
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: event name must be 1..64 bytes", ErrInvalidEvent)
	}
	if len(data) > MaxEventData || (len(data) > 0 && !json.Valid(data)) {
		return fmt.Errorf("%w: event data must be JSON of at most %d bytes", ErrInvalidEvent, MaxEventData)
	}
	return nil
}

// event makes the Event for an emitted key moment, numbering it among the
// tick's events (Emit's and EmitPersonal's together).
func (d *Dispatcher) event(name string, data []byte, owner string) Event {
	var cp []byte
	if len(data) > 0 {
		cp = append([]byte(nil), data...)
	}
	m := d.m
	if m.emitTick != m.tick {
		m.emitTick, m.emitCount = m.tick, 0
	}
	seq := m.emitCount
	m.emitCount++
	return Event{MatchID: m.id, Mode: m.mode, Name: name, Data: cp, Owner: owner, Tick: m.tick,
		Seq: uint16(min(seq, 0xFFFF)), Time: m.e.clock.Now(), Created: m.created}
}

// MaxEventData is the largest data [Dispatcher.Emit] accepts.
const MaxEventData = 4096

// ErrInvalidEvent is returned by [Dispatcher.Emit] and
// [Dispatcher.EmitPersonal] for a bad name, data or owner.
var ErrInvalidEvent = errors.New("match: invalid event")

// ErrPersonalData is returned by [Dispatcher.EmitPersonal] when this
// server cannot seal personal data ([Config.OnPersonalEvent] is unset):
// the event is not reported, so nothing personal leaves in clear.
var ErrPersonalData = errors.New("match: this server cannot seal personal data; event not reported")

// End ends the match with results once the callback returns: pending kicks
// are dropped, every seated player is closed with [ReasonMatchEnded],
// [Config.OnEnd] receives the results, and no callback runs after this one.
// The engine keeps results as given; do not modify them afterwards. Calling
// End again returns [ErrEnded].
func (d *Dispatcher) End(results Results) error {
	if err := d.check(); err != nil {
		return err
	}
	d.m.ending = true
	d.m.results = results
	d.m.updateInfo()
	return nil
}
