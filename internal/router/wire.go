package router

import (
	"encoding/binary"
	"errors"

	"github.com/multijuego/multijuego/match"
)

// The two hot-path messages are binary, written and read by hand: a batch
// of inputs for one match (gateway -> owning node), and a batch of frames,
// seat closes and input refusals for one gateway (game node -> gateway).
// Strings are length-prefixed (one byte: ids are short), payloads two or
// four bytes, all little-endian. Control requests are small JSON (rpc.go).

// errWire is the one error a malformed batch gets: batches come from our own
// nodes, so a bad one is a bug or an intruder, never a player's mistake.
var errWire = errors.New("router: malformed batch")

// maxStr is the longest id or reason a batch carries.
const maxStr = 255

func appendStr(b []byte, s string) []byte {
	if len(s) > maxStr {
		s = s[:maxStr]
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errWire
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.err = errWire
		return 0
	}
	v := binary.LittleEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errWire
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.err = errWire
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string { return string(r.bytes(int(r.byte()))) }

// --- inputs: gateway -> node ------------------------------------------------

// appendInput adds one player input to a match's input batch:
// session, user, op (u16), data length (u16), data.
func appendInput(b []byte, p match.Presence, op match.OpCode, data []byte) []byte {
	b = appendStr(b, p.SessionID)
	b = appendStr(b, p.UserID)
	b = binary.LittleEndian.AppendUint16(b, uint16(op))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// appendNodeInput adds one input to a node's input batch (gateway -> the
// node known to host the match): the match id, then as appendInput.
func appendNodeInput(b []byte, matchID string, p match.Presence, op match.OpCode, data []byte) []byte {
	return appendInput(appendStr(b, matchID), p, op, data)
}

// Input is one decoded input of a batch; Data aliases the batch. Match is
// set in a node's batch only.
type Input struct {
	Match    string
	Presence match.Presence
	Op       match.OpCode
	Data     []byte
}

// decodeInputs calls fn for each input of a batch, in order, and stops at
// the first malformed one with errWire (the inputs before it were handed
// over: they are whole and valid).
func decodeInputs(b []byte, fn func(Input)) error {
	return decodeInputBatch(b, false, fn)
}

// decodeNodeInputs is decodeInputs for a node's batch.
func decodeNodeInputs(b []byte, fn func(Input)) error {
	return decodeInputBatch(b, true, fn)
}

func decodeInputBatch(b []byte, withMatch bool, fn func(Input)) error {
	r := reader{b: b}
	for len(r.b) > 0 {
		var in Input
		if withMatch {
			in.Match = r.str()
		}
		in.Presence.SessionID = r.str()
		in.Presence.UserID = r.str()
		in.Op = match.OpCode(r.u16())
		in.Data = r.bytes(int(r.u16()))
		if r.err != nil {
			return r.err
		}
		fn(in)
	}
	return nil
}

// --- output: node -> gateway ------------------------------------------------

// Entry kinds of an output batch.
const (
	kindFrame     = 1 // u32 length, frame bytes, u16 count, count session ids
	kindClose     = 2 // match id, session id, user id, reason
	kindInputFail = 3 // session id, u16 op, error name
	kindHost      = 4 // match id, node id ("": not this node any more)
)

// Out is one decoded entry of an output batch; byte slices alias the batch.
type Out struct {
	Kind     byte
	Frame    []byte   // kindFrame: the frame's bytes (match.Frame.Bytes)
	Sessions []string // kindFrame: its recipients on this gateway
	Match    string   // kindClose, kindHost
	Presence match.Presence
	Reason   string       // kindClose: match.Reason; kindInputFail: error name; kindHost: the node
	Op       match.OpCode // kindInputFail
}

func appendFrame(b, frame []byte, sessions []string) []byte {
	b = append(b, kindFrame)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
	b = append(b, frame...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(sessions)))
	for _, s := range sessions {
		b = appendStr(b, s)
	}
	return b
}

func appendClose(b []byte, matchID string, p match.Presence, reason match.Reason) []byte {
	b = append(b, kindClose)
	b = appendStr(b, matchID)
	b = appendStr(b, p.SessionID)
	b = appendStr(b, p.UserID)
	return appendStr(b, string(reason))
}

func appendInputFail(b []byte, sessionID string, op match.OpCode, name string) []byte {
	b = append(b, kindInputFail)
	b = appendStr(b, sessionID)
	b = binary.LittleEndian.AppendUint16(b, uint16(op))
	return appendStr(b, name)
}

func appendHost(b []byte, matchID, node string) []byte {
	b = append(b, kindHost)
	b = appendStr(b, matchID)
	return appendStr(b, node)
}

// maxFrame bounds one frame in an output batch (the engine's frames are far
// smaller; this only stops a corrupt length from being believed).
const maxFrame = 1 << 20

// decodeOut calls fn for each entry of an output batch, in order, and
// stops at the first malformed one with errWire.
func decodeOut(b []byte, fn func(*Out)) error {
	r := reader{b: b}
	var o Out
	for len(r.b) > 0 {
		o = Out{Kind: r.byte(), Sessions: o.Sessions[:0]}
		switch o.Kind {
		case kindFrame:
			n := r.u32()
			if n > maxFrame {
				return errWire
			}
			o.Frame = r.bytes(int(n))
			for k := int(r.u16()); k > 0 && r.err == nil; k-- {
				o.Sessions = append(o.Sessions, r.str())
			}
		case kindClose:
			o.Match = r.str()
			o.Presence.SessionID = r.str()
			o.Presence.UserID = r.str()
			o.Reason = r.str()
		case kindInputFail:
			o.Presence.SessionID = r.str()
			o.Op = match.OpCode(r.u16())
			o.Reason = r.str()
		case kindHost:
			o.Match = r.str()
			o.Reason = r.str()
		default:
			return errWire
		}
		if r.err != nil {
			return r.err
		}
		fn(&o)
	}
	return nil
}
