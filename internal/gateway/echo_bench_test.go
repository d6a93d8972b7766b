package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"

	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/procstat"
	"github.com/multijuego/multijuego/internal/store/storetest"
	"github.com/multijuego/multijuego/internal/wsnet"
	"github.com/multijuego/multijuego/match"
)

// BenchmarkEcho compares request/response round trips over real sockets on
// loopback, with the same client and the same message bytes:
//
//   - bare: an internal/wsnet server whose handler sends every text message
//     back unchanged (no auth, no JSON);
//   - gateway: the whole realtime gateway behind a real HTTP server (socket
//     authenticated with Authorization: Bearer, envelope decoded, dispatched)
//     answering the control message {"type":"echo","cid":"<n>",
//     "payload":{"n":<n>}} with an "echo" envelope carrying the same cid and
//     payload.
//
// MJ_ECHO_CONNS sockets (default 64), each driven by its own goroutine, share
// the b.N messages; each waits for the answer before sending the next. The
// figure that matters is msgs/s (and the gateway/bare ratio); cpu-µs/msg is
// the process's CPU time per message, steadier on a shared machine.
// Allocations are the whole process's too: server and client. Results:
// docs/benchmarks.md.
func BenchmarkEcho(b *testing.B) {
	conns := 64
	if v := os.Getenv("MJ_ECHO_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("MJ_ECHO_CONNS=%q: want a positive integer", v)
		}
		conns = n
	}
	b.Run("bare", func(b *testing.B) {
		url := bareEchoServer(b)
		clients := make([]*echoClient, conns)
		for i := range clients {
			clients[i] = dialEcho(b, i, url, nil)
		}
		runEcho(b, clients)
	})
	b.Run("gateway", func(b *testing.B) {
		url, tokens := gatewayEchoServer(b, conns)
		clients := make([]*echoClient, conns)
		for i := range clients {
			c := dialEcho(b, i, url, http.Header{"Authorization": {"Bearer " + tokens[i]}})
			// The gateway greets every socket first.
			msg, err := c.read()
			if err != nil || !bytes.Contains(msg, []byte(`"type":"session.started"`)) {
				b.Fatalf("socket %d: first message %q, %v; want session.started", i, msg, err)
			}
			clients[i] = c
		}
		runEcho(b, clients)
	})
}

// runEcho times b.N round trips spread over clients.
func runEcho(b *testing.B, clients []*echoClient) {
	b.Helper()
	// One warm-up round trip per socket (buffers, pools, token caches),
	// which also checks the server speaks echo before the clock runs.
	for _, c := range clients {
		if err := c.roundTrip(0); err != nil {
			b.Fatal(err)
		}
	}
	errs := make(chan error, len(clients))
	var wg sync.WaitGroup
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	per, extra := b.N/len(clients), b.N%len(clients)
	for i, c := range clients {
		n := per
		if i < extra {
			n++
		}
		wg.Go(func() {
			for k := range n {
				if err := c.roundTrip(k + 1); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := processCPU() - cpu0
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// CPU time of the whole process (server and client) per message: on a
	// shared machine it moves less than the wall-clock figures.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

// processCPU returns the user and system CPU time this process used so far.
func processCPU() time.Duration {
	d, _ := procstat.CPUTime()
	return d
}

// bareEchoServer starts a wsnet server echoing text messages.
func bareEchoServer(b *testing.B) string {
	b.Helper()
	s, err := wsnet.NewServer(wsnet.Config{}, echoHandler{})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	b.Cleanup(func() { _ = s.Close() })
	return "ws://" + ln.Addr().String() + "/echo"
}

type echoHandler struct{}

func (echoHandler) OnOpen(*wsnet.Conn)                                 {}
func (echoHandler) OnClose(*wsnet.Conn, wsnet.CloseReason)             {}
func (echoHandler) OnMessage(c *wsnet.Conn, op wsnet.OpCode, p []byte) { c.SendMessage(op, p) }

// gatewayEchoServer starts the whole gateway (auth, match engine, realtime)
// behind an HTTP server and returns its socket URL and one access token per
// socket: an account holds one socket at a time.
func gatewayEchoServer(b *testing.B, accounts int) (string, []string) {
	b.Helper()
	st := storetest.SQLite(b)
	acfg := auth.DefaultConfig()
	acfg.Argon2MemoryKiB, acfg.Argon2Iterations = 64, 1
	acfg.SignupIPLimit = max(acfg.SignupIPLimit, accounts)
	svc, err := auth.New(context.Background(), acfg, auth.KeysDir{Path: b.TempDir()}, auth.Deps{Store: st, KV: newKV(b)})
	if err != nil {
		b.Fatal(err)
	}
	relay := &lateSender{}
	engine, err := match.NewEngine(match.Config{Sender: relay})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = engine.Shutdown(context.Background()) })
	gw, err := gateway.New(gateway.DefaultConfig(), gateway.Deps{
		Auth: svc, Matches: engine, Tickets: newKV(b), Registry: prometheus.NewRegistry(), Version: "bench",
	})
	if err != nil {
		b.Fatal(err)
	}
	relay.set(gw.Realtime())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx, ln) }() // the production HTTP server
	b.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			b.Error(err)
		}
	})
	tokens := make([]string, accounts)
	for i := range tokens {
		pair, err := svc.Register(context.Background(), auth.RegisterRequest{Username: fmt.Sprintf("echo%d", i), Password: "bench-password"}, auth.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = pair.AccessToken
	}
	return "ws://" + ln.Addr().String() + "/v1/realtime", tokens
}

// echoClient is a lean client socket: one reused buffer for the frame it
// sends and one for the message it reads, so the client's own cost is small
// and the same for both servers.
type echoClient struct {
	id  int
	nc  net.Conn
	br  *bufio.Reader
	out []byte // the frame being sent
	in  []byte // the message being read
	exp []byte // the cid expected in the answer
	// the payload expected in the answer
	expPayload []byte
	h          [8]byte
}

// dialEcho opens a client socket.
func dialEcho(b *testing.B, id int, url string, hdr http.Header) *echoClient {
	b.Helper()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(hdr), Timeout: 5 * time.Second}
	nc, hbr, _, err := d.Dial(context.Background(), url)
	if err != nil {
		b.Fatalf("dial %s: %v", url, err)
	}
	b.Cleanup(func() { nc.Close() })
	var r io.Reader = nc
	if hbr != nil { // the server's first bytes came with the handshake
		r = io.MultiReader(hbr, nc)
	}
	return &echoClient{id: id, nc: nc, br: bufio.NewReaderSize(r, 4096)}
}

// roundTrip sends the echo envelope for n and reads the answer, which must
// be an echo with the same cid.
func (c *echoClient) roundTrip(n int) error {
	// {"type":"echo","cid":"<id>.<n>","payload":{"n":<n>}}
	const head = `{"type":"echo","cid":"`
	msg := append(c.in[:0], head...)
	msg = strconv.AppendInt(msg, int64(c.id), 10)
	msg = append(msg, '.')
	msg = strconv.AppendInt(msg, int64(n), 10)
	c.exp = append(append(append(c.exp[:0], `"cid":"`...), msg[len(head):]...), '"')
	msg = append(msg, `",`...)
	payloadAt := len(msg)
	msg = append(msg, `"payload":{"n":`...)
	msg = strconv.AppendInt(msg, int64(n), 10)
	msg = append(msg, '}')
	c.expPayload = append(c.expPayload[:0], msg[payloadAt:]...)
	msg = append(msg, '}')
	c.out = appendClientFrame(c.out[:0], msg)
	c.in = msg
	if _, err := c.nc.Write(c.out); err != nil {
		return fmt.Errorf("socket %d: write: %w", c.id, err)
	}
	ans, err := c.read()
	if err != nil {
		return fmt.Errorf("socket %d: read: %w", c.id, err)
	}
	if !bytes.Contains(ans, []byte(`"type":"echo"`)) {
		return fmt.Errorf("socket %d: answer %q is not an echo (does the server handle the \"echo\" message?)", c.id, ans)
	}
	if !bytes.Contains(ans, c.exp) || !bytes.Contains(ans, c.expPayload) {
		return fmt.Errorf("socket %d: answer %q does not carry %s and %s", c.id, ans, c.exp, c.expPayload)
	}
	return nil
}

// appendClientFrame appends one final, masked text frame holding payload.
// The mask is fixed: this client is not a browser, and the server unmasks
// whatever it is.
func appendClientFrame(dst, payload []byte) []byte {
	mask := [4]byte{0x5a, 0x17, 0xc3, 0x8e}
	dst = append(dst, 0x80|byte(ws.OpText))
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, mask[:]...)
	for i, x := range payload {
		dst = append(dst, x^mask[i&3])
	}
	return dst
}

// read returns the next data message (unfragmented, unmasked: the server's
// frames), answering pings on the way. The bytes are valid until the next
// call.
func (c *echoClient) read() ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	h := c.h[:]
	for {
		if _, err := io.ReadFull(c.br, h[:2]); err != nil {
			return nil, err
		}
		op, n := ws.OpCode(h[0]&0x0f), uint64(h[1]&0x7f)
		if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
			return nil, errors.New("unexpected fragmented or masked server frame")
		}
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, h[:2]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(h[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, h); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(h)
		}
		if n > 1<<20 {
			return nil, fmt.Errorf("server frame of %d bytes", n)
		}
		if uint64(cap(c.in)) < n {
			c.in = make([]byte, n)
		}
		p := c.in[:n]
		if _, err := io.ReadFull(c.br, p); err != nil {
			return nil, err
		}
		switch op {
		case ws.OpText, ws.OpBinary:
			return p, nil
		case ws.OpPing:
			if _, err := c.nc.Write(appendPong(nil, p)); err != nil {
				return nil, err
			}
		case ws.OpClose:
			return nil, fmt.Errorf("server closed the socket: %q", p)
		}
	}
}

func appendPong(dst, payload []byte) []byte {
	dst = append(dst, 0x80|byte(ws.OpPong), 0x80|byte(len(payload)), 0, 0, 0, 0)
	return append(dst, payload...)
}
