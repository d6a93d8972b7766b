package wsnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/multijuego/multijuego/internal/tlstest"
)

type event struct {
	c *Conn
	r CloseReason
}

type testHandler struct {
	echo   bool
	opened chan *Conn
	closed chan event
	msgs   chan []byte
}

func newTestHandler(echo bool) *testHandler {
	return &testHandler{echo: echo, opened: make(chan *Conn, 64), closed: make(chan event, 64), msgs: make(chan []byte, 1024)}
}

func (h *testHandler) OnOpen(c *Conn) { h.opened <- c }
func (h *testHandler) OnMessage(c *Conn, op OpCode, p []byte) {
	if h.echo {
		c.SendMessage(op, p)
	}
	select {
	case h.msgs <- bytes.Clone(p):
	default:
	}
}
func (h *testHandler) OnClose(c *Conn, r CloseReason) { h.closed <- event{c, r} }

// transport is one way the tests reach the server: a backend, over plain
// TCP or TLS. Every behaviour test runs on each (eachTransport).
type transport struct {
	name    string
	backend Backend
	tls     bool
	tls12   bool // the server offers TLS 1.2 at most
}

// transports: auto is epoll on Linux (stream elsewhere, or with
// MULTIJUEGO_WSNET=portable). TLS goes through ListenTLS: a TLS 1.3 socket
// moves to the epoll backend's record layer where it runs, a TLS 1.2 one
// stays with crypto/tls on the stream backend.
var transports = []transport{
	{name: "auto", backend: BackendAuto},
	{name: "stream", backend: BackendStream},
	{name: "tls", backend: BackendAuto, tls: true},
	{name: "tls1.2", backend: BackendAuto, tls: true, tls12: true},
}

func eachTransport(t *testing.T, test func(*testing.T, transport)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { test(t, tr) })
	}
}

// testCert is a self-signed certificate for 127.0.0.1, made once per run.
var testCert = sync.OnceValue(func() tlstest.Cert {
	c, err := tlstest.New()
	if err != nil {
		panic(err)
	}
	return c
})

// clientTLS trusts testCert.
func clientTLS() *tls.Config { return &tls.Config{RootCAs: testCert().Roots} }

// listen returns a listener for tr and the URL scheme that reaches it.
func listen(t testing.TB, tr transport) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tr.tls {
		return ListenTLS(ln, serverTLS(tr)), "wss://"
	}
	return ln, "ws://"
}

// serverTLS is the server's TLS configuration for tr.
func serverTLS(tr transport) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{testCert().TLS}}
	if tr.tls12 {
		c.MaxVersion = tls.VersionTLS12
	}
	return c
}

func startServer(t testing.TB, tr transport, cfg Config, h Handler) (*Server, string) {
	t.Helper()
	cfg.Backend = tr.backend
	s, err := NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, scheme := listen(t, tr)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return s, scheme + ln.Addr().String() + "/ws"
}

// startHTTP serves s as an http.Handler (the hijack path) over tr.
func startHTTP(t testing.TB, tr transport, s *Server) string {
	t.Helper()
	hs := httptest.NewUnstartedServer(s)
	scheme := "ws://"
	if tr.tls {
		hs.Listener = ListenTLS(hs.Listener, serverTLS(tr))
		scheme = "wss://"
	}
	hs.Start()
	t.Cleanup(hs.Close)
	return scheme + hs.Listener.Addr().String() + "/ws"
}

// client wraps a gobwas client connection, reading through the handshake's
// buffered reader when there is one.
type client struct {
	net.Conn
	br *bufio.Reader
}

func (c *client) Read(p []byte) (int, error) {
	if c.br != nil && c.br.Buffered() > 0 {
		return c.br.Read(p)
	}
	return c.Conn.Read(p)
}

// shrinkReadBuffer makes the client's socket receive buffer small, so that
// a client that does not read fills it soon.
func (c *client) shrinkReadBuffer() {
	nc := c.Conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
}

func dial(t testing.TB, url string, hdr http.Header) *client {
	t.Helper()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(hdr), Timeout: 5 * time.Second}
	if strings.HasPrefix(url, "wss:") {
		d.TLSConfig = clientTLS()
	}
	nc, br, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &client{Conn: nc, br: br}
}

func waitEvent[T any](t testing.TB, ch chan T, d time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		var z T
		t.Fatalf("timed out after %v", d)
		return z
	}
}

func TestEcho(t *testing.T) { eachTransport(t, testEcho) }

func testEcho(t *testing.T, tr transport) {
	h := newTestHandler(true)
	_, url := startServer(t, tr, Config{}, h)
	c := dial(t, url, nil)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, m := range []string{"hello", strings.Repeat("x", 200), strings.Repeat("y", 60000)} {
		if err := wsutil.WriteClientText(c, []byte(m)); err != nil {
			t.Fatal(err)
		}
		got, op, err := wsutil.ReadServerData(c)
		if err != nil {
			t.Fatal(err)
		}
		if op != ws.OpText || string(got) != m {
			t.Fatalf("echo mismatch: op %v len %d want %d", op, len(got), len(m))
		}
	}
	// Fragmented binary message, with a ping interleaved.
	frames := []ws.Frame{
		ws.NewFrame(ws.OpBinary, false, []byte("ab")),
		ws.NewPingFrame([]byte("p")),
		ws.NewFrame(ws.OpContinuation, false, []byte("cd")),
		ws.NewFrame(ws.OpContinuation, true, []byte("ef")),
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := ws.WriteFrame(&buf, ws.MaskFrameInPlace(f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(c)
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "p" {
		t.Fatalf("pong: %v %+v", err, f.Header)
	}
	got, op, err := wsutil.ReadServerData(c)
	if err != nil || op != ws.OpBinary || string(got) != "abcdef" {
		t.Fatalf("fragmented echo: %q %v %v", got, op, err)
	}
}

func TestOversizedFrameCloses1009(t *testing.T) { eachTransport(t, testOversizedFrameCloses1009) }

func testOversizedFrameCloses1009(t *testing.T, tr transport) {
	h := newTestHandler(true)
	_, url := startServer(t, tr, Config{MaxMessageSize: 1024}, h)
	c := dial(t, url, nil)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientBinary(c, make([]byte, 2000)); err != nil {
		t.Fatal(err)
	}
	// The server closes right after its close frame; the reader's echo of
	// the close must not turn the close code into a broken pipe.
	_, _, err := wsutil.ReadServerData(struct {
		io.Reader
		io.Writer
	}{c, io.Discard})
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig {
		t.Fatalf("want close 1009, got %v", err)
	}
	ev := waitEvent(t, h.closed, 5*time.Second)
	if ev.r.Code != CloseMessageTooBig {
		t.Fatalf("OnClose reason %+v", ev.r)
	}
}

func TestInvalidUTF8Closes1007(t *testing.T) { eachTransport(t, testInvalidUTF8Closes1007) }

func testInvalidUTF8Closes1007(t *testing.T, tr transport) {
	h := newTestHandler(true)
	_, url := startServer(t, tr, Config{}, h)
	c := dial(t, url, nil)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientText(c, []byte{0xff, 0xfe}); err != nil {
		t.Fatal(err)
	}
	_, _, err := wsutil.ReadServerData(c)
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || ce.Code != ws.StatusInvalidFramePayloadData {
		t.Fatalf("want close 1007, got %v", err)
	}
}

func TestSlowConsumerDisconnected(t *testing.T) { eachTransport(t, testSlowConsumerDisconnected) }

func testSlowConsumerDisconnected(t *testing.T, tr transport) {
	h := newTestHandler(false)
	s, url := startServer(t, tr, Config{SendQueueLen: 64, SendQueueBytes: 1 << 20, WriteTimeout: time.Minute}, h)

	slow := dial(t, url, nil) // never reads
	slow.shrinkReadBuffer()
	slowConn := waitEvent(t, h.opened, 5*time.Second)
	fast := dial(t, url, nil)
	fastConn := waitEvent(t, h.opened, 5*time.Second)

	frame := EncodeFrame(OpBinary, bytes.Repeat([]byte{7}, 16<<10))
	var received int
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = fast.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			p, _, err := wsutil.ReadServerData(fast)
			if err != nil {
				return
			}
			if len(p) == 16<<10 {
				received++
			}
		}
	})
	sent := 0
	var ev event
	deadline := time.Now().Add(15 * time.Second)
loop:
	for time.Now().Before(deadline) {
		slowConn.Send(frame)
		if !fastConn.Send(frame) {
			t.Fatal("fast consumer refused")
		}
		sent++
		select {
		case ev = <-h.closed:
			break loop
		default:
		}
		if sent%2 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if ev.c != slowConn || ev.r != ReasonSlowConsumer {
		t.Fatalf("want slow consumer close of slow conn, got %+v (sent %d)", ev, sent)
	}
	if slowConn.Send(frame) {
		t.Fatal("Send on closed conn returned true")
	}
	// The fast client still gets everything.
	end := EncodeFrame(OpText, []byte("end"))
	fastConn.Send(end)
	time.Sleep(200 * time.Millisecond)
	_ = fast.Close()
	wg.Wait()
	if received != sent {
		t.Fatalf("fast client received %d of %d", received, sent)
	}
	if n := s.Len(); n > 1 {
		t.Fatalf("server has %d conns", n)
	}
}

func TestPingKeepsLiveDropsDead(t *testing.T) { eachTransport(t, testPingKeepsLiveDropsDead) }

func testPingKeepsLiveDropsDead(t *testing.T, tr transport) {
	h := newTestHandler(false)
	s, url := startServer(t, tr, Config{PingInterval: 100 * time.Millisecond, MissedPongs: 2}, h)
	live := dial(t, url, nil)
	liveConn := waitEvent(t, h.opened, 5*time.Second)
	go func() {
		for {
			// ReadServerData answers pings with pongs.
			if _, _, err := wsutil.ReadServerData(live); err != nil {
				return
			}
		}
	}()
	dead := dial(t, url, nil) // reads nothing, answers nothing
	_ = dead
	deadConn := waitEvent(t, h.opened, 5*time.Second)
	ev := waitEvent(t, h.closed, 5*time.Second)
	if ev.c != deadConn || ev.r != ReasonPingTimeout {
		t.Fatalf("got %+v", ev)
	}
	time.Sleep(500 * time.Millisecond)
	select {
	case ev := <-h.closed:
		t.Fatalf("unexpected close %+v", ev)
	default:
	}
	if s.Len() != 1 || !liveConn.Send(EncodeFrame(OpText, []byte("x"))) {
		t.Fatal("live connection was dropped")
	}
}

func TestAuthorizeRejects(t *testing.T) { eachTransport(t, testAuthorizeRejects) }

func testAuthorizeRejects(t *testing.T, tr transport) {
	cfg := Config{Authorize: func(r *Request) (any, error) {
		if r.Header.Get("Authorization") == "" {
			return nil, Reject(http.StatusUnauthorized, "no token")
		}
		if o := r.Header.Get("Origin"); o != "" && o != "https://ok.example" {
			return nil, Reject(http.StatusForbidden, "bad origin")
		}
		return "user-" + r.Header.Get("Authorization"), nil
	}}
	h := newTestHandler(false)
	s, url := startServer(t, tr, cfg, h)

	check := func(url string, hdr http.Header, want int) {
		t.Helper()
		d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(hdr), Timeout: 5 * time.Second}
		if tr.tls {
			d.TLSConfig = clientTLS()
		}
		nc, _, _, err := d.Dial(context.Background(), url)
		if want == 101 {
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			_ = nc.Close()
			return
		}
		var se ws.StatusError
		if !errors.As(err, &se) || int(se) != want {
			t.Fatalf("want status %d, got %v", want, err)
		}
	}
	check(url, nil, 401)
	check(url, http.Header{"Authorization": {"t"}, "Origin": {"https://evil.example"}}, 403)
	check(url, http.Header{"Authorization": {"t"}, "Origin": {"https://ok.example"}}, 101)
	c := waitEvent(t, h.opened, 5*time.Second)
	if c.Data() != "user-t" {
		t.Fatalf("data %v", c.Data())
	}

	// Same through the http.Handler (hijack) path.
	hurl := startHTTP(t, tr, s)
	check(hurl, nil, 401)
	check(hurl, http.Header{"Authorization": {"t"}, "Origin": {"https://evil.example"}}, 403)
	cl := dial(t, hurl, http.Header{"Authorization": {"t"}})
	waitEvent(t, h.opened, 5*time.Second)
	_ = cl.SetDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientText(cl, []byte("via http")); err != nil {
		t.Fatal(err)
	}
	if m := waitEvent(t, h.msgs, 5*time.Second); string(m) != "via http" {
		t.Fatalf("got %q", m)
	}
}

func TestCloseHandshake(t *testing.T) { eachTransport(t, testCloseHandshake) }

func testCloseHandshake(t *testing.T, tr transport) {
	h := newTestHandler(false)
	_, url := startServer(t, tr, Config{}, h)

	// Client-initiated.
	c := dial(t, url, nil)
	waitEvent(t, h.opened, 5*time.Second)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	f := ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")))
	if err := ws.WriteFrame(c, f); err != nil {
		t.Fatal(err)
	}
	rf, err := ws.ReadFrame(c)
	if err != nil || rf.Header.OpCode != ws.OpClose {
		t.Fatalf("want close reply: %v %+v", err, rf.Header)
	}
	if code, _ := ws.ParseCloseFrameData(rf.Payload); code != ws.StatusNormalClosure {
		t.Fatalf("reply code %d", code)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("want EOF after close")
	}
	ev := waitEvent(t, h.closed, 5*time.Second)
	if !ev.r.Remote || ev.r.Code != CloseNormal || ev.r.Text != "bye" {
		t.Fatalf("reason %+v", ev.r)
	}

	// Server-initiated, queued behind data.
	c2 := dial(t, url, nil)
	sc := waitEvent(t, h.opened, 5*time.Second)
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	sc.Send(EncodeFrame(OpText, []byte("last")))
	sc.Close(4000, "kick")
	if sc.Send(EncodeFrame(OpText, []byte("late"))) {
		t.Fatal("Send after Close returned true")
	}
	m, _, err := wsutil.ReadServerData(c2)
	if err != nil || string(m) != "last" {
		t.Fatalf("got %q %v", m, err)
	}
	_, _, err = wsutil.ReadServerData(c2)
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "kick" {
		t.Fatalf("want close 4000, got %v", err)
	}
	ev = waitEvent(t, h.closed, 5*time.Second)
	if ev.r.Remote || ev.r.Code != 4000 {
		t.Fatalf("reason %+v", ev.r)
	}
}

func TestUnmaskedFrameIsProtocolError(t *testing.T) {
	eachTransport(t, testUnmaskedFrameIsProtocolError)
}

func testUnmaskedFrameIsProtocolError(t *testing.T, tr transport) {
	h := newTestHandler(true)
	_, url := startServer(t, tr, Config{}, h)
	c := dial(t, url, nil)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(EncodeFrame(OpText, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	_, _, err := wsutil.ReadServerData(c)
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || ce.Code != ws.StatusProtocolError {
		t.Fatalf("want 1002, got %v", err)
	}
}

func TestBroadcastManyConns(t *testing.T) { eachTransport(t, testBroadcastManyConns) }

func testBroadcastManyConns(t *testing.T, tr transport) {
	h := newTestHandler(false)
	s, url := startServer(t, tr, Config{}, h)
	const n = 50
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = dial(t, url, nil)
		waitEvent(t, h.opened, 5*time.Second)
	}
	if got := s.Broadcast(EncodeFrame(OpText, []byte("tick"))); got != n {
		t.Fatalf("broadcast reached %d", got)
	}
	for _, c := range cs {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		m, _, err := wsutil.ReadServerData(c)
		if err != nil || string(m) != "tick" {
			t.Fatalf("got %q %v", m, err)
		}
	}
}

func TestOneWritevPerFlush(t *testing.T) { eachTransport(t, testOneWritevPerFlush) }

func testOneWritevPerFlush(t *testing.T, tr transport) {
	h := newTestHandler(false)
	s, url := startServer(t, tr, Config{}, h)
	c := dial(t, url, nil)
	sc := waitEvent(t, h.opened, 5*time.Second)
	before := s.WriteCalls()
	f1, f2, f3 := EncodeFrame(OpText, []byte("a")), EncodeFrame(OpText, []byte("b")), EncodeFrame(OpBinary, []byte("c"))
	if !sc.Send(f1, f2, f3) {
		t.Fatal("send")
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"a", "b", "c"} {
		m, _, err := wsutil.ReadServerData(c)
		if err != nil || string(m) != want {
			t.Fatalf("got %q %v", m, err)
		}
	}
	// The counter is bumped after writev returns, which can be after the
	// client has read the bytes: wait for it, then check it is exactly one.
	deadline := time.Now().Add(5 * time.Second)
	for s.WriteCalls() == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if d := s.WriteCalls() - before; d != 1 {
		t.Fatalf("%d writev calls for one Send of 3 frames", d)
	}
}

func TestPingFloodWithoutReadingIsBounded(t *testing.T) {
	eachTransport(t, testPingFloodWithoutReadingIsBounded)
}

func testPingFloodWithoutReadingIsBounded(t *testing.T, tr transport) {
	h := newTestHandler(false)
	_, url := startServer(t, tr, Config{SendQueueLen: 32, SendQueueBytes: 64 << 10, WriteTimeout: time.Minute}, h)
	c := dial(t, url, nil)
	c.shrinkReadBuffer()
	sc := waitEvent(t, h.opened, 5*time.Second)
	ping, _ := ws.CompileFrame(ws.MaskFrame(ws.NewPingFrame(bytes.Repeat([]byte{1}, 125))))
	var buf []byte
	for range 256 {
		buf = append(buf, ping...)
	}
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Write(buf); err != nil {
			break
		}
		select {
		case ev := <-h.closed:
			if ev.c != sc || ev.r != ReasonSlowConsumer {
				t.Fatalf("got %+v", ev.r)
			}
			return
		default:
		}
	}
	ev := waitEvent(t, h.closed, 5*time.Second)
	if ev.c != sc || ev.r != ReasonSlowConsumer {
		t.Fatalf("got %+v", ev.r)
	}
}

func TestManyFramesInOneWrite(t *testing.T) { eachTransport(t, testManyFramesInOneWrite) }

// testManyFramesInOneWrite: frames that arrive together, more than one
// read buffer of them (under TLS: in one record, which tls.Conn decrypts
// and keeps while the server's Reads take it in parts), are all handled
// before the reader parks again.
func testManyFramesInOneWrite(t *testing.T, tr transport) {
	h := newTestHandler(true)
	_, url := startServer(t, tr, Config{}, h)
	c := dial(t, url, nil)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var buf bytes.Buffer
	const n = 200
	for i := range n {
		f := ws.MaskFrameInPlace(ws.NewTextFrame([]byte(fmt.Sprintf("message %03d of many, padded to about sixty bytes", i))))
		if err := ws.WriteFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, _, err := wsutil.ReadServerData(c)
		if want := fmt.Sprintf("message %03d of many, padded to about sixty bytes", i); err != nil || string(m) != want {
			t.Fatalf("echo %d: got %q %v, want %q", i, m, err, want)
		}
	}
}

func TestWriteTimeoutCloses(t *testing.T) { eachTransport(t, testWriteTimeoutCloses) }

// testWriteTimeoutCloses: a client that stops reading is closed with 1008
// "write timeout" once its socket stayed full for WriteTimeout (before its
// bounded queue overflows).
func testWriteTimeoutCloses(t *testing.T, tr transport) {
	h := newTestHandler(false)
	_, url := startServer(t, tr, Config{WriteTimeout: 300 * time.Millisecond, SendQueueLen: 1 << 16, SendQueueBytes: 1 << 30}, h)
	c := dial(t, url, nil) // never reads
	c.shrinkReadBuffer()
	sc := waitEvent(t, h.opened, 5*time.Second)
	frame := EncodeFrame(OpBinary, make([]byte, 64<<10))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !sc.Send(frame) {
			break
		}
		select {
		case ev := <-h.closed:
			if ev.r != ReasonWriteTimeout {
				t.Fatalf("closed with %+v, want write timeout", ev.r)
			}
			return
		default:
		}
		time.Sleep(time.Millisecond)
	}
	if ev := waitEvent(t, h.closed, 5*time.Second); ev.r != ReasonWriteTimeout {
		t.Fatalf("closed with %+v, want write timeout", ev.r)
	}
}

func TestReadTimeoutCloses(t *testing.T) { eachTransport(t, testReadTimeoutCloses) }

// testReadTimeoutCloses: a frame left incomplete for ReadTimeout closes
// the connection with 1008 "read timeout", on the wire and in OnClose.
func testReadTimeoutCloses(t *testing.T, tr transport) {
	h := newTestHandler(false)
	_, url := startServer(t, tr, Config{ReadTimeout: 300 * time.Millisecond}, h)
	c := dial(t, url, nil)
	waitEvent(t, h.opened, 5*time.Second)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	whole := clientFrame(ws.OpText, true, []byte("never finished"))
	if _, err := c.Write(whole[:5]); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, h.closed, 5*time.Second); ev.r != ReasonReadTimeout {
		t.Fatalf("closed with %+v, want read timeout", ev.r)
	}
	_, _, err := wsutil.ReadServerData(c)
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || ce.Code != ws.StatusPolicyViolation {
		t.Fatalf("want close 1008, got %v", err)
	}
}
