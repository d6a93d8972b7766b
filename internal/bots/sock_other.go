//go:build !linux

package bots

import (
	"net"
	"net/netip"
	"time"
)

// sock is a bot's socket: a net.Conn read by its own goroutine (conn.go;
// the epoll loops are Linux only).
type sock struct{ conn net.Conn }

// noSock is a bot's socket before it connects.
var noSock sock

func sockWrite(s sock, p []byte) (int, error) { return connWrite(s.conn, p) }

func closeSock(s sock) { closeConn(s.conn) }

// poll is empty: each socket has its own reader goroutine.
type poll struct{}

func (rd *reader) openPoll() error { return nil }

func (rd *reader) closePoll() {}

func (rd *reader) watch(b *bot) error {
	rd.watchConn(b, b.sock.conn)
	return nil
}

// loop has nothing to do: the socket goroutines read.
func (rd *reader) loop(stop <-chan struct{}) { <-stop }

// dial connects to t (see dialConn).
func dial(t target, src netip.Addr, token string, timeout time.Duration) (sock, []byte, error) {
	c, rest, err := dialConn(t, src, token, timeout)
	return sock{c}, rest, err
}
