package bots

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// A bot whose socket is a net.Conn has its own reader goroutine: every bot
// off Linux, and on Linux the wss:// bots (TLS needs crypto/tls, which
// reads through a net.Conn, so those sockets cannot be raw fds in the
// epoll loops).

// connWriteTimeout bounds a write to a net.Conn whose send buffer is full.
// The writers serve many bots each, so a blocked bot must not hold one
// long. A deadline rather than a goroutine per bot draining a queue: a
// bot sends tens of bytes at a time, so a full send buffer means the
// server stopped reading the socket, a failure to report, not
// back-pressure to wait out; the tool keeps no extra stack per player next
// to the server it measures; and a TLS bot costs the writer this time
// once, as a tls.Conn whose write timed out fails every later write at
// once (off Linux a plain conn can cost it on each write).
const connWriteTimeout = 100 * time.Millisecond

// connWrite writes p, blocking at most connWriteTimeout.
func connWrite(c net.Conn, p []byte) (int, error) {
	_ = c.SetWriteDeadline(time.Now().Add(connWriteTimeout))
	return c.Write(p)
}

// closeConn closes c at once. A TLS connection's TCP socket is closed
// without the close_notify alert: tls.Conn.Close may wait up to 5 s to
// send it into a full send buffer, and closeAll closes the bots one by
// one.
func closeConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	_ = c.Close()
}

// watchConn starts b's reader goroutine; it ends when the socket fails or
// is closed, and rd.conns waits for it.
func (rd *reader) watchConn(b *bot, c net.Conn) {
	rd.conns.Go(func() {
		buf := make([]byte, 16<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				now := rd.run.now()
				rd.mu.Lock()
				rd.received(b, buf[:n], now)
				rd.mu.Unlock()
			}
			if err != nil {
				why := "connection closed by the server"
				if !errors.Is(err, io.EOF) {
					why = err.Error()
				}
				b.lost(why)
				return
			}
		}
	})
}

// dialConn connects from src (may be invalid: any) to t, over TLS if t
// says so, and upgrades the connection to a WebSocket with the access
// token. It returns the connection and any bytes the server sent right
// after its handshake.
func dialConn(t target, src netip.Addr, token string, timeout time.Duration) (net.Conn, []byte, error) {
	d := net.Dialer{Timeout: timeout}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := d.Dial("tcp", t.addr.String())
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", t.addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if t.tls != nil {
		tc := tls.Client(c, t.tls)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("tls handshake with %s: %w", t.addr, err)
		}
		c = tc
	}
	if _, err := c.Write(handshakeRequest(t, token)); err != nil {
		closeConn(c)
		return nil, nil, fmt.Errorf("send handshake: %w", err)
	}
	rest, err := readHandshake(c.Read)
	if err != nil {
		closeConn(c)
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, rest, nil
}
