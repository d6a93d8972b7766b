// Package wsnet is a WebSocket server transport for many mostly idle
// sockets on few cores (Linux only).
//
// Connections are accepted and upgraded with gobwas/ws (zero-copy
// handshake). The Authorize callback sees the request line, headers and
// offered subprotocols before the upgrade completes, and may select a
// subprotocol; its error becomes an HTTP status (see Reject). After the
// upgrade the socket fd is dup'ed, the net.Conn closed
// (removing it from the Go netpoller) and the fd registered with one of a
// few epoll instances, each served by one reader goroutine (Config.Readers,
// default GOMAXPROCS). No goroutine exists per connection.
//
// Epoll is level-triggered: a reader reads at most 4 buffers from a socket
// per wakeup and moves on, and the kernel reports the rest on the next
// epoll_wait, which gives fairness without a ready list; edge-triggered mode
// would force draining every socket to EAGAIN (one flooding client starves
// the others) or bookkeeping of sockets left unread. Each epoll instance has
// exactly one waiter, so level-triggered mode causes no thundering herd.
// EPOLLOUT is registered only while a socket's send buffer is full.
//
// Reads use the reader goroutine's own buffer; only an incomplete frame is
// copied to a per-connection buffer, released when the frame completes.
// Writes: Conn.Send enqueues pre-encoded frames into a bounded queue
// (allocated lazily, released when empty); a small pool of flushers
// (Config.Writers) writes a connection's whole queue with one writev. The
// senders (match goroutines) thus never make system calls: a tick's time is
// the game's, and a socket write that the scheduler stretches stalls a
// flusher, not a match. (Writing on the sender's goroutine was measured:
// no CPU saved at 3,000 arena players, and match tick p99 rose from about
// 2 ms to 5-40 ms.) A full queue closes the connection with 1008 "slow
// consumer".
//
// One sweeper goroutine ticks every PingInterval/4 over all connections: it
// pings sockets idle for PingInterval, closes those that stayed silent for
// MissedPongs pings (1001 "ping timeout"), and enforces ReadTimeout
// (incomplete frame) and WriteTimeout (send buffer full) with 1008.
package wsnet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// Handler receives connection events. OnMessage runs on a reader goroutine;
// payload is valid only during the call. OnClose is called exactly once per
// opened connection, on a reader, flusher or sweeper goroutine, never from
// inside Send. The callbacks of one connection never overlap, and no
// OnMessage follows its OnClose. A callback must not wait for another
// connection's callbacks (it may send to and close other connections).
type Handler interface {
	OnOpen(c *Conn)
	OnMessage(c *Conn, op OpCode, payload []byte)
	OnClose(c *Conn, r CloseReason)
}

// Request is what Authorize sees before the upgrade completes.
type Request struct {
	URI        string
	Host       string
	Header     http.Header
	RemoteAddr net.Addr
	// Protocols are the subprotocols the client offered
	// (Sec-WebSocket-Protocol, RFC 6455 §4.1), in the client's order. A
	// header that is not a comma-separated list of tokens refuses the
	// upgrade with 400 before Authorize runs.
	Protocols []string
	// Protocol is the subprotocol the server selects: Authorize may set it
	// to one of Protocols, and the 101 response names it. Empty (the
	// default) selects none. A value the client did not offer refuses the
	// upgrade with 500.
	Protocol string
}

// checkProtocol verifies that Authorize selected an offered subprotocol.
func (r *Request) checkProtocol() error {
	if r.Protocol == "" || slices.Contains(r.Protocols, r.Protocol) {
		return nil
	}
	return Reject(http.StatusInternalServerError, "the server selected a subprotocol the client did not offer")
}

// appendProtocols appends the subprotocols listed in one
// Sec-WebSocket-Protocol header value (1#token: tokens separated by commas
// and optional spaces; empty elements are allowed) to dst. It reports
// false if an element is not a token.
func appendProtocols(dst []string, v string) ([]string, bool) {
	for _, p := range strings.Split(v, ",") {
		p = strings.Trim(p, " \t")
		if p == "" {
			continue
		}
		if !isToken(p) {
			return dst, false
		}
		dst = append(dst, p)
	}
	return dst, true
}

// isToken reports whether s is an RFC 9110 token: one or more tchar
// (letters, digits and !#$%&'*+-.^_`|~).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// RejectError refuses an upgrade with an HTTP status.
type RejectError struct {
	Status int
	Reason string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("wsnet: rejected %d: %s", e.Status, e.Reason)
}

// Reject returns an error for Authorize that refuses the upgrade with status.
func Reject(status int, reason string) error { return &RejectError{Status: status, Reason: reason} }

// Config tunes the server. Zero fields take the defaults noted.
type Config struct {
	// Authorize inspects the handshake (auth, Origin, offered
	// subprotocols) before the upgrade completes, and may select a
	// subprotocol (Request.Protocol). A *RejectError becomes its HTTP
	// status; any other error 403. The returned value is available as
	// Conn.Data.
	Authorize func(r *Request) (any, error)

	MaxMessageSize   int           // 64 KiB; larger frames/messages close with 1009
	SendQueueLen     int           // 256 frames
	SendQueueBytes   int           // 1 MiB (a larger single frame can never be sent)
	PingInterval     time.Duration // 30s
	MissedPongs      int           // 2
	ReadTimeout      time.Duration // 10s: max time a frame may stay incomplete
	WriteTimeout     time.Duration // 10s: max time the send buffer may stay full
	HandshakeTimeout time.Duration // 5s
	Readers          int           // GOMAXPROCS
	Writers          int           // GOMAXPROCS
	ReadBufferSize   int           // 16 KiB per reader goroutine
}

func (c *Config) setDefaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.MaxMessageSize, 64<<10)
	def(&c.SendQueueLen, 256)
	def(&c.SendQueueBytes, 1<<20)
	def(&c.MissedPongs, 2)
	def(&c.Readers, runtime.GOMAXPROCS(0))
	def(&c.Writers, runtime.GOMAXPROCS(0))
	def(&c.ReadBufferSize, 16<<10)
	defd(&c.PingInterval, 30*time.Second)
	defd(&c.ReadTimeout, 10*time.Second)
	defd(&c.WriteTimeout, 10*time.Second)
	defd(&c.HandshakeTimeout, 5*time.Second)
}

var errClosed = errors.New("wsnet: closed")

// Server is the transport. Create with NewServer; feed it with Serve or use
// it as an http.Handler.
type Server struct {
	cfg     Config
	handler Handler
	readers []*reader
	wq      workQueue
	nextID  atomic.Int32
	writes  atomic.Uint64 // writev calls

	mu     sync.Mutex
	conns  map[*Conn]struct{}
	lns    []net.Listener
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// NewServer starts the reader, flusher and sweeper goroutines.
func NewServer(cfg Config, h Handler) (*Server, error) {
	cfg.setDefaults()
	s := &Server{cfg: cfg, handler: h, conns: make(map[*Conn]struct{}), done: make(chan struct{})}
	s.wq.cond = sync.NewCond(&s.wq.mu)
	for range cfg.Readers {
		r, err := newReader(s)
		if err != nil {
			for _, r := range s.readers {
				r.closeFDs()
			}
			return nil, err
		}
		s.readers = append(s.readers, r)
	}
	for _, r := range s.readers {
		s.wg.Go(r.loop)
	}
	for range cfg.Writers {
		s.wg.Go(s.flushLoop)
	}
	s.wg.Go(s.sweep)
	return s, nil
}

// Len returns the number of open connections.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// WriteCalls returns the number of writev system calls made so far.
func (s *Server) WriteCalls() uint64 { return s.writes.Load() }

// Broadcast sends one pre-encoded frame to every open connection and
// returns how many accepted it.
func (s *Server) Broadcast(frame []byte) int {
	s.mu.Lock()
	list := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	s.mu.Unlock()
	n := 0
	for _, c := range list {
		if c.Send(frame) {
			n++
		}
	}
	return n
}

// Serve accepts connections from ln until ln or the server is closed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return errClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		go s.upgradeRaw(nc)
	}
}

func (s *Server) upgradeRaw(nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	req := Request{Header: http.Header{}, RemoteAddr: nc.RemoteAddr()}
	var data any
	u := ws.Upgrader{
		OnRequest: func(uri []byte) error { req.URI = string(uri); return nil },
		OnHost:    func(h []byte) error { req.Host = string(h); return nil },
		OnHeader: func(k, v []byte) error {
			if len(req.Header) < 64 {
				req.Header.Add(string(k), string(v))
			}
			return nil
		},
		// gobwas hands Sec-WebSocket-Protocol here instead of to
		// OnHeader. Nothing is selected yet ("", true): Authorize
		// decides, in OnBeforeUpgrade.
		ProtocolCustom: func(v []byte) (string, bool) {
			if len(req.Header) < 64 {
				req.Header.Add("Sec-WebSocket-Protocol", string(v))
			}
			var ok bool
			req.Protocols, ok = appendProtocols(req.Protocols, string(v))
			return "", ok
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if s.cfg.Authorize == nil {
				return nil, nil
			}
			d, err := s.cfg.Authorize(&req)
			if err == nil {
				err = req.checkProtocol()
			}
			if err != nil {
				return nil, rejection(err)
			}
			data = d
			if req.Protocol != "" {
				// A token (checked by appendProtocols): no header injection.
				return ws.HandshakeHeaderString("Sec-WebSocket-Protocol: " + req.Protocol + "\r\n"), nil
			}
			return nil, nil
		},
	}
	if _, err := u.Upgrade(nc); err != nil {
		_ = nc.Close()
		return
	}
	_ = s.adopt(nc, data, nil)
}

// ServeHTTP upgrades an HTTP request (hijacking the connection). Authorize
// runs before anything is written.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var data any
	var protocols []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		var ok bool
		if protocols, ok = appendProtocols(protocols, v); !ok {
			http.Error(w, "malformed Sec-WebSocket-Protocol", http.StatusBadRequest)
			return
		}
	}
	var selected string
	if s.cfg.Authorize != nil {
		req := &Request{URI: r.RequestURI, Host: r.Host, Header: r.Header, RemoteAddr: addrOf(r.RemoteAddr), Protocols: protocols}
		d, err := s.cfg.Authorize(req)
		if err == nil {
			err = req.checkProtocol()
		}
		if err != nil {
			status, reason := http.StatusForbidden, err.Error()
			var re *RejectError
			if errors.As(err, &re) {
				status, reason = re.Status, re.Reason
			}
			http.Error(w, reason, status)
			return
		}
		data, selected = d, req.Protocol
	}
	u := ws.HTTPUpgrader{Timeout: s.cfg.HandshakeTimeout}
	if selected != "" {
		u.Protocol = func(p string) bool { return p == selected }
	}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		return
	}
	var pending []byte
	if rw != nil && rw.Reader.Buffered() > 0 {
		pending, _ = rw.Reader.Peek(rw.Reader.Buffered())
		pending = bytes.Clone(pending)
	}
	_ = s.adopt(nc, data, pending)
}

func addrOf(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return nil
	}
	return a
}

func rejection(err error) error {
	var re *RejectError
	if errors.As(err, &re) {
		return ws.RejectConnectionError(ws.RejectionStatus(re.Status), ws.RejectionReason(re.Reason))
	}
	return ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden), ws.RejectionReason("forbidden"))
}

// adopt takes over the upgraded socket: dup the fd, close the net.Conn and
// register the dup with a reader's epoll set.
func (s *Server) adopt(nc net.Conn, data any, pending []byte) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		_ = nc.Close()
		return errors.New("wsnet: not a syscall.Conn")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		_ = nc.Close()
		return err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || derr != nil {
		_ = nc.Close()
		return errors.Join(err, derr)
	}
	addr := nc.RemoteAddr()
	_ = nc.Close() // the dup keeps the socket open; netpoller forgets the original
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return err
	}
	id := s.nextID.Add(1)
	c := &Conn{srv: s, rd: s.readers[int(uint32(id))%len(s.readers)], id: id, data: data, addr: addr, fd: fd}
	c.lastRead.Store(time.Now().UnixNano())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = unix.Close(fd)
		return errClosed
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.handler.OnOpen(c)
	if len(pending) > 0 && !c.consume(pending) {
		return nil
	}
	c.fdmu.RLock()
	defer c.fdmu.RUnlock()
	if c.fd < 0 {
		return errClosed
	}
	return c.rd.add(c)
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops listeners, closes every connection (best-effort 1001) and
// waits for the transport's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	lns := s.lns
	list := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	s.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
	for _, c := range list {
		c.terminate(ReasonShutdown, true)
	}
	s.wq.close()
	for _, r := range s.readers {
		r.wake()
	}
	s.wg.Wait()
	for _, r := range s.readers {
		r.closeFDs()
	}
	return nil
}

// sweep is the single idle/timeout ticker (no timer per connection).
func (s *Server) sweep() {
	tick := min(s.cfg.PingInterval, s.cfg.ReadTimeout, s.cfg.WriteTimeout) / 4
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	ping := EncodeFrame(OpPing, nil)
	var list []*Conn
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		list = list[:0]
		for c := range s.conns {
			list = append(list, c)
		}
		s.mu.Unlock()
		now := time.Now().UnixNano()
		pi := int64(s.cfg.PingInterval)
		for _, c := range list {
			if ps := c.partialSince.Load(); ps != 0 && now-ps > int64(s.cfg.ReadTimeout) {
				c.requestClose(ReasonReadTimeout)
				continue
			}
			c.mu.Lock()
			bs := c.blockedSince
			c.mu.Unlock()
			if bs != 0 && now-bs > int64(s.cfg.WriteTimeout) {
				c.requestClose(ReasonWriteTimeout)
				continue
			}
			out := c.pingsOut.Load()
			if now-c.lastRead.Load() >= pi*int64(out+1) {
				if int(out) >= s.cfg.MissedPongs {
					c.requestClose(ReasonPingTimeout)
					continue
				}
				c.pingsOut.Add(1)
				c.enqueue([][]byte{ping}, nil)
			}
		}
		clear(list)
		if cap(list) > 4*len(list)+1024 {
			list = nil
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

func (s *Server) flushLoop() {
	var sc scratch
	for {
		c, ok := s.wq.pop()
		if !ok {
			return
		}
		c.flush(&sc)
	}
}

// reader owns one epoll instance and the goroutine waiting on it.
type reader struct {
	srv    *Server
	epfd   int
	wakefd int
	mu     sync.Mutex
	conns  map[int32]*Conn
	stop   atomic.Bool
}

const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP

func newReader(s *Server) (*reader, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wfd)
		return nil, err
	}
	return &reader{srv: s, epfd: epfd, wakefd: wfd, conns: make(map[int32]*Conn)}, nil
}

func (r *reader) closeFDs() {
	_ = unix.Close(r.epfd)
	_ = unix.Close(r.wakefd)
}

func (r *reader) wake() {
	r.stop.Store(true)
	var one [8]byte
	one[0] = 1
	_, _ = unix.Write(r.wakefd, one[:])
}

// add registers c; the caller holds c.fdmu shared.
func (r *reader) add(c *Conn) error {
	r.mu.Lock()
	r.conns[int32(c.fd)] = c
	r.mu.Unlock()
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(c.fd), Pad: c.id}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		r.mu.Lock()
		delete(r.conns, int32(c.fd))
		r.mu.Unlock()
		return err
	}
	return nil
}

// mod toggles EPOLLOUT; the caller holds c.mu. The fd may be closing
// concurrently; a failing EPOLL_CTL_MOD is harmless then.
func (r *reader) mod(c *Conn, out bool) {
	c.fdmu.RLock()
	defer c.fdmu.RUnlock()
	if c.fd < 0 {
		return
	}
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(c.fd), Pad: c.id}
	if out {
		ev.Events |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
}

// remove unregisters fd; the caller holds c.fdmu exclusively.
func (r *reader) remove(c *Conn, fd int) {
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	r.mu.Lock()
	if r.conns[int32(fd)] == c {
		delete(r.conns, int32(fd))
	}
	r.mu.Unlock()
}

func (r *reader) loop() {
	events := make([]unix.EpollEvent, 128)
	buf := make([]byte, r.srv.cfg.ReadBufferSize)
	for {
		n, err := unix.EpollWait(r.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		if r.stop.Load() {
			return
		}
		for i := range n {
			ev := &events[i]
			r.mu.Lock()
			c := r.conns[ev.Fd]
			r.mu.Unlock()
			if c == nil || c.id != ev.Pad {
				continue // closed, or the fd number was reused since
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				c.onWritable()
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.readable(buf)
			}
		}
	}
}
