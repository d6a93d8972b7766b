package events

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Stable event ids. A match restored on another node (after a crash, from
// its last snapshot) plays again the ticks since that snapshot and emits
// their key moments again; its end may be reported by two nodes. Events
// named by what they are, not by when they were made, are deduplicated by
// the queue (Nats-Msg-Id) and by persistence (processed_events) like any
// redelivery: one row per (match, tick, place in the tick), one end per
// match.
//
// The id is a valid UUIDv7 that sorts like the match's timeline: its
// 48-bit time is the match's creation time in milliseconds plus the tick
// (so the events of a match list in tick order), its 12 "rand_a" bits the
// event's place in its tick, and its 62 "rand_b" bits come from SHA-256 of
// the match id, the kind, the tick and the place.

// StableID is the id of a match's event of kind (TypeMatchStarted,
// TypeMatchEvent or TypeMatchEnded) at tick and place seq.
func StableID(matchID string, created time.Time, kind string, tick uint64, seq uint16) string {
	h := sha256.New()
	h.Write([]byte(matchID))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	var n [10]byte
	binary.BigEndian.PutUint64(n[:8], tick)
	binary.BigEndian.PutUint16(n[8:], seq)
	h.Write(n[:])
	sum := h.Sum(nil)

	var u [16]byte
	ms := uint64(created.UnixMilli()) + tick
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	s := min(seq, 0x0FFF)
	u[6] = 0x70 | byte(s>>8) // version 7
	u[7] = byte(s)
	copy(u[8:], sum[:8])
	u[8] = 0x80 | u[8]&0x3F // variant 10
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}

// NewMatchStartedID is NewMatchStarted with the id given (StableID).
func NewMatchStartedID(id, matchID, node string, p MatchStarted) (Event, error) {
	return newEvent(id, matchID, node, &p)
}

// NewMatchEventID is NewMatchEvent with the id given (StableID).
func NewMatchEventID(id, matchID, node string, p MatchEvent) (Event, error) {
	return newEvent(id, matchID, node, &p)
}

// NewMatchEndedID is NewMatchEnded with the id given (StableID).
func NewMatchEndedID(id, matchID, node string, p MatchEnded) (Event, error) {
	return newEvent(id, matchID, node, &p)
}
