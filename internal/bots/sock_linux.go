//go:build linux

package bots

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multijuego/multijuego/internal/epollset"
)

// sock is a bot's socket: for ws:// a raw non-blocking fd served by the
// epoll loops; for wss:// a TLS net.Conn read by its own goroutine
// (conn.go).
type sock struct {
	fd   int      // the raw socket; -1 for a conn
	conn net.Conn // the TLS connection; nil for a raw socket
}

// noSock is a bot's socket before it connects.
var noSock = sock{fd: -1}

// sockWrite writes what the socket takes now: a raw socket takes 0 bytes
// and no error if its buffer is full, a conn blocks a bounded time
// (connWrite).
func sockWrite(s sock, p []byte) (int, error) {
	if s.conn != nil {
		return connWrite(s.conn, p)
	}
	n, err := unix.Write(s.fd, p)
	if err == unix.EAGAIN {
		return 0, nil
	}
	return max(n, 0), err
}

func closeSock(s sock) {
	if s.conn != nil {
		closeConn(s.conn)
		return
	}
	_ = unix.Close(s.fd)
}

// poll is a reader's epoll instance (in Go's netpoller: internal/epollset,
// the same as the server's transport) and read buffer.
type poll struct {
	set *epollset.Set
	buf []byte
}

func (rd *reader) openPoll() error {
	set, err := epollset.New("bots-epoll")
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	rd.set, rd.buf = set, make([]byte, 64<<10)
	return nil
}

func (rd *reader) closePoll() { _ = rd.set.Close() }

// watch adds b's raw socket to the epoll instance, or starts the reader
// goroutine of its conn.
func (rd *reader) watch(b *bot) error {
	if b.sock.conn != nil {
		rd.watchConn(b, b.sock.conn)
		return nil
	}
	return rd.set.Ctl(unix.EPOLL_CTL_ADD, b.sock.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(b.idx)})
}

// loop reads until stop is closed: a wait ends at once when it is (a past
// read deadline), whether or not sockets have data.
func (rd *reader) loop(stop <-chan struct{}) {
	events := make([]unix.EpollEvent, 256)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() { // ends with the loop or at stop
		select {
		case <-stop:
			_ = rd.set.SetDeadline(time.Unix(1, 0))
		case <-stopped:
		}
	}()
	for {
		n, err := rd.set.Wait(events)
		if err != nil {
			return // stop (deadline) or the set closed
		}
		now := rd.run.now()
		rd.mu.Lock()
		for _, ev := range events[:n] {
			b := rd.run.bots[ev.Fd]
			rd.readFrom(b, now)
		}
		rd.mu.Unlock()
	}
}

func (rd *reader) readFrom(b *bot, now int64) {
	b.wmu.Lock()
	closed := b.closed
	b.wmu.Unlock()
	if closed {
		return
	}
	n, err := unix.Read(b.sock.fd, rd.buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil || n == 0 {
		_ = rd.set.Ctl(unix.EPOLL_CTL_DEL, b.sock.fd, nil)
		why := "connection closed by the server"
		if err != nil {
			why = err.Error()
		}
		b.lost(why)
		return
	}
	rd.received(b, rd.buf[:n], now)
}

// dial connects from src (may be invalid: any) to t and upgrades the
// connection to a WebSocket with the access token: a TLS target through
// dialConn, a plain one on a raw socket (dialRaw). It returns the socket
// and any bytes the server sent right after its handshake.
func dial(t target, src netip.Addr, token string, timeout time.Duration) (sock, []byte, error) {
	if t.tls != nil {
		c, rest, err := dialConn(t, src, token, timeout)
		if err != nil {
			return noSock, nil, err
		}
		return sock{fd: -1, conn: c}, rest, nil
	}
	fd, rest, err := dialRaw(t, src, token, timeout)
	if err != nil {
		return noSock, nil, err
	}
	return sock{fd: fd}, rest, nil
}

// dialRaw opens a blocking TCP socket from src (may be invalid: any) to t,
// upgrades it to a WebSocket with the access token and returns the fd (now
// non-blocking) and any bytes the server sent right after its handshake.
func dialRaw(t target, src netip.Addr, token string, timeout time.Duration) (int, []byte, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if src.IsValid() {
		// Let several sockets share a source port towards different
		// destinations; the port range per source address is the limit.
		_ = unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
			return -1, nil, fmt.Errorf("bind %s: %w", src, err)
		}
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrInet4{Addr: t.addr.Addr().As4(), Port: int(t.addr.Port())})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return -1, nil, fmt.Errorf("connect %s: %w", t.addr, err)
	}
	if err := writeAll(fd, handshakeRequest(t, token)); err != nil {
		return -1, nil, fmt.Errorf("send handshake: %w", err)
	}
	rest, err := readHandshake(func(p []byte) (int, error) {
		for {
			n, err := unix.Read(fd, p)
			if err != unix.EINTR {
				return n, err
			}
		}
	})
	if err != nil {
		return -1, nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return -1, nil, err
	}
	ok = true
	return fd, rest, nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
