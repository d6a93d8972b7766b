//go:build linux

package wsnet

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multijuego/multijuego/internal/epollset"
)

// poller is the epoll backend: a few epoll instances, each with one reader
// goroutine, and a pool of flushers fed by a work queue.
type poller struct {
	srv     *Server
	readers []*reader
	wq      workQueue
}

// newPoller starts the readers and flushers (Config.Readers, Config.Writers)
// in s.wg.
func newPoller(s *Server) (*poller, error) {
	p := &poller{srv: s}
	p.wq.cond = sync.NewCond(&p.wq.mu)
	for range s.cfg.Readers {
		r, err := newReader(s)
		if err != nil {
			p.closeFDs()
			return nil, err
		}
		p.readers = append(p.readers, r)
	}
	for _, r := range p.readers {
		s.wg.Go(r.loop)
	}
	for range s.cfg.Writers {
		s.wg.Go(p.flushLoop)
	}
	return p, nil
}

// stop ends the flushers and readers (Server.Close waits for them).
func (p *poller) stop() {
	p.wq.close()
	for _, r := range p.readers {
		r.wake()
	}
}

func (p *poller) closeFDs() {
	for _, r := range p.readers {
		r.closeFDs()
	}
}

// epollable reports whether nc is a socket the epoll backend takes: its fd
// is all there is to it (a TLS or other wrapping conn keeps state in Go).
func epollable(nc net.Conn) bool {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	case *tls.Conn:
		_, _, ok := tlsOf(nc)
		return ok // from ListenTLS: takeTLS decides
	}
	return false
}

// adopt takes over nc: dup its fd, close the net.Conn and register the dup
// with a reader's epoll set. It reports false, with nc untouched, if the
// socket could not be taken before it was opened (the caller gives it to
// the stream backend); a failure after OnOpen closes the connection with
// 1011 and logs it.
func (p *poller) adopt(c *Conn, nc net.Conn, pending []byte) (bool, error) {
	raw := nc
	var t *tlsLink
	if tc, ts, ok := tlsOf(nc); ok {
		var err error
		if t, pending, err = takeTLS(tc, ts, pending); err != nil {
			return false, err
		}
		raw = ts.Conn
	}
	fd, err := dupSocket(raw)
	if err != nil {
		if t != nil {
			// crypto/tls was drained: the socket cannot go back to it.
			p.srv.refused(c.addr.String(), "could not take a TLS socket", err)
			_ = raw.Close()
			return true, err
		}
		return false, err
	}
	_ = raw.Close() // the dup keeps the socket open; netpoller forgets the original
	l := &epollLink{c: c, rd: p.readers[int(uint32(c.id))%len(p.readers)], fd: fd, t: t}
	c.l = l
	if !p.srv.open(c, nil) {
		l.closeSocket(c, EncodeClose(ReasonShutdown.Code, ReasonShutdown.Text))
		p.srv.refused(c.addr.String(), "server closed", nil)
		return true, errClosed
	}
	if len(pending) > 0 && !c.consume(pending) {
		return true, nil // closing: the flush of the close frame closes the fd
	}
	if t != nil && t.ended != nil {
		c.terminate(CloseReason{Code: CloseAbnormal, Text: "eof", Remote: true, Err: t.ended}, false)
		return true, nil
	}
	l.fdmu.RLock()
	if l.fd < 0 {
		l.fdmu.RUnlock()
		return true, nil // closed meanwhile
	}
	err = l.rd.add(l)
	l.fdmu.RUnlock()
	if err != nil {
		p.srv.refused(c.addr.String(), "epoll refused the socket", err)
		c.terminate(CloseReason{Code: CloseInternalError, Text: "transport error", Err: err}, true)
	}
	return true, nil
}

// dupSocket returns a non-blocking duplicate of nc's socket.
func dupSocket(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || derr != nil {
		return -1, errors.Join(err, derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// epollLink is a connection's socket on the epoll backend: a raw,
// non-blocking fd.
type epollLink struct {
	c  *Conn
	rd *reader

	// fdmu guards fd: reads and writes hold it shared, teardown exclusive,
	// so the fd number is never used after it was closed (and reused).
	fdmu     sync.RWMutex
	fd       int
	midFrame atomic.Bool // the last writev stopped inside a frame
	armedOut bool        // EPOLLOUT registered; guarded by c.mu
	t        *tlsLink    // a wss:// socket's record layer; nil for plain
}

var _ link = (*epollLink)(nil)

func (l *epollLink) willFlush(*Conn)                 {}
func (l *epollLink) flushSoon(c *Conn)               { c.srv.ep.wq.push(c) }
func (l *epollLink) requestTeardown(c *Conn)         { c.srv.ep.wq.push(c) }
func (l *epollLink) tearDown(c *Conn, r CloseReason) { c.terminate(r, true) }
func (l *epollLink) shutdown(c *Conn)                { c.terminate(ReasonShutdown, true) }

// park registers EPOLLOUT; the reader pushes c to the flushers when it fires.
func (l *epollLink) park(*Conn) {
	if !l.armedOut {
		l.armedOut = true
		l.rd.mod(l, true)
	}
}

// write writes iov until done or EAGAIN.
func (l *epollLink) write(c *Conn, _ *scratch, iov [][]byte, partial bool) (written int, blocked bool, err error) {
	l.fdmu.RLock()
	defer l.fdmu.RUnlock()
	if l.fd < 0 {
		return 0, false, errClosed
	}
	if l.t != nil {
		return l.t.write(c, l.fd, iov)
	}
	defer func() { l.midFrame.Store(partial) }()
	for len(iov) > 0 {
		n, err := unix.Writev(l.fd, iov)
		c.srv.writes.Add(1)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return written, true, nil
		}
		if err != nil {
			return written, false, err
		}
		written += n
		// Advance past n bytes.
		for n > 0 {
			if n < len(iov[0]) {
				iov[0] = iov[0][n:]
				partial = true
				break
			}
			n -= len(iov[0])
			iov = iov[1:]
			partial = false
		}
	}
	return written, false, nil
}

// onWritable is called by the reader when EPOLLOUT fires.
func (l *epollLink) onWritable() {
	c := l.c
	c.mu.Lock()
	armed := l.armedOut
	if armed {
		l.armedOut = false
		l.rd.mod(l, false)
	}
	c.mu.Unlock()
	if armed {
		c.srv.ep.wq.push(c)
	}
}

// closeSocket writes closeFrame without blocking (skipped if the last
// writev stopped inside a frame), then unregisters and closes the fd.
func (l *epollLink) closeSocket(_ *Conn, closeFrame []byte) {
	l.fdmu.Lock()
	defer l.fdmu.Unlock()
	fd := l.fd
	l.fd = -1
	if fd < 0 {
		return
	}
	// No writev is in flight (we hold fdmu exclusively), so midFrame is
	// exact; c.mu is not taken here (lock order is c.mu -> fdmu).
	if closeFrame != nil && (l.t != nil || !l.midFrame.Load()) {
		if l.t != nil {
			l.t.closeWith(fd, closeFrame)
		} else {
			_, _ = unix.Write(fd, closeFrame)
		}
		// Closing a socket with unread input makes the kernel send a
		// reset, which can destroy the close frame before the client
		// reads it (an oversized message leaves its tail unread):
		// discard what has arrived, bounded, before closing.
		var sink [4096]byte
		for range 64 {
			if n, err := unix.Read(fd, sink[:]); n <= 0 || err != nil {
				break
			}
		}
	}
	l.rd.remove(l, fd) // before close: the fd number may be reused at once
	_ = unix.Close(fd)
}

// readable drains the socket (bounded per wakeup for fairness; the epoll set
// is level-triggered, so leftover data is reported again).
func (l *epollLink) readable(buf []byte) {
	c := l.c
	for range 4 {
		l.fdmu.RLock()
		if l.fd < 0 {
			l.fdmu.RUnlock()
			return
		}
		n, err := unix.Read(l.fd, buf)
		l.fdmu.RUnlock()
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil:
			c.terminate(CloseReason{Code: CloseAbnormal, Text: "read error", Remote: true, Err: err}, false)
			return
		case n == 0:
			c.terminate(c.eofReason(), false)
			return
		}
		ok := false
		if l.t != nil {
			ok = l.t.feed(c, buf[:n])
		} else {
			ok = c.readFrom(buf[:n])
		}
		if !ok || n < len(buf) {
			return
		}
	}
}

// workQueue holds connections with something to flush; each connection is in
// it at most once per scheduled flush, so it is bounded by the number of
// connections.
type workQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*Conn
	head   int
	closed bool
}

func (q *workQueue) push(c *Conn) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, c)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

func (q *workQueue) pop() (*Conn, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, false
	}
	c := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.head = 0
		if cap(q.items) > 4096 {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
	}
	return c, true
}

func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (p *poller) flushLoop() {
	var sc scratch
	for {
		c, ok := p.wq.pop()
		if !ok {
			return
		}
		c.flush(&sc)
	}
}

// reader owns one epoll instance (in Go's netpoller: internal/epollset)
// and the goroutine waiting on it.
type reader struct {
	srv   *Server
	set   *epollset.Set
	mu    sync.Mutex
	conns map[int32]*epollLink
}

const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP

func newReader(s *Server) (*reader, error) {
	set, err := epollset.New("wsnet-epoll")
	if err != nil {
		return nil, err
	}
	return &reader{srv: s, set: set, conns: make(map[int32]*epollLink)}, nil
}

func (r *reader) closeFDs() { _ = r.set.Close() }

// wake ends the reader's loop: its wait returns at once.
func (r *reader) wake() { _ = r.set.SetDeadline(time.Unix(1, 0)) }

// add registers l; the caller holds l.fdmu shared.
func (r *reader) add(l *epollLink) error {
	r.mu.Lock()
	r.conns[int32(l.fd)] = l
	r.mu.Unlock()
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(l.fd), Pad: l.c.id}
	if err := r.set.Ctl(unix.EPOLL_CTL_ADD, l.fd, &ev); err != nil {
		r.mu.Lock()
		delete(r.conns, int32(l.fd))
		r.mu.Unlock()
		return err
	}
	return nil
}

// mod toggles EPOLLOUT; the caller holds c.mu. The fd may be closing
// concurrently; a failing EPOLL_CTL_MOD is harmless then.
func (r *reader) mod(l *epollLink, out bool) {
	l.fdmu.RLock()
	defer l.fdmu.RUnlock()
	if l.fd < 0 {
		return
	}
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(l.fd), Pad: l.c.id}
	if out {
		ev.Events |= unix.EPOLLOUT
	}
	_ = r.set.Ctl(unix.EPOLL_CTL_MOD, l.fd, &ev)
}

// remove unregisters fd; the caller holds l.fdmu exclusively.
func (r *reader) remove(l *epollLink, fd int) {
	_ = r.set.Ctl(unix.EPOLL_CTL_DEL, fd, nil)
	r.mu.Lock()
	if r.conns[int32(fd)] == l {
		delete(r.conns, int32(fd))
	}
	r.mu.Unlock()
}

// loop serves the reader's sockets until wake or closeFDs.
func (r *reader) loop() {
	events := make([]unix.EpollEvent, 128)
	buf := make([]byte, r.srv.cfg.ReadBufferSize)
	for {
		n, err := r.set.Wait(events)
		if err != nil {
			return // woken to stop, or closed
		}
		for i := range n {
			ev := &events[i]
			r.mu.Lock()
			l := r.conns[ev.Fd]
			r.mu.Unlock()
			if l == nil || l.c.id != ev.Pad {
				continue // closed, or the fd number was reused since
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				l.onWritable()
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.readable(buf)
			}
		}
	}
}
