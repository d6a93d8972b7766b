// Package match is multijuego's authoritative match engine: it hosts many
// matches at once, runs each one at a fixed tick rate and owns the truth of
// its state; players only send inputs.
//
// # Model
//
// A studio writes one [Handler] per game mode and registers a [Factory]
// under the mode's name with [Engine.Register]. [Engine.Create] calls the
// factory once per match, so a handler keeps that match's state in its own
// fields; nothing is passed around as an untyped value. The engine calls
// the handler's callbacks:
//
//   - Init once, before the match exists, with the creation [Params]. It
//     returns the [Settings] (tick rate 1..128 Hz, label, maximum players);
//     an error rejects the creation.
//   - JoinAttempt for every new player (an error refuses the seat, its text
//     is the reason given to the player), then Join once the seat is taken.
//   - Leave when a seat is freed, with a [Reason]: [ReasonLeft],
//     [ReasonDisconnected] (the connection dropped and the grace period ran
//     out), [ReasonKicked], [ReasonRateLimited], or the reason the handler
//     gave to [Dispatcher.Kick].
//   - Loop once per tick with the [Input] values queued since the previous
//     tick, in arrival order.
//   - Terminate when the engine shuts down, with a grace period during which
//     the match keeps ticking; it should end the match by then.
//
// A handler may also implement [ConnectionWatcher] (a seated player's
// connection dropped, or came back within the grace period), [Snapshotter]
// (serialise and restore its state, for later recovery and migration
// between nodes), [InputOps] (declare the input op codes it accepts;
// [Engine.Input] refuses the others with [ErrUnknownOp]) and [ParamKeys]
// (declare the creation parameters it reads; [Engine.Create] refuses the
// others with a [*ParamError]).
//
// Every callback receives a [Dispatcher], the match's handle on the engine:
// the current tick, the clock's time, the match id, mode, label and
// presences, and the actions Broadcast, Kick, SetLabel and End. A dispatcher
// is valid only during the callback it was passed to.
//
// # Concurrency
//
// One goroutine owns each match. Callbacks of one match never overlap and
// run on that goroutine, so a handler needs no locks. [Engine.Join],
// [Engine.Leave] and [Engine.Disconnect] are queued to the match goroutine and
// wait for it to answer, until their context ends at most (a request
// already queued is still carried out); [Engine.Input] only appends to the match's bounded
// input queue and returns at once. Matches do not share anything a handler
// can touch: a panic in a handler ends only its own match (every player is
// closed with [ReasonMatchError], the panic and stack are logged with the
// match id, the match is removed).
//
// # Output
//
// Everything a match sends goes through the [Sender] the gateway
// implements. A broadcast encodes one immutable [Frame] (op code, tick,
// match id, payload) and hands the same pointer to every recipient;
// [Sender.Send] never blocks, and a full per-player queue is the gateway's
// problem, not the match's. Op codes from [OpReservedMin] up are the
// engine's own (for instance [OpWarning]).
//
// # Snapshots
//
// If a handler implements [Snapshotter] and [Config.OnSnapshot] is set, the
// engine hands OnSnapshot a [Snapshot] of the match (its id, mode, label,
// tick, seated players, the clock's time and the Snapshotter's bytes):
//
//   - every [Config.SnapshotEvery] ticks (0, the default, disables this),
//     after Loop and what it caused (kicks, Leave) on each tick where
//     tick % SnapshotEvery == 0, so periodic snapshots come with increasing
//     ticks;
//   - once more as the match ends, however it ends, with Final set, before
//     players are closed and [Config.OnEnd] runs. A match ending at a
//     snapshot tick gets only the final one. A match ended by a panic gets
//     none: the handler's state is then suspect.
//
// OnSnapshot runs on the match goroutine and must not block: a game node
// queues the bytes (which are its own) for storage, for instance in Redis.
// A Snapshot error is logged with the match id and that snapshot skipped;
// the match goes on. A panic in a periodic Snapshot ends only that match,
// like a panic in any callback; a panic in the final one is logged and the
// match ends as it was ending. [Engine.Snapshot] takes a snapshot on demand.
// With snapshots disabled none of this allocates or runs per tick.
//
// # Time
//
// The engine reads time only from its [Clock]. [SystemClock] is the real
// one; package matchtest has a manual clock that tests step by hand,
// deterministically: its Advance returns once every match has fully
// processed the ticks it fired.
//
// # Purity
//
// This package and the games built on it do no I/O: no network, no
// database, no processes. A test enforces the import allow-list.
package match
