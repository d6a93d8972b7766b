package wsnet

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

type recordHandler struct{ log []string }

func (h *recordHandler) OnOpen(*Conn) {}
func (h *recordHandler) OnMessage(_ *Conn, op OpCode, p []byte) {
	h.log = append(h.log, fmt.Sprintf("%d:%x", op, p))
}
func (h *recordHandler) OnClose(*Conn, CloseReason) {}

// offlineLink is a socket that never flushes, for feeding bytes to the
// parser.
type offlineLink struct{}

func (offlineLink) willFlush(*Conn)             {}
func (offlineLink) flushSoon(*Conn)             {}
func (offlineLink) park(*Conn)                  {}
func (offlineLink) requestTeardown(*Conn)       {}
func (offlineLink) tearDown(*Conn, CloseReason) {}
func (offlineLink) shutdown(*Conn)              {}
func (offlineLink) closeSocket(*Conn, []byte)   {}
func (offlineLink) write(*Conn, *scratch, [][]byte, bool) (int, bool, error) {
	return 0, false, errClosed
}

// offlineConn returns a Conn with no socket, for feeding bytes to the parser.
func offlineConn(h Handler, maxMsg int) *Conn {
	s := &Server{handler: h, cfg: Config{MaxMessageSize: maxMsg}}
	s.cfg.setDefaults()
	return &Conn{srv: s, l: offlineLink{}}
}

// feed consumes data in chunks of the given sizes and returns the messages
// delivered and whether the connection asked to close (and with what code).
func feed(data []byte, chunks []int, maxMsg int) ([]string, *CloseReason) {
	h := &recordHandler{}
	c := offlineConn(h, maxMsg)
	data = bytes.Clone(data) // unmasking is in place
	for i := 0; len(data) > 0; i++ {
		n := len(data)
		if len(chunks) > 0 {
			n = min(max(chunks[i%len(chunks)], 1), len(data))
		}
		if !c.consume(data[:n]) {
			break
		}
		data = data[n:]
	}
	return h.log, c.closeAfter
}

func clientFrame(op ws.OpCode, fin bool, p []byte) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.MaskFrameInPlace(ws.NewFrame(op, fin, bytes.Clone(p))))
	return b.Bytes()
}

func TestParseAgainstGobwas(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 70000} {
		fr := clientFrame(ws.OpBinary, true, bytes.Repeat([]byte{'a'}, n))
		h, hn, err := parseHeader(fr, true)
		if err != nil || hn == 0 || h.length != int64(n) || !h.fin || h.op != OpBinary {
			t.Fatalf("n=%d: %+v %d %v", n, h, hn, err)
		}
		gh, err := ws.ReadHeader(bytes.NewReader(fr))
		if err != nil || gh.Length != h.length || gh.Mask != h.mask {
			t.Fatalf("n=%d gobwas disagrees: %+v", n, gh)
		}
		// Server frame encoder agrees with gobwas reader.
		sf := EncodeFrame(OpBinary, bytes.Repeat([]byte{'b'}, n))
		f, err := ws.ReadFrame(bytes.NewReader(sf))
		if err != nil || len(f.Payload) != n || f.Header.Masked {
			t.Fatalf("encode n=%d: %v", n, err)
		}
	}
}

func TestSplitFeeding(t *testing.T) {
	var stream []byte
	stream = append(stream, clientFrame(ws.OpText, true, []byte("hello"))...)
	stream = append(stream, clientFrame(ws.OpBinary, false, []byte("ab"))...)
	stream = append(stream, clientFrame(ws.OpPing, true, []byte("x"))...)
	stream = append(stream, clientFrame(ws.OpContinuation, true, []byte("cd"))...)
	stream = append(stream, clientFrame(ws.OpBinary, true, bytes.Repeat([]byte{1}, 300))...)
	want, _ := feed(stream, nil, 1024)
	if len(want) != 3 {
		t.Fatalf("got %v", want)
	}
	for _, ch := range [][]int{{1}, {2, 3}, {7}, {13, 1, 100}} {
		got, cr := feed(stream, ch, 1024)
		if fmt.Sprint(got) != fmt.Sprint(want) || cr != nil {
			t.Fatalf("chunks %v: %v %v", ch, got, cr)
		}
	}
	_, cr := feed(stream, nil, 100)
	if cr == nil || cr.Code != CloseMessageTooBig {
		t.Fatalf("want 1009, got %+v", cr)
	}
}

// FuzzConsume checks the frame parser never panics, and that how the bytes
// are split across reads does not change what is delivered.
func FuzzConsume(f *testing.F) {
	f.Add(clientFrame(ws.OpText, true, []byte("hi")), uint8(3))
	f.Add(append(clientFrame(ws.OpBinary, false, []byte("a")), clientFrame(ws.OpContinuation, true, []byte("b"))...), uint8(1))
	f.Add(clientFrame(ws.OpClose, true, []byte{3, 232, 'x'}), uint8(2))
	f.Add(clientFrame(ws.OpBinary, true, make([]byte, 200)), uint8(50))
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3, 4}, uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole, cr1 := feed(data, nil, 512)
		split, cr2 := feed(data, []int{int(chunk), 1, int(chunk) / 2}, 512)
		if fmt.Sprint(whole) != fmt.Sprint(split) {
			t.Fatalf("split changed delivery: %v vs %v", whole, split)
		}
		if (cr1 == nil) != (cr2 == nil) || (cr1 != nil && cr1.Code != cr2.Code) {
			t.Fatalf("split changed close: %+v vs %+v", cr1, cr2)
		}
	})
}
