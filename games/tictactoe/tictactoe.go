// Package tictactoe is the turn-based reference game for the match engine:
// two players, X (the first to join) and O, alternate placing their mark on
// a 3×3 board; the server validates every move and ends the match with a
// winner or a draw. A player leaving (or disconnected past the grace period)
// during the game forfeits: the other wins. The game takes no parameters:
// a creation with any is refused ([Game.ParamKeys]).
//
// # Protocol
//
// Client to server (inputs):
//
//	OpMove (1): payload is exactly one byte, the cell index 0..8, row-major
//	            (0 1 2 / 3 4 5 / 6 7 8).
//
// Server to clients (frames):
//
//	OpState (2): JSON [State], to everyone after each change, and to a
//	             player who reconnects.
//	OpError (3): JSON {"error": code} to the one player whose input was
//	             refused; code is one of the Err* constants.
//
// Turn-based traffic is tiny, so state is JSON for readability; see
// package arena for a compact binary protocol.
package tictactoe

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/multijuego/multijuego/match"
)

// Mode is the name to register the game under.
const Mode = "tictactoe"

// Op codes.
const (
	OpMove  match.OpCode = 1 // client → server: one byte, the cell 0..8
	OpState match.OpCode = 2 // server → clients: JSON State
	OpError match.OpCode = 3 // server → one client: JSON {"error": code}
)

// Error codes sent with OpError.
const (
	ErrNotPlaying  = "not_playing"   // the game has not started or is over
	ErrNotYourTurn = "not_your_turn" // it is the other player's turn
	ErrBadMove     = "bad_move"      // payload is not one byte 0..8
	ErrCellTaken   = "cell_taken"    // the cell already has a mark
	ErrUnknownOp   = "unknown_op"    // the op code is not OpMove (only if Loop is called directly: the engine refuses other ops, see InputOps)
)

// Status values in [State].
const (
	StatusWaiting = "waiting" // fewer than two players have joined
	StatusPlaying = "playing"
	StatusWon     = "won"     // three in a row
	StatusDraw    = "draw"    // full board, no line
	StatusForfeit = "forfeit" // a player left; the other won
)

// TickRate is how often moves are applied, in Hz.
const TickRate = 10

// State is the OpState payload.
type State struct {
	// Board is 9 characters, row-major: 'X', 'O' or '.' for empty.
	Board string `json:"board"`
	// X is the user id playing X ("" while free).
	X string `json:"x"`
	// O is the user id playing O ("" while free).
	O string `json:"o"`
	// Turn is "X" or "O" while playing, "" otherwise.
	Turn string `json:"turn"`
	// Status is one of the Status* constants.
	Status string `json:"status"`
	// Winner is the winner's user id when the status is won or forfeit.
	Winner string `json:"winner,omitempty"`
	// Moves counts the marks placed.
	Moves int `json:"moves"`
}

// ErrorMessage is the OpError payload.
type ErrorMessage struct {
	Error string `json:"error"` // one of the Err* codes
}

const (
	empty byte = 0
	markX byte = 1
	markO byte = 2
)

// Game is one tic-tac-toe match's handler. Make it with [New].
type Game struct {
	board  [9]byte
	seats  [2]match.Presence // index 0 plays X, 1 plays O
	taken  [2]bool
	turn   int // 0 (X) or 1 (O)
	status string
	winner int // seat index, or -1
	moves  int
}

// New returns a handler for one match; register it with
// engine.Register(tictactoe.Mode, tictactoe.New).
func New() match.Handler { return &Game{status: StatusWaiting, winner: -1} }

// InputOps declares the only input op code, OpMove: the engine refuses the
// others ([match.ErrUnknownOp]) before they reach Loop.
func (g *Game) InputOps() []match.OpCode { return []match.OpCode{OpMove} }

// ParamKeys declares that the game takes no parameters: the engine refuses
// a creation with any.
func (g *Game) ParamKeys() []string { return nil }

// Init sets the fixed settings (the game takes no parameters).
func (g *Game) Init(d *match.Dispatcher, params match.Params) (match.Settings, error) {
	return match.Settings{TickRate: TickRate, MaxPlayers: 2, Label: StatusWaiting}, nil
}

// JoinAttempt admits players only while the game waits for its second
// player.
func (g *Game) JoinAttempt(d *match.Dispatcher, p match.Presence, meta map[string]string) error {
	if g.status != StatusWaiting {
		return errors.New("the game has already started")
	}
	return nil
}

// Join gives p the free mark (X first) and starts the game once both are
// taken.
func (g *Game) Join(d *match.Dispatcher, p match.Presence) {
	i := 0
	if g.taken[0] {
		i = 1
	}
	g.seats[i], g.taken[i] = p, true
	if g.taken[0] && g.taken[1] {
		g.status = StatusPlaying
		_ = d.SetLabel(StatusPlaying)
	}
	g.broadcastState(d)
}

// Leave frees p's mark; during the game, the other player wins by forfeit.
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

// Loop applies the moves received since the last tick, in order.
func (g *Game) Loop(d *match.Dispatcher, inputs []match.Input) {
	changed := false
	for _, in := range inputs {
		if code := g.move(in); code != "" {
			sendError(d, in.Presence, code)
			continue
		}
		changed = true
		if g.status != StatusPlaying {
			break // game over; later inputs are moot
		}
	}
	if !changed {
		return
	}
	g.broadcastState(d)
	switch g.status {
	case StatusWon:
		_ = d.End(g.results("winner"))
	case StatusDraw:
		_ = d.End(g.results("draw"))
	}
}

// move validates and applies one input, returning an error code or "".
func (g *Game) move(in match.Input) string {
	if in.Op != OpMove {
		return ErrUnknownOp
	}
	if g.status != StatusPlaying {
		return ErrNotPlaying
	}
	if g.seatOf(in.Presence) != g.turn {
		return ErrNotYourTurn
	}
	if len(in.Data) != 1 || in.Data[0] > 8 {
		return ErrBadMove
	}
	cell := in.Data[0]
	if g.board[cell] != empty {
		return ErrCellTaken
	}
	g.board[cell] = markX + byte(g.turn)
	g.moves++
	switch {
	case g.hasLine(g.board[cell]):
		g.status, g.winner = StatusWon, g.turn
	case g.moves == 9:
		g.status = StatusDraw
	default:
		g.turn = 1 - g.turn
	}
	return ""
}

var lines = [8][3]int{
	{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, // rows
	{0, 3, 6}, {1, 4, 7}, {2, 5, 8}, // columns
	{0, 4, 8}, {2, 4, 6}, // diagonals
}

func (g *Game) hasLine(mark byte) bool {
	for _, l := range lines {
		if g.board[l[0]] == mark && g.board[l[1]] == mark && g.board[l[2]] == mark {
			return true
		}
	}
	return false
}

// Terminate ends the game at once, unranked.
func (g *Game) Terminate(d *match.Dispatcher, grace time.Duration) {
	_ = d.End(match.Results{Reason: "shutdown"})
}

// Disconnected does nothing: the player keeps the mark for the grace period
// and the clock does not run in this game.
func (g *Game) Disconnected(d *match.Dispatcher, p match.Presence) {}

// Reconnected sends the returning player the current state.
func (g *Game) Reconnected(d *match.Dispatcher, p match.Presence) {
	if i := g.seatOf(p); i >= 0 {
		g.seats[i] = p
	}
	if b, err := json.Marshal(g.State()); err == nil {
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

// State returns the state as sent to the players.
func (g *Game) State() State {
	var b [9]byte
	for i, c := range g.board {
		b[i] = ".XO"[c]
	}
	s := State{Board: string(b[:]), Status: g.status, Moves: g.moves}
	if g.taken[0] {
		s.X = g.seats[0].UserID
	}
	if g.taken[1] {
		s.O = g.seats[1].UserID
	}
	if g.status == StatusPlaying {
		s.Turn = "XO"[g.turn : g.turn+1]
	}
	if g.winner >= 0 {
		s.Winner = g.seats[g.winner].UserID
	}
	return s
}

func (g *Game) broadcastState(d *match.Dispatcher) {
	b, err := json.Marshal(g.State())
	if err != nil {
		d.Logger().Error("tictactoe: encoding state", "err", err)
		return
	}
	_ = d.Broadcast(OpState, b)
}

func sendError(d *match.Dispatcher, p match.Presence, code string) {
	b, _ := json.Marshal(ErrorMessage{Error: code})
	_ = d.Broadcast(OpError, b, p)
}

// results ranks the players: the winner first with score 1, or both first
// with score 0 in a draw.
func (g *Game) results(reason string) match.Results {
	r := match.Results{Reason: reason}
	for i := range g.seats {
		if !g.taken[i] && g.winner != i {
			continue
		}
		pr := match.PlayerResult{
			Presence:  g.seats[i],
			Placement: 1,
			Stats:     map[string]float64{"moves": float64(g.movesBy(i))},
		}
		switch {
		case g.winner == i:
			pr.Score = 1
		case g.winner >= 0:
			pr.Placement = 2
		}
		r.Players = append(r.Players, pr)
	}
	if len(r.Players) == 2 && r.Players[1].Placement < r.Players[0].Placement {
		r.Players[0], r.Players[1] = r.Players[1], r.Players[0]
	}
	return r
}

func (g *Game) movesBy(seat int) int {
	n := 0
	for _, c := range g.board {
		if c == markX+byte(seat) {
			n++
		}
	}
	return n
}

// snapshot is the Snapshot encoding.
type snapshot struct {
	Board  [9]byte           `json:"board"`
	Seats  [2]match.Presence `json:"seats"`
	Taken  [2]bool           `json:"taken"`
	Turn   int               `json:"turn"`
	Status string            `json:"status"`
	Winner int               `json:"winner"`
	Moves  int               `json:"moves"`
}

// Snapshot returns the game's state as JSON.
func (g *Game) Snapshot() ([]byte, error) {
	return json.Marshal(snapshot{g.board, g.seats, g.taken, g.turn, g.status, g.winner, g.moves})
}

// Restore replaces the game's state with a Snapshot's.
func (g *Game) Restore(b []byte) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	for _, c := range s.Board {
		if c > markO {
			return errors.New("tictactoe: bad snapshot board")
		}
	}
	switch s.Status {
	case StatusWaiting, StatusPlaying, StatusWon, StatusDraw, StatusForfeit:
	default:
		return errors.New("tictactoe: bad snapshot status")
	}
	if s.Turn != 0 && s.Turn != 1 || s.Winner < -1 || s.Winner > 1 {
		return errors.New("tictactoe: bad snapshot")
	}
	g.board, g.seats, g.taken, g.turn, g.status, g.winner, g.moves =
		s.Board, s.Seats, s.Taken, s.Turn, s.Status, s.Winner, s.Moves
	return nil
}

var (
	_ match.ConnectionWatcher = (*Game)(nil)
	_ match.Snapshotter       = (*Game)(nil)
	_ match.ParamKeys         = (*Game)(nil)
)
