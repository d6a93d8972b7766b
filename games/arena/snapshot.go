package arena

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/multijuego/multijuego/match"
)

// SnapshotVersion is the version of the [Arena.Snapshot] encoding, its third
// byte. [Arena.Restore] accepts only this version.
const SnapshotVersion = 1

// snapshotMagic starts every snapshot.
const snapshotMagic = "AR"

// Sizes of the parts of a snapshot.
const (
	snapHeaderSize = 35
	snapPlayerSize = 2 + 4 + 4*4 + 7*8 // fixed part of a player record
)

// ErrBadSnapshot is returned by [Arena.Restore] for bytes that are not a
// valid snapshot; the error wraps it with the reason.
var ErrBadSnapshot = errors.New("arena: malformed snapshot")

// Snapshot returns the whole game state (settings, phase, clock, "it", every
// seated player's presence, position, velocity, direction, last applied
// input seq, score and stats, and [Arena.Stats]) in a compact binary
// encoding that [Arena.Restore] accepts. All integers little-endian, floats
// as IEEE 754 float64 bits:
//
//	header (35 bytes)
//	0    2  magic "AR"
//	2    1  version, SnapshotVersion
//	3    1  max players, uint8
//	4    1  min players, uint8
//	5    1  tick rate, uint8
//	6    1  phase, uint8 (Phase)
//	7    1  slot of "it", uint8; 0xFF for nobody
//	8    4  time limit in ticks, uint32
//	12   4  ticks left, uint32
//	16   2  ticks of tag cooldown left, uint16
//	18   8  Stats.BadInputs, uint64
//	26   8  Stats.StaleInputs, uint64
//	34   1  n, number of player records
//	player record, n times, by increasing slot
//	0    1  slot, uint8
//	1    1  flags, uint8: bit 0 connected
//	2    4  last applied input seq, uint32
//	6    16 score, tags made, times tagged, ticks as "it": 4 × uint32
//	22   56 x, y, vx, vy, direction x, direction y, distance: 7 × float64
//	78   .. user id, session id, username: each a uint16 length then bytes
//
// The slice is new at every call.
func (a *Arena) Snapshot() ([]byte, error) {
	size := snapHeaderSize
	for i := range a.players {
		if pl := &a.players[i]; pl.active {
			size += snapPlayerSize + 6 + len(pl.p.UserID) + len(pl.p.SessionID) + len(pl.p.Username)
		}
	}
	le := binary.LittleEndian
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	it := byte(0xFF)
	if a.it >= 0 {
		it = byte(a.it)
	}
	b = append(b, SnapshotVersion, byte(a.maxPlayers), byte(a.minPlayers), byte(a.tickRate), byte(a.phase), it)
	b = le.AppendUint32(b, uint32(a.limitTicks))
	b = le.AppendUint32(b, uint32(max(a.ticksLeft, 0)))
	b = le.AppendUint16(b, uint16(a.itCooldown))
	b = le.AppendUint64(b, a.Stats.BadInputs)
	b = le.AppendUint64(b, a.Stats.StaleInputs)
	b = append(b, byte(a.count))
	for i := range a.players {
		pl := &a.players[i]
		if !pl.active {
			continue
		}
		var flags byte
		if pl.connected {
			flags |= 1
		}
		b = append(b, byte(i), flags)
		b = le.AppendUint32(b, pl.lastSeq)
		for _, n := range [...]int{pl.score, pl.tags, pl.tagged, pl.itTicks} {
			if n < 0 || n > math.MaxInt32 {
				return nil, fmt.Errorf("arena: snapshot: counter %d out of range", n)
			}
			b = le.AppendUint32(b, uint32(n))
		}
		for _, f := range [...]float64{pl.x, pl.y, pl.vx, pl.vy, pl.dirX, pl.dirY, pl.distance} {
			b = le.AppendUint64(b, math.Float64bits(f))
		}
		for _, s := range [...]string{pl.p.UserID, pl.p.SessionID, pl.p.Username} {
			if len(s) > math.MaxUint16 {
				return nil, fmt.Errorf("arena: snapshot: presence string of %d bytes", len(s))
			}
			b = le.AppendUint16(b, uint16(len(s)))
			b = append(b, s...)
		}
	}
	return b, nil
}

// snapReader reads a snapshot, remembering whether it ran out of bytes.
type snapReader struct {
	b   []byte
	bad bool
}

func (r *snapReader) next(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n) // zeros; the caller checks r.bad in the end
	}
	x := r.b[:n]
	r.b = r.b[n:]
	return x
}

func (r *snapReader) u8() uint8   { return r.next(1)[0] }
func (r *snapReader) u16() uint16 { return binary.LittleEndian.Uint16(r.next(2)) }
func (r *snapReader) u32() uint32 { return binary.LittleEndian.Uint32(r.next(4)) }
func (r *snapReader) u64() uint64 { return binary.LittleEndian.Uint64(r.next(8)) }
func (r *snapReader) f64() float64 {
	return math.Float64frombits(r.u64())
}

func (r *snapReader) str() string {
	n := int(r.u16())
	if r.bad {
		return ""
	}
	return string(r.next(n))
}

func badSnapshot(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
}

// Restore replaces the game state with a [Arena.Snapshot]'s, settings
// included, so a handler fresh from [New] needs no Init first. Bytes that
// are not a valid snapshot of this version are rejected with an error
// wrapping [ErrBadSnapshot], and the state is left as it was.
//
// Restored players keep their slots: when one of them joins the match (on
// the node the match was restored on), [Arena.Join] seats them back in their
// slot.
func (a *Arena) Restore(b []byte) error {
	if len(b) < snapHeaderSize || string(b[:2]) != snapshotMagic {
		return badSnapshot("no header")
	}
	if b[2] != SnapshotVersion {
		return badSnapshot("version %d, want %d", b[2], SnapshotVersion)
	}
	r := &snapReader{b: b[3:]}
	maxPlayers, minPlayers, tickRate := int(r.u8()), int(r.u8()), int(r.u8())
	phase, it := Phase(r.u8()), int(r.u8())
	limitTicks, ticksLeft := int64(r.u32()), int64(r.u32())
	itCooldown := int(r.u16())
	stats := Stats{BadInputs: r.u64(), StaleInputs: r.u64()}
	n := int(r.u8())
	cooldown := int(TagCooldown * time.Duration(tickRate) / time.Second)
	switch {
	case maxPlayers < 2 || maxPlayers > MaxSlots:
		return badSnapshot("max players %d", maxPlayers)
	case minPlayers < 2 || minPlayers > maxPlayers:
		return badSnapshot("min players %d", minPlayers)
	case tickRate < 1 || tickRate > 128:
		return badSnapshot("tick rate %d", tickRate)
	case phase > PhaseEnded:
		return badSnapshot("phase %d", phase)
	case limitTicks < 10*int64(tickRate) || limitTicks > 24*3600*int64(tickRate):
		return badSnapshot("time limit of %d ticks", limitTicks)
	case ticksLeft > limitTicks:
		return badSnapshot("%d ticks left of %d", ticksLeft, limitTicks)
	case itCooldown > cooldown:
		return badSnapshot("tag cooldown %d", itCooldown)
	case n > maxPlayers:
		return badSnapshot("%d players", n)
	}
	if it == 0xFF {
		it = -1
	}

	var players [MaxSlots]player
	users := make(map[string]int, n)
	last := -1
	for range n {
		slot, flags := int(r.u8()), r.u8()
		pl := player{active: true, connected: flags&1 != 0, lastSeq: r.u32()}
		counters := [4]uint32{r.u32(), r.u32(), r.u32(), r.u32()}
		pl.x, pl.y, pl.vx, pl.vy = r.f64(), r.f64(), r.f64(), r.f64()
		pl.dirX, pl.dirY, pl.distance = r.f64(), r.f64(), r.f64()
		pl.p = match.Presence{UserID: r.str(), SessionID: r.str(), Username: r.str()}
		if r.bad {
			return badSnapshot("truncated")
		}
		for _, c := range counters {
			if c > math.MaxInt32 {
				return badSnapshot("counter %d", c)
			}
		}
		pl.score, pl.tags, pl.tagged, pl.itTicks = int(counters[0]), int(counters[1]), int(counters[2]), int(counters[3])
		if err := checkPlayer(&pl, slot, flags, last, maxPlayers); err != nil {
			return err
		}
		if _, dup := users[pl.p.UserID]; dup {
			return badSnapshot("user %q in two slots", pl.p.UserID)
		}
		users[pl.p.UserID] = slot
		players[slot] = pl
		last = slot
	}
	switch {
	case r.bad:
		return badSnapshot("truncated")
	case len(r.b) != 0:
		return badSnapshot("%d trailing bytes", len(r.b))
	case it != -1 && (it >= MaxSlots || !players[it].active):
		return badSnapshot("it is slot %d, not a player", it)
	}

	a.maxPlayers, a.minPlayers, a.tickRate = maxPlayers, minPlayers, tickRate
	a.limitTicks, a.ticksLeft = int(limitTicks), int(ticksLeft)
	a.dt = 1 / float64(tickRate)
	a.cooldown = cooldown
	a.players = players
	if a.slotOf == nil {
		a.slotOf = make(map[string]int, MaxSlots)
	}
	clear(a.slotOf)
	for u, s := range users {
		a.slotOf[u] = s
	}
	a.count = n
	a.phase, a.it, a.itCooldown = phase, it, itCooldown
	a.Stats = stats
	return nil
}

// checkPlayer validates one restored player record.
func checkPlayer(pl *player, slot int, flags uint8, last, maxPlayers int) error {
	finite := func(fs ...float64) bool {
		for _, f := range fs {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return false
			}
		}
		return true
	}
	inField := func(v, size float64) bool { return v >= Radius && v <= size-Radius }
	const slack = 1e-6
	switch {
	case slot <= last || slot >= maxPlayers:
		return badSnapshot("slot %d after slot %d (max players %d)", slot, last, maxPlayers)
	case flags&^1 != 0:
		return badSnapshot("slot %d: flags %#x", slot, flags)
	case pl.p.UserID == "" || pl.p.SessionID == "":
		return badSnapshot("slot %d: presence without ids", slot)
	case !finite(pl.x, pl.y, pl.vx, pl.vy, pl.dirX, pl.dirY, pl.distance):
		return badSnapshot("slot %d: non-finite number", slot)
	case !inField(pl.x, Width) || !inField(pl.y, Height):
		return badSnapshot("slot %d: position (%g, %g) off the field", slot, pl.x, pl.y)
	case math.Abs(pl.vx) > MaxSpeed*(1+slack) || math.Abs(pl.vy) > MaxSpeed*(1+slack):
		return badSnapshot("slot %d: velocity (%g, %g)", slot, pl.vx, pl.vy)
	case math.Hypot(pl.dirX, pl.dirY) > 1+slack:
		return badSnapshot("slot %d: direction (%g, %g)", slot, pl.dirX, pl.dirY)
	case pl.distance < 0:
		return badSnapshot("slot %d: distance %g", slot, pl.distance)
	}
	return nil
}

var _ match.Snapshotter = (*Arena)(nil)
