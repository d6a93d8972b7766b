// Package arena is the real-time reference game for the match engine: a
// server-authoritative game of tag for 2 to 16 players (8 by default) at 20
// ticks per second by default.
//
// Players move in a Width×Height field. Clients send only a direction and a
// sequence number ([Input]); the server moves everyone at up to MaxSpeed,
// keeps them inside the walls, pushes overlapping players apart and
// broadcasts the whole [State] every tick: tick number, server time, and for
// each player position, velocity and the last input sequence it applied.
// Nothing the client claims about its position is trusted.
//
// Once MinPlayers have joined the clock starts and the player in the lowest
// slot is "it". When "it" touches another player, "it" scores a point and
// the touched player becomes "it" (after TagCooldown, so nobody is tagged
// straight back). When the time limit runs out the match ends: highest score
// first, less time spent as "it" breaking ties. If all but one player leave,
// the last one wins.
//
// Parameters ([match.Params]): "max_players" 2..16 (default 8),
// "min_players" 2..max_players (default 2), "time_limit" 10s..24h (default
// 60s), "tick_rate" 1..128 (default 20). Any other key is refused.
//
// The state is encoded once per tick into a reused buffer and the engine
// reuses its frames, so a running match allocates nothing per tick.
//
// [Arena] is a [match.Snapshotter]: [Arena.Snapshot] encodes the whole game
// state in a compact versioned binary form, and [Arena.Restore] brings it
// back (into a running match, or a fresh handler), rejecting anything else.
package arena

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/multijuego/multijuego/match"
)

// Mode is the name to register the game under.
const Mode = "arena"

// World constants, in units and seconds.
const (
	Width       = 1000.0
	Height      = 1000.0
	Radius      = 20.0  // players are discs of this radius
	MaxSpeed    = 300.0 // units per second
	TagCooldown = time.Second
	MaxSlots    = 16
)

// The parameters ([match.Params]) a match takes; any other is refused
// ([Arena.ParamKeys]).
const (
	ParamMaxPlayers = "max_players" // seats, 2..MaxSlots
	ParamMinPlayers = "min_players" // players that start the clock, 2..max_players
	ParamTimeLimit  = "time_limit"  // game length once started, 10s..24h
	ParamTickRate   = "tick_rate"   // ticks per second, 1..128
)

// Defaults for the parameters.
const (
	DefaultMaxPlayers = 8
	DefaultMinPlayers = 2
	DefaultTimeLimit  = 60 * time.Second
	DefaultTickRate   = 20
)

type player struct {
	p         match.Presence
	active    bool
	connected bool
	x, y      float64
	vx, vy    float64
	dirX      float64 // desired direction, length <= 1
	dirY      float64
	lastSeq   uint32
	score     int
	tags      int
	tagged    int
	itTicks   int
	distance  float64
}

// Arena is one arena match's handler. Make it with [New].
type Arena struct {
	maxPlayers int
	minPlayers int
	tickRate   int
	limitTicks int
	dt         float64
	cooldown   int // TagCooldown in ticks

	players [MaxSlots]player
	slotOf  map[string]int // by UserID
	count   int

	phase      Phase
	ticksLeft  int
	it         int // slot, or -1
	itCooldown int

	state State  // reused every tick
	buf   []byte // reused every tick
	ebuf  []byte // event data, reused

	// Stats counts the inputs this match ignored.
	Stats Stats
}

// Stats counts inputs the server did not apply, for tests and metrics.
type Stats struct {
	BadInputs   uint64 // undecodable payloads (or op codes other than OpInput, which the engine refuses first)
	StaleInputs uint64 // seq not above the last applied one
}

// New returns a handler for one match; register it with
// engine.Register(arena.Mode, arena.New).
func New() match.Handler {
	return &Arena{
		slotOf: make(map[string]int, MaxSlots),
		it:     -1,
		state:  State{Players: make([]PlayerState, 0, MaxSlots)},
		buf:    make([]byte, 0, StateHeaderSize+MaxSlots*PlayerStateSize),
	}
}

// InputOps declares the only input op code, OpInput: the engine refuses
// the others ([match.ErrUnknownOp]) before they reach Loop.
func (a *Arena) InputOps() []match.OpCode { return []match.OpCode{OpInput} }

// ParamKeys declares the four parameters: the engine refuses any other
// before Init, so a misspelt one is an error rather than a default.
func (a *Arena) ParamKeys() []string {
	return []string{ParamMaxPlayers, ParamMinPlayers, ParamTimeLimit, ParamTickRate}
}

// Init reads the parameters.
func (a *Arena) Init(d *match.Dispatcher, params match.Params) (match.Settings, error) {
	var err error
	if a.maxPlayers, err = params.Int(ParamMaxPlayers, DefaultMaxPlayers, 2, MaxSlots); err != nil {
		return match.Settings{}, err
	}
	if a.minPlayers, err = params.Int(ParamMinPlayers, DefaultMinPlayers, 2, a.maxPlayers); err != nil {
		return match.Settings{}, err
	}
	if a.tickRate, err = params.Int(ParamTickRate, DefaultTickRate, 1, 128); err != nil {
		return match.Settings{}, err
	}
	limit, err := params.Duration(ParamTimeLimit, DefaultTimeLimit, 10*time.Second, 24*time.Hour)
	if err != nil {
		return match.Settings{}, err
	}
	a.limitTicks = int(limit * time.Duration(a.tickRate) / time.Second)
	a.ticksLeft = a.limitTicks
	a.dt = 1 / float64(a.tickRate)
	a.cooldown = int(TagCooldown * time.Duration(a.tickRate) / time.Second)
	return match.Settings{TickRate: a.tickRate, MaxPlayers: a.maxPlayers, Label: "waiting"}, nil
}

// ErrFull is JoinAttempt's refusal when every slot is taken, which happens
// only in a match restored from a snapshot, whose players keep their slots
// until they come back.
var ErrFull = errors.New("full")

// JoinAttempt admits anyone until the match is full (the engine checks). In
// a restored match (see [Arena.Restore]) the slots of players not back yet
// stay reserved for them.
func (a *Arena) JoinAttempt(d *match.Dispatcher, p match.Presence, meta map[string]string) error {
	if _, ok := a.slotOf[p.UserID]; !ok && a.count >= a.maxPlayers {
		return ErrFull
	}
	return nil
}

// Join puts p in the lowest free slot at its spawn point. A player restored
// from a snapshot (see [Arena.Restore]) gets their own slot back, standing
// still where they were.
func (a *Arena) Join(d *match.Dispatcher, p match.Presence) {
	if slot, ok := a.slotOf[p.UserID]; ok {
		pl := &a.players[slot]
		pl.p, pl.connected = p, true
		pl.dirX, pl.dirY = 0, 0
		a.sendRoster(d)
		return
	}
	slot := 0
	for a.players[slot].active {
		slot++
	}
	x, y := spawn(slot, a.maxPlayers)
	a.players[slot] = player{p: p, active: true, connected: true, x: x, y: y}
	a.slotOf[p.UserID] = slot
	a.count++
	if a.phase == PhaseWaiting && a.count >= a.minPlayers {
		a.phase = PhasePlaying
		a.it = a.lowestSlot(-1)
		a.itCooldown = a.cooldown
		_ = d.SetLabel("playing")
	}
	a.sendRoster(d)
}

// spawn spreads the slots on a circle around the centre.
func spawn(slot, n int) (x, y float64) {
	angle := 2 * math.Pi * float64(slot) / float64(n)
	return Width/2 + 350*math.Cos(angle), Height/2 + 350*math.Sin(angle)
}

// lowestSlot returns the lowest active slot other than not, or -1.
func (a *Arena) lowestSlot(not int) int {
	for i := range a.players {
		if a.players[i].active && i != not {
			return i
		}
	}
	return -1
}

// Leave frees p's slot. If fewer than two players remain during the game,
// the match ends; an empty match ends too.
func (a *Arena) Leave(d *match.Dispatcher, p match.Presence, reason match.Reason) {
	slot, ok := a.slotOf[p.UserID]
	if !ok {
		return
	}
	delete(a.slotOf, p.UserID)
	a.players[slot] = player{}
	a.count--
	switch {
	case a.count == 0:
		_ = d.End(match.Results{Reason: "abandoned"})
		return
	case a.phase == PhasePlaying && a.count < 2:
		a.finish(d, "opponents_left")
		return
	}
	if a.it == slot {
		a.it = a.nextSlot(slot)
		a.itCooldown = a.cooldown
	}
	a.sendRoster(d)
}

// nextSlot returns the next active slot after slot, cyclically.
func (a *Arena) nextSlot(slot int) int {
	for i := 1; i <= MaxSlots; i++ {
		if s := (slot + i) % MaxSlots; a.players[s].active {
			return s
		}
	}
	return -1
}

// Loop applies the inputs, moves everyone, resolves collisions and tags,
// runs the clock and broadcasts the state.
func (a *Arena) Loop(d *match.Dispatcher, inputs []match.Input) {
	for i := range inputs {
		a.apply(&inputs[i])
	}
	a.move()
	a.collide(d)
	if a.phase == PhasePlaying {
		if a.it >= 0 {
			a.players[a.it].itTicks++
		}
		if a.itCooldown > 0 {
			a.itCooldown--
		}
		a.ticksLeft--
		if a.ticksLeft <= 0 {
			a.finish(d, "time_limit")
			return
		}
	}
	a.broadcastState(d)
}

// apply records the newest direction from one input.
func (a *Arena) apply(in *match.Input) {
	slot, ok := a.slotOf[in.Presence.UserID]
	if !ok {
		return
	}
	if in.Op != OpInput {
		a.Stats.BadInputs++
		return
	}
	msg, err := DecodeInput(in.Data)
	if err != nil {
		a.Stats.BadInputs++
		return
	}
	pl := &a.players[slot]
	if msg.Seq <= pl.lastSeq {
		a.Stats.StaleInputs++
		return
	}
	pl.lastSeq = msg.Seq
	pl.dirX, pl.dirY = direction(msg.DX, msg.DY)
}

// direction turns a raw input direction into a vector of length at most 1.
func direction(dx, dy int8) (float64, float64) {
	x, y := float64(dx)/127, float64(dy)/127
	if l := math.Hypot(x, y); l > 1 {
		x, y = x/l, y/l
	}
	return x, y
}

// move advances everyone by one tick at their direction's speed, inside the
// walls. The velocity is what the player actually did this tick.
func (a *Arena) move() {
	for i := range a.players {
		pl := &a.players[i]
		if !pl.active {
			continue
		}
		dirX, dirY := pl.dirX, pl.dirY
		if !pl.connected {
			dirX, dirY = 0, 0
		}
		ox, oy := pl.x, pl.y
		pl.x = clamp(pl.x+dirX*MaxSpeed*a.dt, Radius, Width-Radius)
		pl.y = clamp(pl.y+dirY*MaxSpeed*a.dt, Radius, Height-Radius)
		pl.vx, pl.vy = (pl.x-ox)/a.dt, (pl.y-oy)/a.dt
		pl.distance += math.Hypot(pl.x-ox, pl.y-oy)
	}
}

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }

// collide tags and separates overlapping players.
func (a *Arena) collide(d *match.Dispatcher) {
	for i := range a.players {
		pi := &a.players[i]
		if !pi.active {
			continue
		}
		for j := i + 1; j < MaxSlots; j++ {
			pj := &a.players[j]
			if !pj.active {
				continue
			}
			dx, dy := pj.x-pi.x, pj.y-pi.y
			dist := math.Hypot(dx, dy)
			if dist >= 2*Radius {
				continue
			}
			if a.phase == PhasePlaying && a.itCooldown == 0 && (a.it == i || a.it == j) {
				tagger, target := i, j
				if a.it == j {
					tagger, target = j, i
				}
				a.players[tagger].score++
				a.players[tagger].tags++
				a.players[target].tagged++
				a.it, a.itCooldown = target, a.cooldown
				// A tag is a key moment: persistence stores it as a
				// match.event {"by": account, "tagged": account}. The
				// bytes are built in a reused buffer (no allocation).
				a.ebuf = append(append(append(append(append(a.ebuf[:0], `{"by":"`...), a.players[tagger].p.UserID...), `","tagged":"`...), a.players[target].p.UserID...), `"}`...)
				_ = d.Emit("tag", a.ebuf)
			}
			// Push both apart along the line between them.
			nx, ny := 1.0, 0.0
			if dist > 1e-9 {
				nx, ny = dx/dist, dy/dist
			}
			push := (2*Radius - dist) / 2
			pi.x, pi.y = clamp(pi.x-nx*push, Radius, Width-Radius), clamp(pi.y-ny*push, Radius, Height-Radius)
			pj.x, pj.y = clamp(pj.x+nx*push, Radius, Width-Radius), clamp(pj.y+ny*push, Radius, Height-Radius)
		}
	}
}

// encodeState fills a.state from the players and encodes it into a.buf.
func (a *Arena) encodeState(d *match.Dispatcher) []byte {
	s := &a.state
	s.Tick = d.Tick()
	s.ServerTimeMs = d.Now().UnixMilli()
	s.TimeLeftMs = uint32(int64(max(a.ticksLeft, 0)) * 1000 / int64(a.tickRate))
	s.Phase = a.phase
	s.Players = s.Players[:0]
	for i := range a.players {
		pl := &a.players[i]
		if !pl.active {
			continue
		}
		var flags uint8
		if a.it == i {
			flags |= FlagIt
		}
		if !pl.connected {
			flags |= FlagDisconnected
		}
		s.Players = append(s.Players, PlayerState{
			Slot: uint8(i), Flags: flags, Score: uint16(min(pl.score, math.MaxUint16)), LastSeq: pl.lastSeq,
			X: float32(pl.x), Y: float32(pl.y), VX: float32(pl.vx), VY: float32(pl.vy),
		})
	}
	a.buf = AppendState(a.buf[:0], s)
	return a.buf
}

func (a *Arena) broadcastState(d *match.Dispatcher) {
	_ = d.Broadcast(OpState, a.encodeState(d))
}

// finish broadcasts the final state and ends the match with the ranking.
func (a *Arena) finish(d *match.Dispatcher, reason string) {
	a.phase = PhaseEnded
	a.broadcastState(d)
	_ = d.End(a.Results(reason))
}

// Results ranks the seated players: highest score first, then least time as
// "it"; players equal on both share a placement.
func (a *Arena) Results(reason string) match.Results {
	var slots []int
	for i := range a.players {
		if a.players[i].active {
			slots = append(slots, i)
		}
	}
	better := func(x, y int) int { // negative if slot x ranks before slot y
		px, py := &a.players[x], &a.players[y]
		if px.score != py.score {
			return py.score - px.score
		}
		return px.itTicks - py.itTicks
	}
	slices.SortStableFunc(slots, better)
	r := match.Results{Reason: reason, Players: make([]match.PlayerResult, len(slots))}
	for k, s := range slots {
		pl := &a.players[s]
		place := k + 1
		if k > 0 && better(slots[k-1], s) == 0 {
			place = r.Players[k-1].Placement
		}
		r.Players[k] = match.PlayerResult{
			Presence:  pl.p,
			Placement: place,
			Score:     int64(pl.score),
			Stats: map[string]float64{
				"tags":       float64(pl.tags),
				"tagged":     float64(pl.tagged),
				"it_seconds": float64(pl.itTicks) / float64(a.tickRate),
				"distance":   math.Round(pl.distance),
			},
		}
	}
	return r
}

// Terminate ends the match at once with the ranking so far.
func (a *Arena) Terminate(d *match.Dispatcher, grace time.Duration) {
	a.finish(d, "shutdown")
}

// Disconnected stops p's player where it stands.
func (a *Arena) Disconnected(d *match.Dispatcher, p match.Presence) {
	if slot, ok := a.slotOf[p.UserID]; ok {
		a.players[slot].connected = false
	}
}

// Reconnected resumes p's player and sends p the roster.
func (a *Arena) Reconnected(d *match.Dispatcher, p match.Presence) {
	if slot, ok := a.slotOf[p.UserID]; ok {
		pl := &a.players[slot]
		pl.p, pl.connected = p, true
		pl.dirX, pl.dirY = 0, 0
	}
	if b, err := json.Marshal(a.roster()); err == nil {
		_ = d.Broadcast(OpRoster, b, p)
	}
}

func (a *Arena) roster() Roster {
	r := Roster{Players: []RosterEntry{}}
	for i := range a.players {
		if pl := &a.players[i]; pl.active {
			r.Players = append(r.Players, RosterEntry{Slot: i, UserID: pl.p.UserID, Username: pl.p.Username})
		}
	}
	return r
}

func (a *Arena) sendRoster(d *match.Dispatcher) {
	b, err := json.Marshal(a.roster())
	if err != nil {
		d.Logger().Error("arena: encoding roster", "err", err)
		return
	}
	_ = d.Broadcast(OpRoster, b)
}

var (
	_ match.ConnectionWatcher = (*Arena)(nil)
	_ match.ParamKeys         = (*Arena)(nil)
)
