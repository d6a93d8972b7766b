//go:build linux

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
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/multijuego/multijuego/internal/logtest"
)

// Where each TLS socket ends up: TLS 1.3 on the epoll backend's record
// layer (no tls.Conn left), TLS 1.2 with crypto/tls on the stream backend;
// both by the raw upgrade (Serve) and the hijack (ServeHTTP).
func TestTLSSocketBackend(t *testing.T) {
	for _, tr := range transports[2:] {
		for _, hijack := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hijack=%v", tr.name, hijack), func(t *testing.T) {
				h := newTestHandler(true)
				s, url := tlsServer(t, tr, h, hijack)
				c := dial(t, url, nil)
				sc := waitEvent(t, h.opened, 5*time.Second)
				el, epoll := sc.l.(*epollLink)
				if want := !tr.tls12 && s.ep != nil; epoll != want || epoll && el.t == nil {
					t.Fatalf("link %T (epoll %v), want epoll with a record layer: %v", sc.l, epoll, want)
				}
				echo(t, c, "over "+tr.name)
			})
		}
	}
}

// tlsServer starts a server for tr on the raw upgrade path or behind
// net/http.
func tlsServer(t *testing.T, tr transport, h Handler, hijack bool) (*Server, string) {
	t.Helper()
	if !hijack {
		return startServer(t, tr, Config{}, h)
	}
	s, err := NewServer(Config{Backend: tr.backend}, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, startHTTP(t, tr, s)
}

func echo(t *testing.T, c net.Conn, m string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientText(c, []byte(m)); err != nil {
		t.Fatal(err)
	}
	got, _, err := wsutil.ReadServerData(c)
	if err != nil || string(got) != m {
		t.Fatalf("echo %q: %q %v", m, got, err)
	}
}

// splitConn writes the record after the upgrade request in two halves with
// a pause between, so that the server switches to the record layer with
// half a record read.
type splitConn struct {
	net.Conn
	mu     sync.Mutex
	writes int // application records written since arm
	armed  bool
}

func (s *splitConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	split := s.armed && s.writes == 1
	if s.armed {
		s.writes++
	}
	s.mu.Unlock()
	if !split || len(p) < 2 {
		return s.Conn.Write(p)
	}
	n, err := s.Conn.Write(p[:len(p)/2])
	if err != nil {
		return n, err
	}
	time.Sleep(100 * time.Millisecond)
	m, err := s.Conn.Write(p[len(p)/2:])
	return n + m, err
}

// Input the client sends right behind its upgrade request (before the 101,
// which RFC 6455 asks clients not to do, but some do), in the same record,
// in the next records, or with a record cut in two across the switch,
// reaches the handler whole and in order. The raw upgrade (gobwas) drops
// what it read past the request on every transport, so the same-record
// case is for the hijack path only.
func TestTLSInputInFlightAtSwitch(t *testing.T) {
	tr := transports[2]
	for _, layout := range []string{"same-record", "next-records", "split-record"} {
		for _, hijack := range []bool{false, true} {
			if layout == "same-record" && !hijack {
				continue
			}
			t.Run(fmt.Sprintf("%s/hijack=%v", layout, hijack), func(t *testing.T) {
				h := newTestHandler(true)
				_, url := tlsServer(t, tr, h, hijack)
				addr := strings.TrimSuffix(strings.TrimPrefix(url, "wss://"), "/ws")
				raw, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				sc := &splitConn{Conn: raw}
				cfg := clientTLS()
				cfg.ServerName = "127.0.0.1"
				tc := tls.Client(sc, cfg)
				t.Cleanup(func() { _ = tc.Close() })
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
					"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
				msgs := []string{"first", strings.Repeat("second ", 3000), "third"}
				var frames [][]byte
				for _, m := range msgs {
					frames = append(frames, clientFrame(ws.OpText, true, []byte(m)))
				}
				switch layout {
				case "same-record":
					_, err = tc.Write(append([]byte(req), bytes.Join(frames, nil)...))
				default:
					sc.mu.Lock()
					sc.armed = layout == "split-record"
					sc.mu.Unlock()
					for _, b := range append([][]byte{[]byte(req)}, frames...) {
						if _, err = tc.Write(b); err != nil {
							break
						}
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(tc)
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
					t.Fatalf("upgrade: %v %v", resp, err)
				}
				cl := &client{Conn: tc, br: br}
				for _, m := range msgs {
					got, _, err := wsutil.ReadServerData(cl)
					if err != nil || string(got) != m {
						t.Fatalf("echo: got %d bytes (%v), want %d", len(got), err, len(m))
					}
				}
				echo(t, cl, "after")
			})
		}
	}
}

// close_notify from the client ends the socket as the client's close; a
// record that fails authentication ends it as a TLS error.
func TestTLSClientCloseAndTamperedRecord(t *testing.T) {
	tr := transports[2]
	h := newTestHandler(true)
	s, url := startServer(t, tr, Config{}, h)

	c := dial(t, url, nil)
	waitEvent(t, h.opened, 5*time.Second)
	echo(t, c, "x")
	_ = c.Conn.Close() // tls.Conn.Close sends close_notify
	if ev := waitEvent(t, h.closed, 5*time.Second); !ev.r.Remote || ev.r.Text != "eof" {
		t.Fatalf("close_notify: %+v", ev.r)
	}

	c = dial(t, url, nil)
	waitEvent(t, h.opened, 5*time.Second)
	echo(t, c, "y")
	bogus := append([]byte{recordAppData, 3, 3, 0, 40}, bytes.Repeat([]byte{7}, 40)...)
	if _, err := c.Conn.(*tls.Conn).NetConn().Write(bogus); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, h.closed, 5*time.Second)
	if s.ep == nil { // crypto/tls on the stream backend
		if ev.r.Err == nil || !strings.Contains(ev.r.Err.Error(), "bad record MAC") {
			t.Fatalf("tampered record: %+v", ev.r)
		}
	} else if ev.r.Text != "tls error" || !errors.Is(ev.r.Err, errRecordMAC) {
		t.Fatalf("tampered record: %+v", ev.r)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if _, err := io.ReadAll(c); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("socket still open after a tampered record")
	}
}

// The record layer with the suites crypto/tls's client does not pick here
// (ChaCha20-Poly1305 needs a client without AES hardware, AES-256 is never
// first): OpenSSL's client upgrades and gets its message echoed.
func TestTLSOtherSuitesWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed for this test (Debian package openssl)")
	}
	for _, suite := range []string{"TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"} {
		t.Run(suite, func(t *testing.T) {
			h := newTestHandler(true)
			s, url := startServer(t, transports[2], Config{}, h)
			addr := strings.TrimSuffix(strings.TrimPrefix(url, "wss://"), "/ws")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", addr, "-tls1_3", "-ciphersuites", suite, "-quiet", "-ign_eof")
			stdin, _ := cmd.StdinPipe()
			var out logtest.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
			_, _ = stdin.Write([]byte(req))
			sc := waitEvent(t, h.opened, 5*time.Second)
			if el, ok := sc.l.(*epollLink); s.ep != nil && (!ok || el.t == nil) {
				t.Fatalf("link %T: not on the record layer", sc.l)
			}
			msg := "hello over " + suite
			_, _ = stdin.Write(clientFrame(ws.OpText, true, []byte(msg)))
			want := append([]byte{0x81, byte(len(msg))}, msg...)
			for !strings.Contains(out.String(), string(want)) {
				if ctx.Err() != nil {
					t.Fatalf("no echo; openssl printed %q", out.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// Many wss:// sockets writing and reading at once (the record layer's
// reader and flushers under contention): every message comes back, in
// order, on every socket.
func TestTLSManySocketsBothWays(t *testing.T) {
	h := newTestHandler(true)
	const conns, msgs = 64, 300
	// Room for every echo: a client writes all its messages before it
	// reads, at worst.
	_, url := startServer(t, transports[2], Config{SendQueueLen: 2 * msgs}, h)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		c := dial(t, url, nil)
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		wg.Go(func() {
			done := make(chan error, 1)
			go func() {
				for j := range msgs {
					m := fmt.Sprintf("%d-%d-%s", i, j, strings.Repeat("z", j*7%500))
					if err := wsutil.WriteClientText(c, []byte(m)); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for j := range msgs {
				got, _, err := wsutil.ReadServerData(c)
				if want := fmt.Sprintf("%d-%d-%s", i, j, strings.Repeat("z", j*7%500)); err != nil || string(got) != want {
					errs <- fmt.Errorf("socket %d message %d: %q %v", i, j, got, err)
					return
				}
			}
			if err := <-done; err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
