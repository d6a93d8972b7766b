//go:build !linux

package bots

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// sock is a bot's socket: a net.Conn read by its own goroutine (the epoll
// loops are Linux only).
type sock = net.Conn

// noSock is a bot's socket before it connects.
var noSock sock

// sockWriteTimeout bounds a write to a socket whose buffer is full; the
// bot's send then fails as it would on a full epoll socket's backlog.
const sockWriteTimeout = time.Second

// sockWrite writes p, blocking at most sockWriteTimeout.
func sockWrite(c sock, p []byte) (int, error) {
	_ = c.SetWriteDeadline(time.Now().Add(sockWriteTimeout))
	return c.Write(p)
}

func closeSock(c sock) { _ = c.Close() }

// poll tracks a reader's goroutines, one per socket.
type poll struct{ readers sync.WaitGroup }

func (rd *reader) openPoll() error { return nil }

// closePoll waits for the socket goroutines (closeAll has closed their
// sockets).
func (rd *reader) closePoll() { rd.readers.Wait() }

// watch starts b's reader goroutine; it ends when the socket fails or is
// closed.
func (rd *reader) watch(b *bot) error {
	rd.readers.Go(func() {
		buf := make([]byte, 16<<10)
		for {
			n, err := b.fd.Read(buf)
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
	return nil
}

// loop has nothing to do: the socket goroutines read.
func (rd *reader) loop(stop <-chan struct{}) { <-stop }

// dial connects from src (may be invalid: any) to t and upgrades the
// connection to a WebSocket with the access token. It returns the
// connection and any bytes the server sent right after its handshake.
func dial(t target, src netip.Addr, token string, timeout time.Duration) (sock, []byte, error) {
	d := net.Dialer{Timeout: timeout}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := d.Dial("tcp", t.addr.String())
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", t.addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(handshakeRequest(t, token)); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("send handshake: %w", err)
	}
	rest, err := readHandshake(c.Read)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, rest, nil
}
