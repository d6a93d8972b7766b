package arena

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/multijuego/multijuego/match"
)

// Op codes.
const (
	// OpInput (client → server) carries one [Input], [InputSize] bytes.
	OpInput match.OpCode = 1
	// OpState (server → clients) carries the [State], every tick.
	OpState match.OpCode = 2
	// OpRoster (server → clients) is JSON, a [Roster], sent to everyone
	// when a player joins or leaves and to a player who reconnects.
	OpRoster match.OpCode = 3
)

// InputSize is the size of an encoded [Input].
const InputSize = 8

// Input is what a client sends each time its controls change (or at its own
// rate): a sequence number and a direction. Encoding, little-endian:
//
//	offset  size  field
//	0       4     seq, uint32: increases with every input the client sends
//	4       1     dx, int8 in -127..127 (right is positive)
//	5       1     dy, int8 in -127..127 (down is positive)
//	6       2     reserved, must be 0
//
// The direction (dx, dy)/127 is clamped to length 1, so a diagonal is no
// faster than a straight line. The server applies only the newest input
// (highest seq) each tick and moves the player one tick's worth at the
// maximum speed in that direction: sending more inputs does not move a
// player faster, and an input with a seq not above the last applied one is
// ignored. Clients reconcile their prediction with [PlayerState.LastSeq].
type Input struct {
	Seq    uint32 // increases with every input
	DX, DY int8   // direction, -127..127 on each axis
}

// ErrBadInput is returned by [DecodeInput] for bytes that are not an Input.
var ErrBadInput = errors.New("arena: malformed input")

// DecodeInput decodes an OpInput payload. It accepts exactly the encodings
// [AppendInput] produces: InputSize bytes, directions in -127..127, reserved
// bytes zero.
func DecodeInput(b []byte) (Input, error) {
	if len(b) != InputSize || b[4] == 0x80 || b[5] == 0x80 || b[6] != 0 || b[7] != 0 {
		return Input{}, ErrBadInput
	}
	return Input{
		Seq: binary.LittleEndian.Uint32(b),
		DX:  int8(b[4]),
		DY:  int8(b[5]),
	}, nil
}

// AppendInput appends in's encoding to dst. Directions of -128 are sent as
// -127.
func AppendInput(dst []byte, in Input) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, in.Seq)
	return append(dst, byte(max(in.DX, -127)), byte(max(in.DY, -127)), 0, 0)
}

// Phase is the stage of an arena match.
type Phase uint8

// The phases.
const (
	PhaseWaiting Phase = 0 // fewer than the minimum players; movement only, no tagging
	PhasePlaying Phase = 1 // the clock runs
	PhaseEnded   Phase = 2 // the last state of the match
)

// Player flags in [PlayerState.Flags].
const (
	FlagIt           uint8 = 1 << 0 // this player is "it": touching another tags them
	FlagDisconnected uint8 = 1 << 1 // connection lost; the seat is kept for the grace period
)

// StateHeaderSize and PlayerStateSize are the sizes of the parts of an
// encoded [State].
const (
	StateHeaderSize = 22
	PlayerStateSize = 24
)

// State is the OpState payload, broadcast every tick. Encoding,
// little-endian, a header then one record per player:
//
//	header (22 bytes)
//	0    8  tick, uint64
//	8    8  server tick time, int64 unix milliseconds
//	16   4  time left, uint32 milliseconds (the whole limit while waiting)
//	20   1  phase, uint8 (Phase)
//	21   1  n, number of player records
//	player record (24 bytes), n times, by slot
//	0    1  slot, uint8 (see the OpRoster frame for who is in which slot)
//	1    1  flags, uint8 (FlagIt, FlagDisconnected)
//	2    2  score, uint16
//	4    4  last input seq the server applied for this player, uint32
//	8    4  x, float32 (0..Width)
//	12   4  y, float32 (0..Height)
//	16   4  vx, float32 units per second
//	20   4  vy, float32 units per second
//
// Sixteen players make 406 bytes.
type State struct {
	Tick         uint64        // the tick that produced this state
	ServerTimeMs int64         // the server's clock at that tick, unix ms
	TimeLeftMs   uint32        // until the time limit
	Phase        Phase         // waiting, playing or ended
	Players      []PlayerState // by slot
}

// PlayerState is one player's record in a [State].
type PlayerState struct {
	Slot    uint8   // 0..15, stable while the player is seated
	Flags   uint8   // FlagIt, FlagDisconnected
	Score   uint16  // tags made
	LastSeq uint32  // seq of the last input applied for this player (0: none yet)
	X, Y    float32 // position of the centre
	VX, VY  float32 // velocity over the last tick, units per second
}

// ErrBadState is returned by [DecodeState] for bytes that are not a State.
var ErrBadState = errors.New("arena: malformed state")

// AppendState appends s's encoding to dst; with a dst of enough capacity it
// does not allocate.
func AppendState(dst []byte, s *State) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, s.Tick)
	dst = le.AppendUint64(dst, uint64(s.ServerTimeMs))
	dst = le.AppendUint32(dst, s.TimeLeftMs)
	dst = append(dst, byte(s.Phase), byte(len(s.Players)))
	for i := range s.Players {
		p := &s.Players[i]
		dst = append(dst, p.Slot, p.Flags)
		dst = le.AppendUint16(dst, p.Score)
		dst = le.AppendUint32(dst, p.LastSeq)
		dst = le.AppendUint32(dst, math.Float32bits(p.X))
		dst = le.AppendUint32(dst, math.Float32bits(p.Y))
		dst = le.AppendUint32(dst, math.Float32bits(p.VX))
		dst = le.AppendUint32(dst, math.Float32bits(p.VY))
	}
	return dst
}

// DecodeState decodes an OpState payload into s, reusing s.Players'
// capacity.
func DecodeState(b []byte, s *State) error {
	if len(b) < StateHeaderSize {
		return ErrBadState
	}
	n := int(b[21])
	if len(b) != StateHeaderSize+n*PlayerStateSize || n > MaxSlots {
		return ErrBadState
	}
	le := binary.LittleEndian
	s.Tick = le.Uint64(b)
	s.ServerTimeMs = int64(le.Uint64(b[8:]))
	s.TimeLeftMs = le.Uint32(b[16:])
	s.Phase = Phase(b[20])
	s.Players = s.Players[:0]
	for i := range n {
		r := b[StateHeaderSize+i*PlayerStateSize:]
		s.Players = append(s.Players, PlayerState{
			Slot:    r[0],
			Flags:   r[1],
			Score:   le.Uint16(r[2:]),
			LastSeq: le.Uint32(r[4:]),
			X:       math.Float32frombits(le.Uint32(r[8:])),
			Y:       math.Float32frombits(le.Uint32(r[12:])),
			VX:      math.Float32frombits(le.Uint32(r[16:])),
			VY:      math.Float32frombits(le.Uint32(r[20:])),
		})
	}
	return nil
}

// Roster is the OpRoster payload: who sits in which slot.
type Roster struct {
	Players []RosterEntry `json:"players"` // by slot
}

// RosterEntry is one seated player.
type RosterEntry struct {
	Slot     int    `json:"slot"`     // as in PlayerState.Slot
	UserID   string `json:"user_id"`  // the account
	Username string `json:"username"` // display name
}
