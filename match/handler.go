package match

import "time"

// Handler is the contract a studio implements for one game mode. The engine
// makes one Handler per match with the mode's [Factory] and calls its methods
// from that match's goroutine only, one at a time, so the handler keeps its
// state in its own fields without locking.
//
// The [Dispatcher] passed to each callback is valid only until the callback
// returns; keep neither it nor the input slices.
type Handler interface {
	// Init prepares the match from its creation parameters and returns its
	// settings. It runs before the match is visible to anyone; an error
	// rejects the creation and is returned by [Engine.Create]. The
	// dispatcher's Broadcast, Kick and End are not available in Init.
	Init(d *Dispatcher, params Params) (Settings, error)

	// JoinAttempt decides whether p may take a seat. meta is what the
	// gateway passed to [Engine.Join] (for instance a team or a
	// spectator flag). A non-nil error refuses the seat; its text is the
	// reason given to the player (see [RejectedError]). The engine has
	// already checked that the match is not full and that p is not
	// seated. [Dispatcher.Presences] does not include p yet.
	JoinAttempt(d *Dispatcher, p Presence, meta map[string]string) error

	// Join tells the handler that p now has a seat. [Dispatcher.Presences]
	// includes p.
	Join(d *Dispatcher, p Presence)

	// Leave tells the handler that p's seat was freed, and why. p receives
	// nothing more from this match. Leave is not called for the players
	// still seated when the match ends.
	Leave(d *Dispatcher, p Presence, reason Reason)

	// Loop runs once per tick with the inputs queued since the previous
	// tick, in arrival order, from players still seated. The slice and
	// each input's Data are reused after Loop returns: copy what must be
	// kept.
	Loop(d *Dispatcher, inputs []Input)

	// Terminate tells the handler that the engine is shutting down. The
	// match keeps ticking for grace (measured on the engine's clock); the
	// handler should call [Dispatcher.End] before then, for instance with
	// results for the game so far. When grace runs out the engine ends the
	// match itself with reason [ReasonShutdown].
	Terminate(d *Dispatcher, grace time.Duration)
}

// Factory makes a new Handler for one match. It is registered per mode with
// [Engine.Register] and called once per [Engine.Create].
type Factory func() Handler

// Snapshotter is optionally implemented by a Handler that can serialise its
// state, so a match can later be recovered after a crash or migrated to
// another node. Both methods run on the match goroutine like any callback.
//
// The engine calls Snapshot for [Engine.Snapshot], after Loop every
// [Config.SnapshotEvery] ticks, and once as the match ends (see
// [Config.OnSnapshot]). An error skips that snapshot (it is logged with the
// match id; the match goes on); a panic ends the match like a panic in any
// callback.
type Snapshotter interface {
	// Snapshot returns the handler's state in a form Restore accepts. The
	// returned slice belongs to the receiver (for instance a
	// [Config.OnSnapshot] that queues it): return a new slice every time,
	// never one the handler keeps or reuses.
	Snapshot() ([]byte, error)
	// Restore replaces the handler's state with a snapshot's. It must
	// reject bytes that are not a valid snapshot with an error (and
	// leave the state unchanged), never panic.
	Restore(snapshot []byte) error
}

// ConnectionWatcher is optionally implemented by a Handler that wants to know
// when a seated player's connection drops and when it comes back within the
// grace period (see [Config.DisconnectGrace]). While disconnected the player
// keeps the seat but receives no frames and cannot send inputs. A handler
// that does not implement it just sees Leave with [ReasonDisconnected] if the
// player does not come back in time.
type ConnectionWatcher interface {
	// Disconnected tells the handler p's connection dropped; p keeps the
	// seat for the grace period.
	Disconnected(d *Dispatcher, p Presence)
	// Reconnected tells the handler p is back (possibly with a new
	// SessionID, which Broadcast now uses). A typical handler sends p the
	// full state.
	Reconnected(d *Dispatcher, p Presence)
}

// InputOps is optionally implemented by a Handler that declares the input op
// codes it accepts. The engine calls InputOps once per match, right after a
// successful Init (on the caller's goroutine, like Init), and keeps the list
// for the life of the match: [Engine.Input] refuses any other op code with
// [ErrUnknownOp] and the input never reaches Loop. The refused input still
// counts against the player's rate limit. An empty list refuses every input;
// op codes from [OpReservedMin] up are ignored (they are always refused). A
// handler that does not implement InputOps gets every op code below
// OpReservedMin and ignores those it does not know.
type InputOps interface {
	InputOps() []OpCode
}

// ParamKeys is optionally implemented by a Handler that declares the
// creation parameters it reads. [Engine.Create] calls ParamKeys on the new
// handler before Init and refuses a match whose [Params] hold any other key
// with a [*ParamError] naming it (the first such key in sorted order):
// Init never runs, and a client that misspells a parameter is told so
// instead of getting a default. An empty list refuses every parameter.
// [Engine.Restore] does not check (the parameters were accepted when the
// match was created). A handler that does not implement ParamKeys gets
// every key and ignores those it does not know.
type ParamKeys interface {
	ParamKeys() []string
}

// Settings are what [Handler.Init] decides about a match.
type Settings struct {
	// TickRate is how many times per second Loop runs, 1..128.
	TickRate int
	// MaxPlayers is the number of seats, at least 1 and at most
	// [Config.MaxPlayers]. Disconnected players within their grace
	// period keep their seat.
	MaxPlayers int
	// Label is a free-form, searchable description of the match (see
	// [Filter]); at most [MaxLabelLen] bytes. [Dispatcher.SetLabel]
	// changes it later.
	Label string
}

// MaxLabelLen is the longest label a match may have, in bytes.
const MaxLabelLen = 2048

// Presence identifies a player in a match. The engine keys seats by UserID:
// one seat per user per match. SessionID names the connection; it changes
// when the player reconnects, and inputs are accepted only from the session
// currently holding the seat.
type Presence struct {
	UserID    string // stable account id
	SessionID string // the gateway's connection id
	Username  string // display name, informational
	// Conn is the gateway's own handle on the connection, or nil: the
	// engine hands it back to the [Sender] with the presence, so the
	// gateway reaches the socket without looking SessionID up. Games
	// ignore it; it is not kept when a presence is encoded (snapshots,
	// other nodes), so a Sender falls back to SessionID.
	Conn any
}

// Input is one player input as queued by [Engine.Input] and passed to
// [Handler.Loop].
type Input struct {
	// Presence is the player who sent it (the session holding the seat).
	Presence Presence
	// Op is the game-defined op code.
	Op OpCode
	// Data is the opaque payload. It is valid only during the Loop call.
	Data []byte
	// Received is the engine clock's time when the input was queued.
	Received time.Time
}

// Reason says why a seat was freed or a player's frames stop. Handlers may
// use their own reasons with [Dispatcher.Kick]; the engine's are the
// constants below.
type Reason string

// The engine's reasons.
const (
	ReasonLeft         Reason = "left"         // the player left (Engine.Leave)
	ReasonDisconnected Reason = "disconnected" // the connection dropped and the grace period ran out
	ReasonKicked       Reason = "kicked"       // Dispatcher.Kick without a reason of its own
	ReasonRateLimited  Reason = "rate_limited" // too many inputs after a warning
	ReasonReplaced     Reason = "replaced"     // the same user joined again from another session
	ReasonMatchEnded   Reason = "match_ended"  // the handler called End
	ReasonMatchError   Reason = "match_error"  // the handler panicked
	ReasonShutdown     Reason = "shutdown"     // the engine shut down
	ReasonEmpty        Reason = "empty"        // nobody was seated for Config.EmptyTimeout
	// ReasonEndedByOperator: Engine.End (an administrator ended the match).
	ReasonEndedByOperator Reason = "ended_by_operator"
)

// Results is how a match ended, given to [Dispatcher.End] and reported in
// [Summary] for persistence.
type Results struct {
	// Reason says why the match ended, for instance "time_limit",
	// "winner", "draw", "opponent_left", or the engine's
	// [ReasonMatchError] and [ReasonShutdown].
	Reason string
	// Players has one entry per ranked player, best first.
	Players []PlayerResult
}

// PlayerResult is one player's outcome.
type PlayerResult struct {
	// Presence is the player.
	Presence Presence
	// Placement is 1 for the winner; tied players share a placement.
	Placement int
	// Score is the game-defined score.
	Score int64
	// Stats are game-defined numbers (tags, moves, distance…).
	Stats map[string]float64
}

// Started is what the engine reports to [Config.OnStart] when a match
// begins to run.
type Started struct {
	ID, Mode, Label string
	Created         time.Time // on the engine's clock
	TickRate        int
}

// Event is a key moment a handler chose to report, passed to
// [Config.OnEvent] ([Dispatcher.Emit]) or [Config.OnPersonalEvent]
// ([Dispatcher.EmitPersonal]): persistence stores it with the match.
type Event struct {
	MatchID, Mode string
	Name          string    // game-defined, e.g. "tag"
	Data          []byte    // JSON, or nil
	Tick          uint64    // the tick during which it was emitted
	Seq           uint16    // its place among the events of that tick, from 0
	Time          time.Time // on the engine's clock
	// Created is when the match was created (kept across nodes): with
	// MatchID, Tick and Seq it names the event the same way if a match
	// restored on another node plays that tick again.
	Created time.Time
	// Owner is the account (Presence.UserID) whose personal data Data is,
	// for an event from [Dispatcher.EmitPersonal]; "" for Emit's.
	Owner string
}

// Summary is what the engine reports to [Config.OnEnd] when a match ends,
// however it ends.
type Summary struct {
	ID, Mode, Label string    // the match's id, mode and last label
	Created, Ended  time.Time // on the engine's clock
	Ticks           uint64    // ticks run
	// Results are the handler's (from End), or for a match the engine
	// ended, empty but for Reason ([ReasonMatchError], [ReasonShutdown]).
	Results Results
}

// Snapshot is a handler's serialized state at a tick, with what the engine
// needs to start the match again elsewhere ([Engine.Restore]): the
// creation parameters and the seats.
type Snapshot struct {
	MatchID string
	Mode    string
	Label   string
	Tick    uint64
	Players int       // seated players at that tick
	Taken   time.Time // on the engine's clock
	Data    []byte    // Snapshotter.Snapshot's bytes; owned by the receiver
	Final   bool      // taken as the match ended

	Params  Params      // the creation parameters (Init runs again on restore)
	Seats   []SeatState // the seats, in seat order
	Created time.Time   // when the match was created, on the first engine's clock
}

// SeatState is one seat of a [Snapshot].
type SeatState struct {
	Presence  Presence
	Connected bool
}
