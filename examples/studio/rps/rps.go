// Package rps is a studio's own game mode, the kind a studio writes and
// hosts with package server: rock-paper-scissors between two players,
// first to win Wins rounds (default 2, so best of three). Each round both
// players throw a hand; the server keeps the first throw secret until the
// second arrives, then reveals both and scores the round. A tie replays
// the round. A player who has not thrown when the round's time runs out
// loses the round; if neither has, the match is abandoned. Leaving (or
// staying disconnected past the grace period) during the game forfeits it.
//
// # Protocol
//
// Client to server (inputs):
//
//	OpThrow (1): payload is exactly one byte, a Hand: 1 rock, 2 paper,
//	             3 scissors. One throw per player and round.
//
// Server to clients (frames):
//
//	OpState (2): JSON [State], to everyone after each change, and to a
//	             player who reconnects. The other player's hand of the
//	             current round is never in it, only whether they threw.
//	OpError (3): JSON {"error": code} to the one player whose throw was
//	             refused; code is one of the Err* constants.
//
// # Parameters
//
//	wins        rounds to win, 1..5 (default 2)
//	round_time  time to throw in each round, 1s..5m (default 15s)
//
// Any other parameter is refused ([Game.ParamKeys]).
//
// Each decided round is also reported as a key moment named "round" (a
// JSON [Round]), which persistence stores with the match.
package rps

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/multijuego/multijuego/match"
)

// Mode is the name to register the game under.
const Mode = "rps"

// Op codes.
const (
	OpThrow match.OpCode = 1 // client → server: one byte, a Hand
	OpState match.OpCode = 2 // server → clients: JSON State
	OpError match.OpCode = 3 // server → one client: JSON ErrorMessage
)

// Error codes sent with OpError.
const (
	ErrNotPlaying    = "not_playing"    // the game has not started or is over
	ErrAlreadyThrown = "already_thrown" // one throw per round
	ErrBadThrow      = "bad_throw"      // payload is not one byte 1..3
)

// Status values in [State].
const (
	StatusWaiting = "waiting" // fewer than two players have joined
	StatusPlaying = "playing"
	StatusWon     = "won"     // a player reached Wins
	StatusForfeit = "forfeit" // a player left; the other won
)

// TickRate is how often throws are applied and the round clock checked, in
// Hz: a turn-based game needs no more.
const TickRate = 10

// Hand is a throw.
type Hand byte

// The hands; None is "not thrown yet".
const (
	None Hand = iota
	Rock
	Paper
	Scissors
)

// String returns "rock", "paper", "scissors", or "" for None.
func (h Hand) String() string {
	switch h {
	case Rock:
		return "rock"
	case Paper:
		return "paper"
	case Scissors:
		return "scissors"
	}
	return ""
}

// Beats reports whether h wins against o. A hand beats None: a player who
// did not throw in time loses the round.
func (h Hand) Beats(o Hand) bool {
	switch h {
	case Rock:
		return o == Scissors || o == None
	case Paper:
		return o == Rock || o == None
	case Scissors:
		return o == Paper || o == None
	}
	return false
}

// State is the OpState payload.
type State struct {
	Status     string   `json:"status"`      // one of the Status* constants
	Round      int      `json:"round"`       // the current round, from 1 (0 while waiting)
	WinsNeeded int      `json:"wins_needed"` // rounds to win the match
	Players    []Player `json:"players"`     // in seat order
	// RoundEndsInMs is the time left to throw in this round, while
	// playing: relative, so it does not depend on the client's clock.
	RoundEndsInMs int64 `json:"round_ends_in_ms,omitempty"`
	// Last is the previous decided round, hands revealed.
	Last *Round `json:"last,omitempty"`
	// Winner is the winner's user id when the status is won or forfeit.
	Winner string `json:"winner,omitempty"`
}

// Player is one seat in [State].
type Player struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
	Wins     int    `json:"wins"`
	Thrown   bool   `json:"thrown"` // has thrown this round (the hand stays secret)
}

// Round is a decided round: in [State].Last and as the "round" key moment.
type Round struct {
	Round  int               `json:"round"`
	Hands  map[string]string `json:"hands"`            // user id → hand; a player who did not throw is absent
	Winner string            `json:"winner,omitempty"` // user id; empty for a tie
}

// ErrorMessage is the OpError payload.
type ErrorMessage struct {
	Error string `json:"error"` // one of the Err* codes
}

// Game is one match's handler. Make it with [New].
type Game struct {
	winsNeeded int
	roundTime  time.Duration

	seats    [2]match.Presence
	taken    [2]bool
	wins     [2]int
	hands    [2]Hand // this round's, None until thrown
	round    int
	deadline time.Time // of the current round, on the engine's clock
	status   string
	winner   int // seat index, or -1
	last     *Round
}

// New returns a handler for one match; pass it to server.Mode as the
// Factory (or to match.Engine.Register in tests).
func New() match.Handler { return &Game{status: StatusWaiting, winner: -1} }

// InputOps declares the only input op code, OpThrow: the engine refuses the
// others before they reach Loop.
func (g *Game) InputOps() []match.OpCode { return []match.OpCode{OpThrow} }

// ParamKeys declares the two parameters: the engine refuses any other
// before Init, so a misspelt one is an error rather than a default.
func (g *Game) ParamKeys() []string { return []string{"wins", "round_time"} }

// Init reads the parameters; a bad one rejects the creation, and the
// client gets the error naming the parameter.
func (g *Game) Init(d *match.Dispatcher, params match.Params) (match.Settings, error) {
	var err error
	if g.winsNeeded, err = params.Int("wins", 2, 1, 5); err != nil {
		return match.Settings{}, err
	}
	if g.roundTime, err = params.Duration("round_time", 15*time.Second, time.Second, 5*time.Minute); err != nil {
		return match.Settings{}, err
	}
	return match.Settings{TickRate: TickRate, MaxPlayers: 2, Label: StatusWaiting}, nil
}

// JoinAttempt admits players only while the game waits for its second one.
func (g *Game) JoinAttempt(d *match.Dispatcher, p match.Presence, meta map[string]string) error {
	if g.status != StatusWaiting {
		return errors.New("the game has already started")
	}
	return nil
}

// Join seats p and starts the first round once both seats are taken.
func (g *Game) Join(d *match.Dispatcher, p match.Presence) {
	i := 0
	if g.taken[0] {
		i = 1
	}
	g.seats[i], g.taken[i] = p, true
	if g.taken[0] && g.taken[1] {
		g.status = StatusPlaying
		_ = d.SetLabel(StatusPlaying)
		g.startRound(d)
	}
	g.broadcastState(d)
}

// Leave frees p's seat; during the game, the other player wins by forfeit.
func (g *Game) Leave(d *match.Dispatcher, p match.Presence, reason match.Reason) {
	i := g.seatOf(p)
	if i < 0 {
		return
	}
	switch g.status {
	case StatusPlaying:
		g.status, g.winner = StatusForfeit, 1-i
		g.broadcastState(d)
		_ = d.End(g.results("opponent_left"))
	case StatusWaiting:
		g.seats[i], g.taken[i] = match.Presence{}, false
		if !g.taken[0] && !g.taken[1] {
			_ = d.End(match.Results{Reason: "abandoned"})
			return
		}
		g.broadcastState(d)
	}
}

// Loop applies the throws received since the last tick, in order, deciding
// a round as soon as both hands are in (so a quick player's throw for the
// next round, arriving in the same tick, counts), then checks the round's
// clock.
func (g *Game) Loop(d *match.Dispatcher, inputs []match.Input) {
	changed := false
	for _, in := range inputs {
		if code := g.throw(in); code != "" {
			sendError(d, in.Presence, code)
			continue
		}
		changed = true
		if g.hands[0] != None && g.hands[1] != None {
			g.decide(d)
		}
	}
	if g.status == StatusPlaying && !d.Now().Before(g.deadline) {
		if g.hands[0] == None && g.hands[1] == None {
			// Nobody is playing: no result to record.
			_ = d.End(match.Results{Reason: "abandoned"})
			return
		}
		g.decide(d)
		changed = true
	}
	if !changed {
		return
	}
	g.broadcastState(d)
	if g.status == StatusWon {
		_ = d.End(g.results("winner"))
	}
}

// throw validates and records one input, returning an error code or "".
func (g *Game) throw(in match.Input) string {
	if g.status != StatusPlaying {
		return ErrNotPlaying
	}
	if len(in.Data) != 1 || Hand(in.Data[0]) < Rock || Hand(in.Data[0]) > Scissors {
		return ErrBadThrow
	}
	i := g.seatOf(in.Presence)
	if i < 0 {
		return ErrNotPlaying // the engine only passes seated players' inputs; kept for direct calls
	}
	if g.hands[i] != None {
		return ErrAlreadyThrown
	}
	g.hands[i] = Hand(in.Data[0])
	return ""
}

// decide scores the current round, reports it as a key moment, and either
// ends the game (status won) or starts the next round.
func (g *Game) decide(d *match.Dispatcher) {
	r := &Round{Round: g.round, Hands: map[string]string{}}
	for i, h := range g.hands {
		if h != None {
			r.Hands[g.seats[i].UserID] = h.String()
		}
	}
	w := -1
	switch {
	case g.hands[0].Beats(g.hands[1]):
		w = 0
	case g.hands[1].Beats(g.hands[0]):
		w = 1
	}
	if w >= 0 {
		g.wins[w]++
		r.Winner = g.seats[w].UserID
	}
	g.last = r
	if b, err := json.Marshal(r); err == nil {
		_ = d.Emit("round", b)
	}
	if w >= 0 && g.wins[w] >= g.winsNeeded {
		g.status, g.winner = StatusWon, w
		return
	}
	g.startRound(d)
}

func (g *Game) startRound(d *match.Dispatcher) {
	g.round++
	g.hands = [2]Hand{}
	g.deadline = d.Now().Add(g.roundTime)
}

// Terminate ends the game at once, unranked: a best-of interrupted by a
// server shutdown decides nothing.
func (g *Game) Terminate(d *match.Dispatcher, grace time.Duration) {
	_ = d.End(match.Results{Reason: "shutdown"})
}

// Disconnected does nothing: the player keeps the seat for the grace
// period, and the round clock keeps running.
func (g *Game) Disconnected(d *match.Dispatcher, p match.Presence) {}

// Reconnected sends the returning player the current state.
func (g *Game) Reconnected(d *match.Dispatcher, p match.Presence) {
	if i := g.seatOf(p); i >= 0 {
		g.seats[i] = p
	}
	if b, err := json.Marshal(g.State(d.Now())); err == nil {
		_ = d.Broadcast(OpState, b, p)
	}
}

func (g *Game) seatOf(p match.Presence) int {
	for i := range g.seats {
		if g.taken[i] && g.seats[i].UserID == p.UserID {
			return i
		}
	}
	return -1
}

// State returns the state as sent to the players at time now.
func (g *Game) State(now time.Time) State {
	s := State{Status: g.status, Round: g.round, WinsNeeded: g.winsNeeded, Last: g.last, Players: []Player{}}
	for i := range g.seats {
		if g.taken[i] {
			s.Players = append(s.Players, Player{UserID: g.seats[i].UserID, Username: g.seats[i].Username,
				Wins: g.wins[i], Thrown: g.hands[i] != None})
		}
	}
	if g.status == StatusPlaying {
		s.RoundEndsInMs = max(0, g.deadline.Sub(now).Milliseconds())
	}
	if g.winner >= 0 {
		s.Winner = g.seats[g.winner].UserID
	}
	return s
}

func (g *Game) broadcastState(d *match.Dispatcher) {
	b, err := json.Marshal(g.State(d.Now()))
	if err != nil {
		d.Logger().Error("rps: encoding state", "err", err)
		return
	}
	_ = d.Broadcast(OpState, b)
}

func sendError(d *match.Dispatcher, p match.Presence, code string) {
	b, _ := json.Marshal(ErrorMessage{Error: code})
	_ = d.Broadcast(OpError, b, p)
}

// results ranks the two players, winner first. Score is rounds won, so a
// "score" leaderboard of this mode ranks by rounds; placement feeds wins
// and ratings.
func (g *Game) results(reason string) match.Results {
	r := match.Results{Reason: reason}
	for place, i := range []int{g.winner, 1 - g.winner} {
		r.Players = append(r.Players, match.PlayerResult{
			Presence:  g.seats[i],
			Placement: place + 1,
			Score:     int64(g.wins[i]),
			Stats:     map[string]float64{"rounds": float64(g.round)},
		})
	}
	return r
}

// snapshot is the Snapshot encoding.
type snapshot struct {
	WinsNeeded int               `json:"wins_needed"`
	RoundTime  time.Duration     `json:"round_time"`
	Seats      [2]match.Presence `json:"seats"`
	Taken      [2]bool           `json:"taken"`
	Wins       [2]int            `json:"wins"`
	Hands      [2]Hand           `json:"hands"`
	Round      int               `json:"round"`
	Deadline   time.Time         `json:"deadline"` // absolute: nodes' clocks agree far better than a round's time
	Status     string            `json:"status"`
	Winner     int               `json:"winner"`
	Last       *Round            `json:"last,omitempty"`
}

// Snapshot returns the game's state as JSON, secret hands included: it is
// for the server's recovery, never sent to players.
func (g *Game) Snapshot() ([]byte, error) {
	return json.Marshal(snapshot{g.winsNeeded, g.roundTime, g.seats, g.taken, g.wins, g.hands,
		g.round, g.deadline, g.status, g.winner, g.last})
}

// Restore replaces the game's state with a Snapshot's, after checking it
// describes a game this code could have reached.
func (g *Game) Restore(b []byte) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("rps: bad snapshot: %w", err)
	}
	switch s.Status {
	case StatusWaiting, StatusPlaying, StatusWon, StatusForfeit:
	default:
		return errors.New("rps: bad snapshot status")
	}
	if s.WinsNeeded < 1 || s.WinsNeeded > 5 || s.RoundTime <= 0 || s.Winner < -1 || s.Winner > 1 || s.Round < 0 {
		return errors.New("rps: bad snapshot")
	}
	for i := range 2 {
		if s.Hands[i] > Scissors || s.Wins[i] < 0 || s.Wins[i] > s.WinsNeeded {
			return errors.New("rps: bad snapshot")
		}
	}
	g.winsNeeded, g.roundTime, g.seats, g.taken, g.wins, g.hands = s.WinsNeeded, s.RoundTime, s.Seats, s.Taken, s.Wins, s.Hands
	g.round, g.deadline, g.status, g.winner, g.last = s.Round, s.Deadline, s.Status, s.Winner, s.Last
	return nil
}

var (
	_ match.ConnectionWatcher = (*Game)(nil)
	_ match.Snapshotter       = (*Game)(nil)
	_ match.InputOps          = (*Game)(nil)
	_ match.ParamKeys         = (*Game)(nil)
)
