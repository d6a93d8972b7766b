package match

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Errors returned by the [Engine]. Compare with errors.Is.
var (
	ErrUnknownMode     = errors.New("match: unknown mode")
	ErrNotFound        = errors.New("match: no such match (or it has ended)")
	ErrNotInMatch      = errors.New("match: presence has no seat in the match")
	ErrMatchFull       = errors.New("match: match is full")
	ErrJoinRejected    = errors.New("match: join rejected")
	ErrQueueFull       = errors.New("match: input queue full")
	ErrRateLimited     = errors.New("match: too many inputs")
	ErrInputTooLarge   = errors.New("match: input payload too large")
	ErrReservedOp      = errors.New("match: op code reserved for the engine")
	ErrUnknownOp       = errors.New("match: op code not accepted by this match's handler")
	ErrShuttingDown    = errors.New("match: engine is shutting down")
	ErrTooManyMatches  = errors.New("match: too many matches")
	ErrInvalidSettings = errors.New("match: invalid settings")
	ErrInvalidPresence = errors.New("match: presence needs a user id and a session id")
	ErrHandlerPanic    = errors.New("match: handler panicked")
	ErrNotSupported    = errors.New("match: handler does not support this")
	ErrExpired         = errors.New("match: dispatcher used outside its callback")
	ErrNotAllowed      = errors.New("match: not allowed in this callback")
	ErrEnded           = errors.New("match: match has ended")
)

// RejectedError is returned by [Engine.Join] when the handler's JoinAttempt
// refused the player. It matches [ErrJoinRejected] with errors.Is.
type RejectedError struct {
	Reason string // the handler's error text, meant for the player
}

// Error returns the message with the handler's reason.
func (e *RejectedError) Error() string { return "match: join rejected: " + e.Reason }

// Is reports whether target is ErrJoinRejected.
func (e *RejectedError) Is(target error) bool { return target == ErrJoinRejected }

// RateLimit is the per-player input rate limit: a token bucket refilled at
// PerSecond tokens per second holding at most Burst tokens; each input takes
// one. An input finding the bucket empty is dropped and [Engine.Input]
// returns [ErrRateLimited]. The first dropped input earns the player an
// [OpWarning] frame with the payload "rate_limited"; after KickAfter dropped
// inputs the player is kicked with [ReasonRateLimited]. The count restarts
// once the player has stayed under the limit long enough to refill the whole
// bucket.
type RateLimit struct {
	PerSecond float64 // default 60; negative disables the limit
	Burst     int     // default 60
	KickAfter int     // default 60
}

// Config configures an [Engine]. Only Sender is required.
type Config struct {
	// Sender delivers frames to players (the gateway).
	Sender Sender
	// Clock is the source of time; default [SystemClock].
	Clock Clock
	// Logger receives panics and other match errors; default
	// slog.Default(). Each match logs with match_id and mode attributes.
	Logger *slog.Logger
	// InputQueue bounds the inputs waiting for a match's next tick; when
	// it is full the newest input is dropped, counted in
	// [Info.InputsDropped], and [Engine.Input] returns [ErrQueueFull].
	// Default 1024.
	InputQueue int
	// MaxInputSize is the largest input payload in bytes; default 4096.
	MaxInputSize int
	// RateLimit limits each player's inputs; zero fields take defaults.
	RateLimit RateLimit
	// DisconnectGrace is how long a player whose connection dropped
	// ([Engine.Disconnect]) keeps the seat; default 30s, negative for no
	// grace (the seat is freed at once).
	DisconnectGrace time.Duration
	// ShutdownGrace is the grace period [Engine.Shutdown] gives each
	// match ([Handler.Terminate]); default 10s, negative for none.
	ShutdownGrace time.Duration
	// EmptyTimeout ends a match nobody has been seated in for that long
	// (never joined, or everyone left and the handler kept it open), with
	// the reason [ReasonEmpty]; 0 (the default) never does.
	EmptyTimeout time.Duration
	// MaxMatches caps the matches hosted at once; 0 means no cap.
	MaxMatches int
	// MaxPlayers caps [Settings.MaxPlayers]; default 256.
	MaxPlayers int
	// OnStart, if set, is called on the match goroutine when a match
	// begins to run, before its first tick. It must not block for long.
	OnStart func(Started)
	// OnEvent, if set, receives the key moments handlers report with
	// [Dispatcher.Emit], on the match goroutine. It must not block (queue
	// the work).
	OnEvent func(Event)
	// OnPersonalEvent, if set, receives the events handlers report with
	// [Dispatcher.EmitPersonal], on the match goroutine: their Data is
	// personal to Event.Owner, and must be sealed under Owner's data key
	// before it leaves the process. It must not block (queue the work).
	// Unset, EmitPersonal refuses with [ErrPersonalData].
	OnPersonalEvent func(Event)
	// OnEnd, if set, is called on the match goroutine when a match ends,
	// whatever the cause, after every player was closed. Persistence
	// stores the results from here. It must not block for long.
	OnEnd func(Summary)
	// SnapshotEvery is the number of ticks between snapshots of matches
	// whose handler implements Snapshotter, the first taken as the match
	// starts (tick 0, before its first tick; not for a restored match);
	// 0 disables periodic snapshots.
	SnapshotEvery int
	// OnSnapshot receives each snapshot, on the match's goroutine: it must
	// not block (queue the work). A final snapshot (Final true) is taken
	// when the match ends, whatever SnapshotEvery says, if the handler
	// implements Snapshotter (but not when a panic ended the match: the
	// handler's state is then suspect), before [Config.OnEnd] runs.
	// Without OnSnapshot no snapshot is taken ([Engine.Snapshot] still
	// works).
	OnSnapshot func(Snapshot)
	// OnTick, if set, is called on the match goroutine after each tick
	// (inputs, Loop, the frames it broadcast, kicks and periodic snapshot)
	// with the match's mode and the wall time the tick took, measured with
	// the monotonic real clock whatever [Config.Clock] is. The tick that
	// ends the match is not reported. It must not block or allocate: it
	// runs on every tick of every match.
	OnTick func(mode string, d time.Duration)
}

func (c *Config) defaults() {
	if c.Clock == nil {
		c.Clock = SystemClock()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.InputQueue <= 0 {
		c.InputQueue = 1024
	}
	if c.MaxInputSize <= 0 {
		c.MaxInputSize = 4096
	}
	if c.RateLimit.PerSecond == 0 {
		c.RateLimit.PerSecond = 60
	}
	if c.RateLimit.Burst <= 0 {
		c.RateLimit.Burst = 60
	}
	if c.RateLimit.KickAfter <= 0 {
		c.RateLimit.KickAfter = 60
	}
	if c.DisconnectGrace == 0 {
		c.DisconnectGrace = 30 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.MaxPlayers <= 0 {
		c.MaxPlayers = 256
	}
}

// Engine hosts many matches. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	clock  Clock
	sender Sender
	log    *slog.Logger

	mu      sync.RWMutex
	modes   map[string]Factory
	matches map[string]*match
	closing bool
	seq     uint64 // creation counter, for List's order
}

// NewEngine returns an engine. It fails if cfg.Sender is nil or
// cfg.SnapshotEvery is negative.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Sender == nil {
		return nil, errors.New("match: Config.Sender is required")
	}
	if cfg.SnapshotEvery < 0 {
		return nil, fmt.Errorf("match: Config.SnapshotEvery is %d, must be 0 or more", cfg.SnapshotEvery)
	}
	cfg.defaults()
	return &Engine{
		cfg:     cfg,
		clock:   cfg.Clock,
		sender:  cfg.Sender,
		log:     cfg.Logger,
		modes:   make(map[string]Factory),
		matches: make(map[string]*match),
	}, nil
}

// Register makes mode available to [Engine.Create]. A mode can be
// registered once.
func (e *Engine) Register(mode string, f Factory) error {
	if mode == "" || f == nil {
		return errors.New("match: Register needs a mode and a factory")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.modes[mode]; ok {
		return fmt.Errorf("match: mode %q already registered", mode)
	}
	e.modes[mode] = f
	return nil
}

// newID returns an unguessable match id: 128 random bits, hex-encoded.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}

// Create makes a new match of mode: it calls the mode's factory, then the
// handler's Init with params, and starts the match. It returns the match's
// id, unguessable (128 random bits). A key the handler does not declare
// ([ParamKeys]; a [*ParamError]), Init's error, or invalid settings reject
// the creation.
func (e *Engine) Create(ctx context.Context, mode string, params Params) (string, error) {
	e.mu.RLock()
	f, closing := e.modes[mode], e.closing
	e.mu.RUnlock()
	if closing {
		return "", ErrShuttingDown
	}
	if f == nil {
		return "", fmt.Errorf("%w: %q", ErrUnknownMode, mode)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m := newMatch(e, newID(), mode)
	if err := m.init(f, params, true); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	e.mu.Lock()
	switch {
	case e.closing:
		e.mu.Unlock()
		return "", ErrShuttingDown
	case e.cfg.MaxMatches > 0 && len(e.matches) >= e.cfg.MaxMatches:
		e.mu.Unlock()
		return "", ErrTooManyMatches
	}
	e.seq++
	m.seq = e.seq
	e.matches[m.id] = m
	m.ticker = e.clock.NewTicker(time.Second / time.Duration(m.tickRate))
	e.mu.Unlock()
	go m.run()
	return m.id, nil
}

func (e *Engine) get(id string) *match {
	e.mu.RLock()
	m := e.matches[id]
	e.mu.RUnlock()
	return m
}

func (e *Engine) remove(id string) {
	e.mu.Lock()
	delete(e.matches, id)
	e.mu.Unlock()
}

func checkPresence(p Presence) error {
	if p.UserID == "" || p.SessionID == "" {
		return ErrInvalidPresence
	}
	return nil
}

// Join seats p in match id and waits for the match to answer. If p's user
// already has a seat, p takes it over (a reconnection, or a new session
// replacing the old one, which is closed with [ReasonReplaced]) without
// asking the handler. Otherwise it fails with [ErrMatchFull], a
// [*RejectedError] from the handler's JoinAttempt, [ErrShuttingDown] once the
// match is terminating, or [ErrNotFound]. ctx bounds the whole call: the
// wait to queue the request (the match's control queue may be full while a
// callback runs) and the wait for the outcome. A Join that ctx ended after
// it was queued is still carried out: the player may get the seat after
// Join returned ctx's error (a caller that gives up should [Engine.Disconnect]
// the presence, so that the seat is freed after the grace period).
func (e *Engine) Join(ctx context.Context, id string, p Presence, meta map[string]string) error {
	if err := checkPresence(p); err != nil {
		return err
	}
	m := e.get(id)
	if m == nil {
		return ErrNotFound
	}
	_, err := m.call(ctx, ctlOp{kind: opJoin, p: p, meta: meta})
	return err
}

// Leave frees p's seat in match id (reason [ReasonLeft]) and waits until the
// handler's Leave has run, or until ctx is done. It returns [ErrNotInMatch]
// if p (this session) has no seat. Like Join, once queued it is carried out
// even if ctx ends first.
func (e *Engine) Leave(ctx context.Context, id string, p Presence) error {
	m := e.get(id)
	if m == nil {
		return ErrNotFound
	}
	_, err := m.call(ctx, ctlOp{kind: opLeave, p: p})
	return err
}

// Disconnect tells match id that p's connection dropped. p keeps the seat
// for [Config.DisconnectGrace]: a [Engine.Join] by the same user within that
// time takes the seat back; after it the seat is freed with
// [ReasonDisconnected]. It returns [ErrNotInMatch] if this session has no
// seat (for instance because the player already reconnected elsewhere).
// It waits until ctx is done at most; like Join, once queued it is carried
// out even if ctx ends first.
func (e *Engine) Disconnect(ctx context.Context, id string, p Presence) error {
	m := e.get(id)
	if m == nil {
		return ErrNotFound
	}
	_, err := m.call(ctx, ctlOp{kind: opDisconnect, p: p})
	return err
}

// Input queues one input from p for match id's next tick. It never blocks.
// It fails with [ErrNotInMatch] if p's session does not hold a seat (or is
// disconnected), [ErrRateLimited] if p is over its rate limit (the input is
// dropped), [ErrQueueFull] if the match's input queue is full (the input is
// dropped), [ErrUnknownOp] if the match's handler declares its op codes
// ([InputOps]) and op is not one of them (the input is dropped, after it
// was counted against p's rate limit, so a flood of unknown op codes is
// warned and kicked like any other), [ErrInputTooLarge], [ErrReservedOp] or
// [ErrNotFound]. data is copied; the caller may reuse it.
func (e *Engine) Input(id string, p Presence, op OpCode, data []byte) error {
	if op >= OpReservedMin {
		return ErrReservedOp
	}
	if len(data) > e.cfg.MaxInputSize {
		return ErrInputTooLarge
	}
	m := e.get(id)
	if m == nil {
		return ErrNotFound
	}
	return m.in.push(p, op, data, e.clock.Now())
}

// Snapshot returns match id's state from its handler's [Snapshotter], taken
// on the match goroutine between callbacks; the bytes are the caller's. It
// returns [ErrNotSupported] if the handler is not a Snapshotter, or the
// Snapshotter's error. For periodic snapshots see [Config.SnapshotEvery].
func (e *Engine) Snapshot(ctx context.Context, id string) ([]byte, error) {
	m := e.get(id)
	if m == nil {
		return nil, ErrNotFound
	}
	r, err := m.call(ctx, ctlOp{kind: opSnapshot})
	return r.data, err
}

// Info describes a running match.
type Info struct {
	ID         string // the match id
	Mode       string // the mode it was created with
	Label      string // its current label
	TickRate   int    // ticks per second
	Players    int    // seats taken, including disconnected players within their grace
	MaxPlayers int    // seats in all
	// Open reports whether the match accepts new players: it has a free
	// seat and is neither ending nor terminating.
	Open    bool
	Created time.Time // the engine clock's time at creation
	// PlayerIDs are the user ids of the seats taken, in seat order.
	PlayerIDs []string
	// TickTime is the recent time one tick takes (real time, a moving
	// average over about 16 ticks; 0 before the first tick).
	TickTime time.Duration
	// Counters since the match started.
	InputsDropped     uint64 // inputs refused because the queue was full
	InputsRateLimited uint64 // inputs refused by the rate limit
	FramesDropped     uint64 // frames Sender.Send refused
	// Node is the game node that runs the match, as a router across
	// processes reports it; empty from an engine alone.
	Node string
}

// End ends match id at once, as an operator does: players are told
// [ReasonEndedByOperator], the handler gets no further callback, and the
// results carry no placements, only reason (which [Config.OnEnd] sees).
func (e *Engine) End(ctx context.Context, id, reason string) error {
	m := e.get(id)
	if m == nil {
		return ErrNotFound
	}
	_, err := m.call(ctx, ctlOp{kind: opEnd, why: reason})
	return err
}

// Get describes match id, if it is running.
func (e *Engine) Get(id string) (Info, bool) {
	m := e.get(id)
	if m == nil {
		return Info{}, false
	}
	return m.info(), true
}

// Filter selects matches in [Engine.List]. Empty fields match everything.
type Filter struct {
	Mode     string // exact mode
	Label    string // exact label
	OpenOnly bool   // only matches with a free seat that are not ending
	Limit    int    // at most this many (0: all)
}

// List returns the running matches that pass f, oldest first.
func (e *Engine) List(f Filter) []Info {
	e.mu.RLock()
	ms := make([]*match, 0, len(e.matches))
	for _, m := range e.matches {
		if f.Mode == "" || m.mode == f.Mode {
			ms = append(ms, m)
		}
	}
	e.mu.RUnlock()
	slices.SortFunc(ms, func(a, b *match) int { return cmp.Compare(a.seq, b.seq) })
	var out []Info
	for _, m := range ms {
		in := m.info()
		if (f.Label != "" && in.Label != f.Label) || (f.OpenOnly && !in.Open) {
			continue
		}
		out = append(out, in)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}

// Shutdown stops accepting new matches, calls every match's Terminate with
// [Config.ShutdownGrace], and waits until every match has ended (by itself
// or when its grace runs out). If ctx ends first, the matches still running
// are ended at once with [ReasonShutdown] (a handler stuck in a callback
// cannot be interrupted) and ctx's error is returned.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	ms := make([]*match, 0, len(e.matches))
	for _, m := range e.matches {
		ms = append(ms, m)
	}
	e.mu.Unlock()
	for _, m := range ms {
		_ = m.send(ctx, ctlOp{kind: opTerminate})
	}
	for _, m := range ms {
		select {
		case <-m.done:
		case <-ctx.Done():
			for _, m := range ms {
				m.stopNow()
			}
			return ctx.Err()
		}
	}
	return nil
}

// logPanic logs a recovered panic with its stack.
func logPanic(log *slog.Logger, msg string, v any) {
	log.Error(msg, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}
