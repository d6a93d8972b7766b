// Package wsnet is a WebSocket server transport for many mostly idle
// sockets on few cores.
//
// Connections are accepted and upgraded with gobwas/ws (zero-copy
// handshake). The Authorize callback sees the request line, headers and
// offered subprotocols before the upgrade completes, and may select a
// subprotocol; its error becomes an HTTP status (see Reject). A connection
// the transport cannot take (a ResponseWriter that cannot be hijacked, a
// server shutting down, a socket epoll refuses) is refused with a status or
// a close code, and logged to Config.Logger.
//
// Two backends move the bytes after the upgrade; the WebSocket protocol,
// the bounded send queue, timeouts and callbacks are the same code for both.
//
// The epoll backend (Linux, plain TCP and Unix sockets): the socket fd is
// dup'ed, the net.Conn closed (removing it from the Go netpoller) and the
// fd registered with one of a few epoll instances, each served by one
// reader goroutine (Config.Readers, default GOMAXPROCS). No goroutine exists
// per connection: 0.9 KiB of server RSS per idle socket at 19,000 sockets.
// An epoll fd is itself registered with Go's netpoller (it is readable
// while it has events): a reader polls it with epoll_wait(0) and parks in
// the netpoller when it is empty, so no thread blocks in epoll_wait. A
// blocking wait cost a thread hand-off at every wake-up (the runtime's
// monitor takes the P of a thread in a system call and gives it back
// after): at 1,500 arena players the server made 14,000 context switches
// a second instead of 5,200, and used 20-30 % more CPU.
//
// TLS (ListenTLS, tls_linux.go, tlsrecord.go): crypto/tls runs the
// handshake and the HTTP upgrade; then a TLS 1.3 socket leaves it for a
// small record layer on the epoll backend (its traffic secrets come from
// KeyLogWriter, its record sequence numbers from counting, the first
// record under the new keys found by trial decryption), so an idle wss://
// socket costs about what a plain one does (6.5 KiB through the whole
// gateway at 19,000 sockets, 18.8 with crypto/tls on the stream backend).
// TLS 1.2 sockets stay with crypto/tls on the stream backend.
//
// The stream backend (every other socket: TLS 1.2, TLS from a listener
// other than ListenTLS, everything on other platforms, or any socket with
// Config.Backend = BackendStream): one reader
// goroutine per connection, and a writer goroutine only while the
// connection's send queue is not empty, writing it with writev
// (net.Buffers) when the socket supports it, else with one Write of the
// frames copied together (one TLS record, not one per frame), under a
// write deadline of Config.WriteTimeout. Between bursts of input the reader
// parks on the raw socket (not inside tls.Conn.Read) holding no buffer, so
// the GC keeps its stack small. Idle, at 19,000 sockets: 5.4 KiB of RSS per
// plain TCP socket, 18.3 KiB per TLS socket (13.8 after a GC; crypto/tls
// keeps about 6 KiB of buffers and cipher state per connection). Figures
// and method: docs/benchmarks.md, "Realtime transport: TLS and portable
// backend" (cmd/idlemem).
//
// Epoll is level-triggered: a reader reads at most 4 buffers from a socket
// per wakeup and moves on, and the kernel reports the rest on the next
// epoll_wait, which gives fairness without a ready list; edge-triggered mode
// would force draining every socket to EAGAIN (one flooding client starves
// the others) or bookkeeping of sockets left unread. Each epoll instance has
// exactly one waiter, so level-triggered mode causes no thundering herd.
// EPOLLOUT is registered only while a socket's send buffer is full.
//
// Epoll reads use the reader goroutine's own buffer; only an incomplete
// frame is copied to a per-connection buffer, released when the frame
// completes. Writes: Conn.Send enqueues pre-encoded frames into a bounded
// queue (pooled, released when empty); on epoll a small pool of flushers
// (Config.Writers) writes a connection's whole queue with one writev. The
// senders (match goroutines) thus never make system calls: a tick's time is
// the game's, and a socket write that the scheduler stretches stalls a
// flusher, not a match. (Writing on the sender's goroutine was measured:
// no CPU saved at 3,000 arena players, and match tick p99 rose from about
// 2 ms to 5-40 ms.) A full queue closes the connection with 1008 "slow
// consumer". Conn.SendRelease tells the sender when a frame's bytes are no
// longer needed, so frames can be pooled.
//
// One sweeper goroutine ticks every PingInterval/4 over all connections: it
// pings sockets idle for PingInterval, closes those that stayed silent for
// MissedPongs pings (1001 "ping timeout"), and enforces ReadTimeout
// (incomplete frame) and, on epoll, WriteTimeout (send buffer full) with
// 1008; the stream backend's write deadline closes with the same 1008.
package wsnet

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
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
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
}

// retryAfter is the Retry-After value of e, "" for none.
func (e *RejectError) retryAfter() string {
	if e.RetryAfter <= 0 {
		return ""
	}
	return strconv.Itoa(int((e.RetryAfter + time.Second - 1) / time.Second))
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("wsnet: rejected %d: %s", e.Status, e.Reason)
}

// Reject returns an error for Authorize that refuses the upgrade with status.
func Reject(status int, reason string) error { return &RejectError{Status: status, Reason: reason} }

// Backend picks how a connection's bytes move after the upgrade.
type Backend string

// Backends. The zero value is BackendAuto.
const (
	// BackendAuto: epoll for plain TCP and Unix sockets on Linux, stream
	// for every other socket and platform. The environment variable
	// MULTIJUEGO_WSNET=portable turns it into BackendStream (the tests use
	// it to run every realtime test on the portable backend).
	BackendAuto Backend = ""
	// BackendStream: a reader goroutine per connection, on every platform.
	BackendStream Backend = "stream"
)

// backendEnv is the environment variable that forces BackendStream where
// Config.Backend is BackendAuto.
const backendEnv = "MULTIJUEGO_WSNET"

// Config tunes the server. Zero fields take the defaults noted.
type Config struct {
	// Authorize inspects the handshake (auth, Origin, offered
	// subprotocols) before the upgrade completes, and may select a
	// subprotocol (Request.Protocol). A *RejectError becomes its HTTP
	// status; any other error 403. The returned value is available as
	// Conn.Data.
	Authorize func(r *Request) (any, error)

	// Logger receives a record for every connection the transport refuses
	// after Authorize accepted it (no hijack, shutting down, a socket
	// epoll refuses). Nil discards them.
	Logger *slog.Logger
	// Backend: BackendAuto (default) or BackendStream.
	Backend Backend

	MaxMessageSize   int           // 64 KiB; larger frames/messages close with 1009
	SendQueueLen     int           // 256 frames
	SendQueueBytes   int           // 1 MiB (a larger single frame can never be sent)
	PingInterval     time.Duration // 30s
	MissedPongs      int           // 2
	ReadTimeout      time.Duration // 10s: max time a frame may stay incomplete
	WriteTimeout     time.Duration // 10s: max time the send buffer may stay full
	HandshakeTimeout time.Duration // 5s
	Readers          int           // GOMAXPROCS (epoll)
	Writers          int           // GOMAXPROCS (epoll)
	ReadBufferSize   int           // 16 KiB per epoll reader goroutine
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Backend == BackendAuto && os.Getenv(backendEnv) == "portable" {
		c.Backend = BackendStream
	}
}

func (c *Config) validate() error {
	switch c.Backend {
	case BackendAuto, BackendStream:
		return nil
	}
	return fmt.Errorf("wsnet: unknown Config.Backend %q (want %q or %q)", c.Backend, BackendAuto, BackendStream)
}

var errClosed = errors.New("wsnet: closed")

// Server is the transport. Create with NewServer; feed it with Serve or use
// it as an http.Handler.
type Server struct {
	cfg     Config
	handler Handler
	ep      *poller // epoll backend; nil when every socket takes the stream backend
	nextID  atomic.Int32
	writes  atomic.Uint64 // write system calls (writev or Write)

	mu     sync.Mutex
	conns  map[*Conn]struct{}
	lns    []net.Listener
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup // sweeper, epoll readers and flushers, stream readers
}

// NewServer starts the sweeper and, when the epoll backend is in use, its
// reader and flusher goroutines.
func NewServer(cfg Config, h Handler) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, handler: h, conns: make(map[*Conn]struct{}), done: make(chan struct{})}
	if cfg.Backend == BackendAuto {
		ep, err := newPoller(s)
		if err != nil {
			return nil, err
		}
		s.ep = ep
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

// WriteCalls returns the number of write system calls (writev, or Write on
// a socket without writev such as TLS) made so far.
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

// isClosed reports whether Close has started.
func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Serve accepts connections from ln until ln or the server is closed. ln
// may be a TLS listener: from ListenTLS, see above; from tls.NewListener,
// its connections take the stream backend.
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
			if s.isClosed() {
				return errClosed
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
		// gobwas answered with a status (bad request, Authorize's refusal).
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	s.adopt(nc, data, nil)
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
				if ra := re.retryAfter(); ra != "" {
					w.Header().Set("Retry-After", ra)
				}
			}
			http.Error(w, reason, status)
			return
		}
		data, selected = d, req.Protocol
	}
	if s.isClosed() {
		s.refused(r.RemoteAddr, "server closed", nil)
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	u := ws.HTTPUpgrader{Timeout: s.cfg.HandshakeTimeout}
	if selected != "" {
		u.Protocol = func(p string) bool { return p == selected }
	}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		// gobwas answered with a status: 400 for a malformed handshake, 500
		// for a ResponseWriter that cannot be hijacked (HTTP/2, or a
		// middleware that hides http.Hijacker).
		if nc != nil {
			_ = nc.Close()
		}
		if errors.Is(err, ws.ErrNotHijacker) {
			s.refused(r.RemoteAddr, "the ResponseWriter cannot be hijacked (HTTP/2, or a wrapper without Unwrap)", err)
		}
		return
	}
	var pending []byte
	if rw != nil && rw.Reader.Buffered() > 0 {
		pending, _ = rw.Reader.Peek(rw.Reader.Buffered())
		pending = bytes.Clone(pending)
	}
	s.adopt(nc, data, pending)
}

// refused logs a connection the transport did not take.
func (s *Server) refused(remote, reason string, err error) {
	s.cfg.Logger.Warn("wsnet: connection refused", "remote", remote, "reason", reason, "err", err)
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
		opts := []ws.RejectOption{ws.RejectionStatus(re.Status), ws.RejectionReason(re.Reason)}
		if ra := re.retryAfter(); ra != "" {
			opts = append(opts, ws.RejectionHeader(ws.HandshakeHeaderString("Retry-After: "+ra+"\r\n")))
		}
		return ws.RejectConnectionError(opts...)
	}
	return ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden), ws.RejectionReason("forbidden"))
}

// adopt takes over an upgraded connection: the epoll backend takes plain
// TCP and Unix sockets when it runs, the stream backend everything else
// (and a socket epoll could not take before OnOpen, such as a failed dup).
func (s *Server) adopt(nc net.Conn, data any, pending []byte) {
	id := s.nextID.Add(1)
	c := &Conn{srv: s, id: id, data: data, addr: nc.RemoteAddr()}
	c.lastRead.Store(time.Now().UnixNano())
	if s.ep != nil && epollable(nc) {
		taken, err := s.ep.adopt(c, nc, pending)
		if taken {
			return
		}
		s.cfg.Logger.Info("wsnet: epoll could not take a socket, using the stream backend", "remote", c.addr, "err", err)
	}
	adoptStream(c, nc, pending)
}

// open registers c, whose link is set, and calls OnOpen; it reports false
// (and opens nothing) if the server is closed. started runs under s.mu once
// c is registered (the stream backend counts its reader in s.wg there, so
// that Close waits for it). OnOpen runs under c.cb, so an OnClose that a
// concurrent Close causes comes after it.
func (s *Server) open(c *Conn, started func()) bool {
	c.cb.Lock()
	defer c.cb.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.conns[c] = struct{}{}
	if started != nil {
		started()
	}
	s.mu.Unlock()
	s.handler.OnOpen(c)
	return true
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
		c.l.shutdown(c)
	}
	if s.ep != nil {
		s.ep.stop()
	}
	s.wg.Wait()
	if s.ep != nil {
		s.ep.closeFDs()
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
