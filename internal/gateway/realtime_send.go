package gateway

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/wsnet"
	"github.com/multijuego/multijuego/match"
)

// --- server -> client ------------------------------------------------------------

func (rt *realtime) send(s *session, typ, cid string, payload any) {
	b, err := json.Marshal(payload)
	if err != nil {
		rt.gw.log.Error("realtime: encode message", "type", typ, "err", err, "session", s.id)
		return
	}
	s.conn.Send(envelopeFrame(typ, cid, b))
}

var jsonNull = []byte("null")

// appendEnvelope appends {"type":typ,"cid":cid,"payload":payload} to dst.
// payload must be one valid JSON value; empty stands for null.
func appendEnvelope(dst []byte, typ, cid string, payload []byte) []byte {
	if len(payload) == 0 {
		payload = jsonNull
	}
	dst = append(dst, `{"type":`...)
	dst = appendJSONString(dst, typ)
	dst = append(dst, `,"cid":`...)
	dst = appendJSONString(dst, cid)
	dst = append(dst, `,"payload":`...)
	dst = append(dst, payload...)
	return append(dst, '}')
}

// envelopeFrame encodes an envelope as a complete WebSocket text frame, in
// one allocation and without reflection: the JSON is written after room
// for the longest frame header, then the header just before it.
func envelopeFrame(typ, cid string, payload []byte) []byte {
	const room = wsnet.MaxServerHeaderLen
	b := make([]byte, room, room+len(`{"type":"","cid":"","payload":}`)+len(typ)+len(cid)+max(len(payload), 4)+8)
	b = appendEnvelope(b, typ, cid, payload)
	var hb [wsnet.MaxServerHeaderLen]byte
	h := wsnet.AppendFrameHeader(hb[:0], wsnet.OpText, len(b)-room)
	start := room - len(h)
	copy(b[start:], h)
	return b[start:]
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does; HTML characters are left alone.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			if c < 0x20 {
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				dst = append(dst, "\ufffd"...)
			}
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func (rt *realtime) fail(s *session, cid string, err error) {
	e := errcode.As(err)
	if e == nil {
		rt.gw.log.Error("realtime internal error", "err", err, "session", s.id)
		e = errcode.New(errcode.Internal, "Internal error.")
	}
	rt.send(s, "error", cid, ErrorDetail{Code: e.Code, Message: e.Message, Field: e.Field})
}

// session returns the open session with id, or nil. It takes no lock.
func (rt *realtime) session(id string) *session {
	if v, ok := rt.sessions.Load(id); ok {
		return v.(*session)
	}
	return nil
}

// sessionOf returns p's session: the one its presence carries (set by
// session.presence, handed back by the engine with every frame), else the
// registry's. A closed session's socket refuses frames, as a missing one
// would.
func (rt *realtime) sessionOf(p match.Presence) *session {
	if s, ok := p.Conn.(*session); ok && s.id == p.SessionID {
		return s
	}
	return rt.session(p.SessionID)
}

// Send implements match.Sender: the engine encodes a broadcast once, and
// its WebSocket header is written once too, into room the frame keeps in
// front of its bytes (Frame.Framed: no copy), so every recipient queues the
// same bytes. The presence carries the session: no lookup, no lock. It
// never blocks; a full queue disconnects the slow client (wsnet's overflow
// rule). The socket releases the frame once it is
// written or dropped, so a running match reuses its frames.
func (rt *realtime) Send(p match.Presence, f *match.Frame) bool {
	s := rt.sessionOf(p)
	if s == nil {
		return false
	}
	return s.conn.SendRelease(f.Framed(binaryHeader), f)
}

// binaryHeader appends the header of a binary WebSocket message of n bytes.
func binaryHeader(dst []byte, n int) []byte { return wsnet.AppendFrameHeader(dst, wsnet.OpBinary, n) }

func encodeBinary(b []byte) []byte { return wsnet.EncodeFrame(wsnet.OpBinary, b) }

// Deliver queues a frame another node encoded (match.Frame.Bytes) to the
// sockets of sessions: it is framed for WebSocket once (one copy per frame
// and gateway: the bytes sit inside a NATS batch), and every socket queues
// the same bytes. It returns how many queued it.
func (rt *realtime) Deliver(sessions []string, frame []byte) int {
	var buf [16]*session
	to := buf[:0]
	for _, id := range sessions {
		if s := rt.session(id); s != nil {
			to = append(to, s)
		}
	}
	wire := encodeBinary(frame)
	n := 0
	for _, s := range to {
		if s.conn.Send(wire) {
			n++
		}
	}
	return n
}

// InputRefused answers an input the owning game node refused.
func (rt *realtime) InputRefused(sessionID string, op match.OpCode, err error) {
	if s := rt.session(sessionID); s != nil {
		rt.inputResult(s, op, err)
	}
}

// Close implements match.Sender: the player is out of the match.
func (rt *realtime) Close(p match.Presence, matchID string, reason match.Reason) {
	s := rt.sessionOf(p)
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.match == matchID {
		s.match = ""
	}
	s.mu.Unlock()
	rt.send(s, "match.closed", "", map[string]string{"match_id": matchID, "reason": string(reason)})
}

// close shuts the transport down (all sockets get 1001).
