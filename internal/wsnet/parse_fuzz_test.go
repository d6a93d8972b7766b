package wsnet

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// headerLen is the header size parseHeader must report for h.
func headerLen(h frameHeader) int {
	n := 2
	switch {
	case h.length > 0xffff:
		n = 10
	case h.length >= 126:
		n = 4
	}
	if h.masked {
		n += 4
	}
	return n
}

// FuzzParseFrame checks the frame header parser on arbitrary bytes (never
// a panic; a parsed header is consistent with its bytes, and no prefix of
// them parses differently) and that every frame EncodeFrame makes, masked
// as a client would send it, parses back to the same op code and payload.
func FuzzParseFrame(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'}, byte(OpText), []byte("hello"))
	f.Add([]byte{0x82, 0xfe, 0x00, 0x7e, 9, 9, 9, 9}, byte(OpBinary), make([]byte, 126))
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}, byte(OpBinary), make([]byte, 70000))
	f.Add([]byte{0x89, 0x80, 0, 0, 0, 0}, byte(OpPing), []byte("p"))
	f.Add([]byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8}, byte(OpClose), []byte{0x03, 0xe8})
	f.Add([]byte{0x02, 0x7e, 0x00, 0x10}, byte(OpContinuation), []byte{})
	f.Add([]byte{0xf1, 0x00}, byte(0x3), []byte{})
	f.Fuzz(func(t *testing.T, data []byte, opb byte, payload []byte) {
		for _, requireMask := range []bool{true, false} {
			h, n, err := parseHeader(data, requireMask)
			if err != nil {
				if n != 0 {
					t.Fatalf("% x: error %v with n=%d", data, err, n)
				}
				continue
			}
			if n == 0 {
				if len(data) >= maxHeaderLen {
					t.Fatalf("% x: incomplete with %d bytes", data, len(data))
				}
				continue
			}
			switch {
			case n > len(data) || n != headerLen(h):
				t.Fatalf("% x: n=%d for %+v", data, n, h)
			case h.length < 0:
				t.Fatalf("% x: negative length", data)
			case h.op.isControl() && (!h.fin || h.length > 125):
				t.Fatalf("% x: bad control frame accepted: %+v", data, h)
			case requireMask && !h.masked:
				t.Fatalf("% x: unmasked frame accepted", data)
			case h.fin != (data[0]&0x80 != 0) || h.op != OpCode(data[0]&0x0f) || h.masked != (data[1]&0x80 != 0):
				t.Fatalf("% x: header %+v disagrees with its bytes", data, h)
			}
			if h.masked && !bytes.Equal(h.mask[:], data[n-4:n]) {
				t.Fatalf("% x: mask %x", data, h.mask)
			}
			// Shorter reads ask for more bytes; the exact header parses
			// the same.
			for k := range n {
				if _, kn, kerr := parseHeader(data[:k], requireMask); kn != 0 || kerr != nil {
					t.Fatalf("% x: prefix of %d bytes gave n=%d err=%v", data, k, kn, kerr)
				}
			}
			if h2, n2, err2 := parseHeader(data[:n], requireMask); h2 != h || n2 != n || err2 != nil {
				t.Fatalf("% x: exact header parses as %+v %d %v", data, h2, n2, err2)
			}
		}

		// EncodeFrame round trip, unmasked (as sent) and masked (as a client
		// sends it).
		op := OpCode(opb & 0x0f)
		switch op {
		case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		default:
			op = OpBinary
		}
		if op.isControl() && len(payload) > 125 {
			payload = payload[:125]
		}
		fr := EncodeFrame(op, payload)
		h, n, err := parseHeader(fr, false)
		if err != nil || n == 0 || h.op != op || !h.fin || h.masked || h.length != int64(len(payload)) || !bytes.Equal(fr[n:], payload) {
			t.Fatalf("EncodeFrame(%d, %d bytes): %+v n=%d err=%v", op, len(payload), h, n, err)
		}
		if len(fr) != n+len(payload) || n > MaxServerHeaderLen {
			t.Fatalf("EncodeFrame(%d, %d bytes): %d bytes with a %d-byte header", op, len(payload), len(fr), n)
		}
		var mask [4]byte
		binary.LittleEndian.PutUint32(mask[:], uint32(len(payload))*2654435761+uint32(opb))
		masked := append([]byte{fr[0], fr[1] | 0x80}, fr[2:n]...)
		masked = append(masked, mask[:]...)
		body := bytes.Clone(payload)
		for i := range body {
			body[i] ^= mask[i&3]
		}
		masked = append(masked, body...)
		h, n, err = parseHeader(masked, true)
		if err != nil || n == 0 || h.op != op || !h.masked || h.mask != mask || h.length != int64(len(payload)) {
			t.Fatalf("masked frame: %+v n=%d err=%v", h, n, err)
		}
		got := bytes.Clone(masked[n:])
		unmask(got, h.mask)
		if !bytes.Equal(got, payload) {
			t.Fatalf("masked frame: payload %x, want %x", got, payload)
		}
	})
}
