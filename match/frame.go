package match

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
)

// OpCode says what a frame or an input carries. Games define their own op
// codes below [OpReservedMin]; the engine's are [OpReservedMin] and up.
type OpCode uint16

// Engine op codes.
const (
	// OpReservedMin is the first op code reserved for the engine. A
	// handler cannot broadcast it or anything above it; inputs with these
	// op codes are refused by [Engine.Input].
	OpReservedMin OpCode = 0xFF00
	// OpWarning is a frame the engine sends to one player as a warning;
	// the payload is the reason as UTF-8 text, for instance
	// "rate_limited" (the player's inputs are being dropped and it will
	// be kicked if it goes on).
	OpWarning OpCode = 0xFF00
)

// FrameKind is the first byte of every encoded [Frame], so the gateway's
// protocol can tell match frames from its own messages (which should start
// with another byte).
const FrameKind byte = 0x01

// frameHeaderMin is the size of a frame's header without the match id.
const frameHeaderMin = 1 + 2 + 8 + 1

// Frame is one message from a match to its players: op code, payload, match
// id and the tick during which it was produced. It is encoded once, when the
// handler broadcasts, and the same *Frame is handed to every recipient; it is
// immutable from then on (the slices returned by Payload and Bytes must not
// be modified).
//
// The encoding ([Frame.Bytes]), all integers little-endian:
//
//	offset  size  field
//	0       1     kind, always FrameKind (0x01)
//	1       2     op code (uint16)
//	3       8     tick (uint64)
//	11      1     n, length of the match id
//	12      n     match id (ASCII)
//	12+n    ...   payload (game-defined; the rest of the message)
//
// Frames come from a pool. A [Sender] that calls [Frame.Release] once for
// every Send it accepted, when it no longer needs the frame, lets the engine
// reuse the memory, so a match in steady state allocates nothing per tick. A
// Sender that never calls Release is also correct: the garbage collector
// frees the frame.
type Frame struct {
	buf    []byte // Headroom bytes for a transport header, then the encoding
	hr     int    // headroom in buf: Headroom, or 0 for a parsed frame
	off    int    // payload offset in buf
	op     OpCode
	tick   uint64
	id     string
	refs   atomic.Int32
	pooled bool
	// wire is the transport's encoding (see Framed), set once under
	// wireMu; framed tells it is set.
	wireMu sync.Mutex
	framed atomic.Bool
	wire   []byte
}

// Headroom is the room a pooled frame keeps in front of its encoding for a
// transport's header (a WebSocket header takes at most 10 bytes), so that
// [Frame.Framed] adds the header without copying the frame.
const Headroom = 16

var framePool = sync.Pool{New: func() any { return &Frame{pooled: true} }}

// newFrame returns a pooled frame holding one reference (the caller's).
func newFrame(matchID string, tick uint64, op OpCode, payload []byte) *Frame {
	f := framePool.Get().(*Frame)
	f.op, f.tick, f.id = op, tick, matchID
	f.hr = Headroom
	b := append(f.buf[:0], make([]byte, Headroom)...)
	b = append(b, FrameKind)
	b = binary.LittleEndian.AppendUint16(b, uint16(op))
	b = binary.LittleEndian.AppendUint64(b, tick)
	b = append(b, byte(len(matchID)))
	b = append(b, matchID...)
	f.off = len(b)
	f.buf = append(b, payload...)
	f.refs.Store(1)
	f.framed.Store(false)
	f.wire = nil
	return f
}

// Framed returns the frame as a transport sends it: header(dst, n) appends
// the transport's header for an n-byte message, and the result is that
// header followed by [Frame.Bytes]. It is computed once per frame, for the
// first recipient of a broadcast, and every later recipient gets the same
// bytes. A header of at most [Headroom] bytes is written into the room the
// frame keeps in front of its encoding, so nothing is copied; a longer one,
// or a frame from [ParseFrame], gets a new slice. The result must not be
// modified, and must not be used after the frame is released.
func (f *Frame) Framed(header func(dst []byte, n int) []byte) []byte {
	if f.framed.Load() {
		return f.wire
	}
	f.wireMu.Lock()
	defer f.wireMu.Unlock()
	if f.framed.Load() {
		return f.wire
	}
	// The header is appended at the start of the headroom (a header that
	// fits does not grow the slice: no allocation), then moved to its end.
	h := header(f.buf[:0:f.hr], len(f.buf)-f.hr)
	if len(h) <= f.hr {
		start := f.hr - len(h)
		copy(f.buf[start:f.hr], h)
		f.wire = f.buf[start:]
	} else {
		w := make([]byte, 0, len(h)+len(f.buf)-f.hr)
		f.wire = append(append(w, h...), f.buf[f.hr:]...)
	}
	f.framed.Store(true)
	return f.wire
}

// retain adds a reference.
func (f *Frame) retain() { f.refs.Add(1) }

// Op returns the frame's op code.
func (f *Frame) Op() OpCode { return f.op }

// Tick returns the tick during which the frame was produced (0 before the
// first tick).
func (f *Frame) Tick() uint64 { return f.tick }

// MatchID returns the id of the match that produced the frame.
func (f *Frame) MatchID() string { return f.id }

// Payload returns the game-defined payload. Do not modify it.
func (f *Frame) Payload() []byte { return f.buf[f.off:] }

// Bytes returns the whole encoded frame (see [Frame]), ready to be written
// as one binary message. Do not modify it.
func (f *Frame) Bytes() []byte { return f.buf[f.hr:] }

// Release tells the engine that one recipient is done with f (it has been
// written, or dropped). Call it at most once per Send that returned true;
// after the last Release the frame must not be used any more. Frames from
// [ParseFrame] ignore Release.
func (f *Frame) Release() {
	if !f.pooled {
		return
	}
	switch n := f.refs.Add(-1); {
	case n == 0:
		f.id = ""
		if cap(f.buf) > 64<<10 { // do not pool the odd huge frame
			f.buf = nil
		}
		framePool.Put(f)
	case n < 0:
		panic("match: Frame released more times than it was sent")
	}
}

// ErrBadFrame is returned by [ParseFrame] for bytes that are not a frame.
var ErrBadFrame = errors.New("match: malformed frame")

// ParseFrame decodes an encoded frame, for clients and tests. The returned
// frame shares b's memory.
func ParseFrame(b []byte) (*Frame, error) {
	if len(b) < frameHeaderMin || b[0] != FrameKind {
		return nil, ErrBadFrame
	}
	n := int(b[11])
	if len(b) < frameHeaderMin+n {
		return nil, ErrBadFrame
	}
	return &Frame{
		buf:  b,
		off:  frameHeaderMin + n,
		op:   OpCode(binary.LittleEndian.Uint16(b[1:])),
		tick: binary.LittleEndian.Uint64(b[3:]),
		id:   string(b[12 : 12+n]),
	}, nil
}

// Sender is how matches reach players; the gateway implements it. It is
// called from match goroutines, many at once, so it must be safe for
// concurrent use, and it must not call back into the [Engine] synchronously
// for the same match (that would deadlock on Join or Leave).
type Sender interface {
	// Send queues f for delivery to p and returns at once. It returns
	// false if p's outgoing queue is full or p is unknown: the frame is
	// dropped for that player only and the match carries on (the engine
	// counts it in [Info.FramesDropped]). What to do about a player who
	// cannot keep up (close the connection, resynchronise) is the
	// gateway's decision. When Send returns true the gateway owns one
	// reference to f and should call f.Release once it is done with it;
	// when it returns false the engine keeps the reference, and the
	// Sender must not release it. f must not be modified.
	Send(p Presence, f *Frame) bool

	// Close tells the gateway that p no longer has a seat in match
	// matchID, and why. It is called exactly once for every seat the
	// engine frees, whatever the cause (left, disconnected, kicked, match
	// ended, match error, shutdown); the match sends p nothing after it.
	Close(p Presence, matchID string, reason Reason)
}
