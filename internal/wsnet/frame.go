package wsnet

import (
	"encoding/binary"
	"unicode/utf8"
)

// OpCode is a WebSocket frame opcode (RFC 6455 §5.2).
type OpCode byte

// Opcodes.
const (
	OpContinuation OpCode = 0x0
	OpText         OpCode = 0x1
	OpBinary       OpCode = 0x2
	OpClose        OpCode = 0x8
	OpPing         OpCode = 0x9
	OpPong         OpCode = 0xA
)

func (op OpCode) isControl() bool { return op&0x8 != 0 }

// Close codes used by the transport (RFC 6455 §7.4.1).
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001 // ping timeout, server shutdown
	CloseProtocolError   uint16 = 1002 // malformed frame, unmasked client frame
	CloseNoStatus        uint16 = 1005 // close frame without a code (never sent)
	CloseAbnormal        uint16 = 1006 // connection dropped without close frame (never sent)
	CloseInvalidPayload  uint16 = 1007 // text message is not UTF-8
	ClosePolicyViolation uint16 = 1008 // slow consumer, write timeout, read timeout
	CloseMessageTooBig   uint16 = 1009 // frame or message larger than MaxMessageSize
	CloseInternalError   uint16 = 1011
)

// maxHeaderLen is the largest frame header: 2 + 8 (length) + 4 (mask).
const maxHeaderLen = 14

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	op     OpCode
	masked bool
	mask   [4]byte
	length int64
}

// protoErr is a frame-level error that must close the connection with code.
type protoErr struct {
	code uint16
	text string
}

func (e *protoErr) Error() string { return e.text }

var (
	errRSV          = &protoErr{CloseProtocolError, "reserved bits set"}
	errOpcode       = &protoErr{CloseProtocolError, "reserved opcode"}
	errControl      = &protoErr{CloseProtocolError, "fragmented or oversized control frame"}
	errLength       = &protoErr{CloseProtocolError, "invalid payload length"}
	errUnmasked     = &protoErr{CloseProtocolError, "client frame not masked"}
	errContinuation = &protoErr{CloseProtocolError, "unexpected continuation frame"}
	errExpectedCont = &protoErr{CloseProtocolError, "expected continuation frame"}
	errTooBig       = &protoErr{CloseMessageTooBig, "message too big"}
	errUTF8         = &protoErr{CloseInvalidPayload, "invalid utf-8"}
	errCloseCode    = &protoErr{CloseProtocolError, "invalid close frame"}
)

// parseHeader parses one frame header at the start of b. It returns n == 0
// (and no error) when b does not yet hold the whole header. Headers of client
// frames must be masked when requireMask is set (RFC 6455 §5.1).
func parseHeader(b []byte, requireMask bool) (h frameHeader, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	if b0&0x70 != 0 {
		return h, 0, errRSV
	}
	h.fin = b0&0x80 != 0
	h.op = OpCode(b0 & 0x0f)
	switch h.op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return h, 0, errOpcode
	}
	h.masked = b1&0x80 != 0
	if requireMask && !h.masked {
		return h, 0, errUnmasked
	}
	n = 2
	switch l := b1 & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:4]))
		if h.length < 126 {
			return h, 0, errLength // non-minimal encoding
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 || u <= 0xffff {
			return h, 0, errLength
		}
		h.length = int64(u)
		n = 10
	default:
		h.length = int64(l)
	}
	if h.op.isControl() && (!h.fin || h.length > 125) {
		return h, 0, errControl
	}
	if h.masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// unmask XORs p in place with mask, starting at mask offset 0.
func unmask(p []byte, mask [4]byte) {
	m := binary.LittleEndian.Uint32(mask[:])
	m64 := uint64(m) | uint64(m)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		v := binary.LittleEndian.Uint64(p[i:])
		binary.LittleEndian.PutUint64(p[i:], v^m64)
	}
	for ; i < len(p); i++ {
		p[i] ^= mask[i&3]
	}
}

// AppendFrame appends an unmasked (server-to-client), unfragmented frame
// with opcode op and the given payload to dst.
func AppendFrame(dst []byte, op OpCode, payload []byte) []byte {
	return append(AppendFrameHeader(dst, op, len(payload)), payload...)
}

// MaxServerHeaderLen is the longest header AppendFrameHeader appends.
const MaxServerHeaderLen = 10

// AppendFrameHeader appends the header of an unmasked, unfragmented frame
// with opcode op and a payload of n bytes to dst, for callers that write
// the payload themselves (AppendFrame is the header then the payload).
func AppendFrameHeader(dst []byte, op OpCode, n int) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// EncodeFrame encodes a complete server frame once. The result can be passed
// to Conn.Send of any number of connections (a broadcast shares the bytes);
// it must not be modified afterwards.
func EncodeFrame(op OpCode, payload []byte) []byte {
	return AppendFrame(make([]byte, 0, len(payload)+MaxServerHeaderLen), op, payload)
}

// EncodeClose encodes a close frame with code and reason (truncated to fit
// the 125-byte control frame limit).
func EncodeClose(code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, code)
	p = append(p, reason...)
	return EncodeFrame(OpClose, p)
}

// parseClosePayload validates a received close frame payload.
func parseClosePayload(p []byte) (code uint16, text string, err error) {
	switch {
	case len(p) == 0:
		return CloseNoStatus, "", nil
	case len(p) == 1:
		return 0, "", errCloseCode
	}
	code = binary.BigEndian.Uint16(p)
	if !validCloseCode(code) || !utf8.Valid(p[2:]) {
		return 0, "", errCloseCode
	}
	return code, string(p[2:]), nil
}

func validCloseCode(c uint16) bool {
	switch {
	case c >= 3000 && c <= 4999:
		return true
	case c >= 1000 && c <= 1011:
		return c != 1004 && c != 1005 && c != 1006
	}
	return false
}
