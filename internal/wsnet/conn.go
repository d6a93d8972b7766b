package wsnet

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// CloseReason tells why a connection ended.
type CloseReason struct {
	Code   uint16 // close code sent or received; CloseAbnormal if none
	Text   string
	Remote bool  // the client started the close (close frame or EOF)
	Err    error // underlying I/O error, if any
}

// Reasons used by the transport when it closes a connection itself.
var (
	ReasonSlowConsumer = CloseReason{Code: ClosePolicyViolation, Text: "slow consumer"}
	ReasonWriteTimeout = CloseReason{Code: ClosePolicyViolation, Text: "write timeout"}
	ReasonReadTimeout  = CloseReason{Code: ClosePolicyViolation, Text: "read timeout"}
	ReasonPingTimeout  = CloseReason{Code: CloseGoingAway, Text: "ping timeout"}
	ReasonShutdown     = CloseReason{Code: CloseGoingAway, Text: "server shutdown"}
)

// Conn is one upgraded WebSocket connection. Its socket is behind a link:
// an epoll-registered fd (no goroutine per connection) or a net.Conn served
// by the stream backend. Idle, it holds only this struct and its link: read
// leftovers, fragment buffers and the send queue are allocated on demand
// and released when empty.
type Conn struct {
	srv  *Server
	l    link
	id   int32
	data any
	addr net.Addr

	// Reader-owned state: only the goroutine reading the socket (or the
	// upgrade goroutine before reads start) touches these.
	rbuf       []byte // unparsed bytes of a partial frame
	frag       []byte // assembled fragments of a message
	fragOp     OpCode
	recvClosed bool
	peerClose  *CloseReason // close frame received from the client

	lastRead     atomic.Int64 // unix nanos of the last successful read
	partialSince atomic.Int64 // unix nanos since a frame is incomplete; 0 if none
	pingsOut     atomic.Int32
	closed       atomic.Bool

	// cb serialises the handler's callbacks for this connection: OnOpen,
	// OnMessage (reader) and OnClose (whichever goroutine tears down).
	cb sync.Mutex

	mu           sync.Mutex // guards the send state below
	q            *sendQueue // queued frames not yet fully written; nil when empty
	qBytes       int
	woff         int   // bytes of q.e[0] already written
	scheduled    bool  // a flush is queued, running or parked (epoll: EPOLLOUT)
	writing      bool  // a flush is writing frames of q outside c.mu
	blockedSince int64 // unix nanos the socket buffer filled (epoll); 0 if not blocked
	closeAfter   *CloseReason
	closeNow     *CloseReason
}

// link is a connection's socket as one backend drives it. The protocol,
// queue and callbacks above it are shared.
type link interface {
	// willFlush runs under c.mu when a flush is scheduled (c.scheduled
	// set), flushSoon right after c.mu is released: together they run
	// c.flush on the backend's writer.
	willFlush(c *Conn)
	flushSoon(c *Conn)
	// write writes iov, the frames of c's queue from its first unwritten
	// byte (partial: iov[0] is the rest of a partly written frame). It
	// returns the bytes written and, for a non-blocking socket, whether
	// its buffer filled before the end.
	write(c *Conn, sc *scratch, iov [][]byte, partial bool) (n int, blocked bool, err error)
	// park waits for a blocked socket to become writable, then flushes
	// again; it runs under c.mu.
	park(c *Conn)
	// requestTeardown has c torn down with c.closeNow off the caller's
	// goroutine; tearDown is what a flush does when it finds c.closeNow.
	requestTeardown(c *Conn)
	tearDown(c *Conn, r CloseReason)
	// shutdown closes c for Server.Close (1001).
	shutdown(c *Conn)
	// closeSocket closes the socket once, after writing closeFrame first
	// when it is not nil and fits between frames. It runs in terminate.
	closeSocket(c *Conn, closeFrame []byte)
}

// Data returns the value the Authorize callback returned for this connection.
func (c *Conn) Data() any { return c.data }

// RemoteAddr returns the client address.
func (c *Conn) RemoteAddr() net.Addr { return c.addr }

// Releaser is told when the transport is done with a frame.
type Releaser interface{ Release() }

// entry is one queued frame and who to tell when it is written or dropped.
type entry struct {
	frame []byte
	rel   Releaser
}

// sendQueue holds a connection's queued frames. Queues are pooled: an idle
// connection holds none, and a busy one allocates none once warm.
type sendQueue struct{ e []entry }

var queuePool = sync.Pool{New: func() any { return new(sendQueue) }}

// release tells the releasers of q's frames that they were dropped and
// returns q to the pool. q may be nil.
func (q *sendQueue) release() {
	if q == nil {
		return
	}
	for _, e := range q.e {
		if e.rel != nil {
			e.rel.Release()
		}
	}
	clear(q.e)
	q.e = q.e[:0]
	queuePool.Put(q)
}

// scratch is a flusher's reusable working memory: the iovec of one writev,
// the releasers of the frames it completed, and for the stream backend the
// net.Buffers it writes and the buffer that coalesces frames for a socket
// without writev.
type scratch struct {
	iov  [][]byte
	rel  []Releaser
	bufs net.Buffers
	buf  []byte
}

// Send enqueues pre-encoded frames (see EncodeFrame) to be written with one
// writev by the server's flushers. Frames passed in one call go out together.
// The slices must not be modified afterwards and may be shared by many
// connections. Send never blocks on the network. It returns false if the
// connection is closed or closing, or if the frames do not fit the bounded
// queue (Config.SendQueueLen frames / SendQueueBytes bytes); in that case the
// connection is closed with 1008 "slow consumer" (asynchronously: OnClose is
// never called from inside Send).
func (c *Conn) Send(frames ...[]byte) bool {
	return c.enqueue(frames, nil)
}

// SendRelease queues one pre-encoded frame like Send. If it returns true,
// r.Release() is called exactly once, after the frame has been written or
// dropped (connection closed); if it returns false, r is not called.
// Release runs on a transport goroutine (never inside SendRelease) and must
// not block.
func (c *Conn) SendRelease(frame []byte, r Releaser) bool {
	return c.enqueue([][]byte{frame}, r)
}

// SendMessage encodes and sends one message; for broadcasts encode once with
// EncodeFrame and call Send on every connection instead.
func (c *Conn) SendMessage(op OpCode, payload []byte) bool {
	return c.Send(EncodeFrame(op, payload))
}

// enqueue applies the queue bound to every frame, pongs and pings included:
// a client that floods pings without reading is a slow consumer too. rel,
// if not nil, is the releaser of the last frame.
func (c *Conn) enqueue(frames [][]byte, rel Releaser) bool {
	if len(frames) == 0 {
		return !c.closed.Load()
	}
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	cfg := &c.srv.cfg
	c.mu.Lock()
	if c.closed.Load() || c.closeAfter != nil || c.closeNow != nil {
		c.mu.Unlock()
		return false
	}
	queued := 0
	if c.q != nil {
		queued = len(c.q.e)
	}
	if queued+len(frames) > cfg.SendQueueLen || c.qBytes+n > cfg.SendQueueBytes {
		// The queued frames stay until the teardown drops (and releases) them.
		r := ReasonSlowConsumer
		c.closeNow = &r
		c.mu.Unlock()
		c.l.requestTeardown(c)
		return false
	}
	c.push(frames, rel, n)
	c.scheduleLocked()
	return true
}

// scheduleLocked has the queue flushed unless a flush is already
// scheduled; the caller holds c.mu, which scheduleLocked releases.
func (c *Conn) scheduleLocked() {
	sched := !c.scheduled
	if sched {
		c.scheduled = true
		c.l.willFlush(c)
	}
	c.mu.Unlock()
	if sched {
		c.l.flushSoon(c)
	}
}

// push appends frames of n bytes to the queue; the caller holds c.mu.
func (c *Conn) push(frames [][]byte, rel Releaser, n int) {
	if c.q == nil {
		c.q = queuePool.Get().(*sendQueue)
	}
	for i, f := range frames {
		e := entry{frame: f}
		if i == len(frames)-1 {
			e.rel = rel
		}
		c.q.e = append(c.q.e, e)
	}
	c.qBytes += n
}

// dropQueue detaches the queue for release; the caller holds c.mu and no
// write of its frames is in flight.
func (c *Conn) dropQueue() *sendQueue {
	q := c.q
	c.q, c.qBytes, c.woff = nil, 0, 0
	return q
}

// Close starts a server-initiated close: the close frame is queued behind
// frames already sent, and the socket is closed once they are written (or
// when the write timeout expires). OnClose is called with the given code.
func (c *Conn) Close(code uint16, text string) {
	c.closeGraceful(CloseReason{Code: code, Text: text}, EncodeClose(code, text))
}

func (c *Conn) closeGraceful(r CloseReason, frame []byte) {
	c.mu.Lock()
	if c.closed.Load() || c.closeAfter != nil || c.closeNow != nil {
		c.mu.Unlock()
		return
	}
	c.push([][]byte{frame}, nil, len(frame))
	c.closeAfter = &r
	c.scheduleLocked()
}

// maxIOV is the most frames one writev takes (IOV_MAX).
const maxIOV = 1024

// flush writes queued frames with as few writev calls as possible. Only one
// flush writes per connection at a time (c.scheduled); a teardown request
// may run a second one, which only tears down. Frames stay in the queue
// while they are written (c.writing), so whoever drops the queue never
// releases a frame a write still reads.
func (c *Conn) flush(sc *scratch) {
	c.mu.Lock()
	for {
		if c.closed.Load() {
			// Torn down while we wrote: the queue is ours to drop.
			q := c.dropQueue()
			c.mu.Unlock()
			q.release()
			return
		}
		if r := c.closeNow; r != nil {
			c.mu.Unlock()
			c.l.tearDown(c, *r)
			return
		}
		if c.q == nil || len(c.q.e) == 0 {
			break
		}
		for _, e := range c.q.e[:min(len(c.q.e), maxIOV)] {
			sc.iov = append(sc.iov, e.frame)
		}
		sc.iov[0] = sc.iov[0][c.woff:]
		partial := c.woff != 0
		c.writing = true
		c.mu.Unlock()

		n, blocked, err := c.l.write(c, sc, sc.iov, partial)
		clear(sc.iov[:cap(sc.iov)])
		sc.iov = sc.iov[:0]

		c.mu.Lock()
		c.writing = false
		if err != nil {
			c.mu.Unlock()
			r := CloseReason{Code: CloseAbnormal, Text: "write error", Err: err}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				r = ReasonWriteTimeout
			}
			c.terminate(r, false)
			c.mu.Lock()
			continue // the loop head drops the queue if terminate could not
		}
		c.advance(n, sc)
		if len(sc.rel) > 0 {
			c.mu.Unlock()
			for i, r := range sc.rel {
				r.Release()
				sc.rel[i] = nil
			}
			sc.rel = sc.rel[:0]
			c.mu.Lock()
		}
		if blocked {
			// Socket buffer full: park until it drains.
			if c.blockedSince == 0 {
				c.blockedSince = time.Now().UnixNano()
			}
			if c.closed.Load() || c.closeNow != nil {
				continue // the loop head tears down
			}
			c.l.park(c)
			c.mu.Unlock()
			return
		}
		c.blockedSince = 0
	}
	if c.q != nil {
		queuePool.Put(c.dropQueue()) // release the queue of an idle socket
	}
	c.scheduled = false
	after := c.closeAfter
	c.mu.Unlock()
	if after != nil {
		c.terminate(*after, false)
	}
}

// advance removes the frames that n written bytes completed from the queue
// and collects their releasers in sc.rel; the caller holds c.mu.
func (c *Conn) advance(n int, sc *scratch) {
	e := c.q.e
	i, off := 0, c.woff
	for ; i < len(e); i++ {
		rem := len(e[i].frame) - off
		if n < rem {
			off += n
			break
		}
		n -= rem
		off = 0
		c.qBytes -= len(e[i].frame)
		if e[i].rel != nil {
			sc.rel = append(sc.rel, e[i].rel)
		}
	}
	c.woff = off
	k := copy(e, e[i:])
	clear(e[k:])
	c.q.e = e[:k]
}

// requestClose has the connection torn down off the caller's goroutine
// (used by the sweeper so that timeouts never run handler code on it).
func (c *Conn) requestClose(r CloseReason) {
	c.mu.Lock()
	if c.closeNow == nil {
		c.closeNow = &r
	}
	c.mu.Unlock()
	c.l.requestTeardown(c)
}

// terminate closes the socket once and reports OnClose. With sendClose it
// writes a best-effort close frame (without waiting for a full send
// buffer, only on a frame boundary). Queued frames are dropped (and
// released) here, or by the flush whose write is in flight once it returns.
func (c *Conn) terminate(r CloseReason, sendClose bool) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	var frame []byte
	if sendClose && r.Code != CloseAbnormal && r.Code != CloseNoStatus {
		frame = EncodeClose(r.Code, r.Text)
	}
	c.l.closeSocket(c, frame)
	c.mu.Lock()
	var q *sendQueue
	if !c.writing {
		q = c.dropQueue()
	}
	c.mu.Unlock()
	q.release()
	c.srv.remove(c)
	// closed is already set, so an OnMessage that takes cb after this will
	// not run: OnClose is the last callback, and never overlaps OnMessage.
	c.cb.Lock()
	c.srv.handler.OnClose(c, r)
	c.cb.Unlock()
}

// readFrom handles n bytes read from the socket into buf.
func (c *Conn) readFrom(buf []byte) bool {
	c.lastRead.Store(time.Now().UnixNano())
	c.pingsOut.Store(0)
	return c.consume(buf)
}

// eofReason is the reason for a socket the client closed.
func (c *Conn) eofReason() CloseReason {
	if c.peerClose != nil {
		return *c.peerClose // client sent close and hung up without waiting
	}
	return CloseReason{Code: CloseAbnormal, Text: "eof", Remote: true}
}

// consume parses the bytes read; it returns false once the connection is
// closing (no further reads are useful).
func (c *Conn) consume(data []byte) bool {
	if c.recvClosed {
		return false
	}
	b := data
	fromRbuf := len(c.rbuf) > 0
	if fromRbuf {
		c.rbuf = append(c.rbuf, data...)
		b = c.rbuf
	}
	off, need, err := c.parseFrames(b)
	if err != nil {
		c.recvClosed = true
		c.rbuf = nil
		c.frag = nil
		var pe *protoErr
		if e, ok := err.(*protoErr); ok {
			pe = e
		} else {
			pe = &protoErr{CloseInternalError, err.Error()}
		}
		c.closeGraceful(CloseReason{Code: pe.code, Text: pe.text}, EncodeClose(pe.code, pe.text))
		return false
	}
	if c.recvClosed {
		c.rbuf = nil
		return false
	}
	rest := b[off:]
	switch {
	case len(rest) == 0:
		c.rbuf = nil
		c.partialSince.Store(0)
	case fromRbuf && off == 0:
		// still the same partial frame
	default:
		nb := make([]byte, len(rest), max(need, len(rest)))
		copy(nb, rest)
		c.rbuf = nb
		c.partialSince.Store(time.Now().UnixNano())
	}
	if len(rest) > 0 && c.partialSince.Load() == 0 {
		c.partialSince.Store(time.Now().UnixNano())
	}
	return true
}

// parseFrames handles every complete frame in b. It returns the bytes
// consumed and, when a frame is incomplete, the total size it needs.
func (c *Conn) parseFrames(b []byte) (off, need int, err error) {
	maxMsg := int64(c.srv.cfg.MaxMessageSize)
	for !c.recvClosed {
		h, hn, err := parseHeader(b[off:], true)
		if err != nil {
			return off, 0, err
		}
		if hn == 0 {
			return off, maxHeaderLen, nil
		}
		if h.length > maxMsg || (h.op == OpContinuation && int64(len(c.frag))+h.length > maxMsg) {
			return off, 0, errTooBig
		}
		total := hn + int(h.length)
		if len(b)-off < total {
			return off, total, nil
		}
		p := b[off+hn : off+total]
		unmask(p, h.mask)
		off += total
		if err := c.handleFrame(h, p); err != nil {
			return off, 0, err
		}
	}
	return off, 0, nil
}

func (c *Conn) handleFrame(h frameHeader, p []byte) error {
	switch h.op {
	case OpText, OpBinary:
		if c.fragOp != 0 {
			return errExpectedCont
		}
		if h.fin {
			return c.deliver(h.op, p)
		}
		c.fragOp = h.op
		c.frag = append(make([]byte, 0, len(p)*2), p...)
	case OpContinuation:
		if c.fragOp == 0 {
			return errContinuation
		}
		c.frag = append(c.frag, p...)
		if h.fin {
			op, msg := c.fragOp, c.frag
			c.fragOp, c.frag = 0, nil
			return c.deliver(op, msg)
		}
	case OpPing:
		c.enqueue([][]byte{EncodeFrame(OpPong, p)}, nil)
	case OpPong:
		// Liveness is tracked on every read.
	case OpClose:
		code, text, err := parseClosePayload(p)
		if err != nil {
			return err
		}
		c.recvClosed = true
		reply := CloseNormal
		if code != CloseNoStatus {
			reply = code
		}
		r := CloseReason{Code: code, Text: text, Remote: true}
		c.peerClose = &r
		c.closeGraceful(r, EncodeClose(reply, ""))
	}
	return nil
}

func (c *Conn) deliver(op OpCode, p []byte) error {
	if op == OpText && !utf8.Valid(p) {
		return errUTF8
	}
	c.cb.Lock()
	defer c.cb.Unlock()
	if c.closed.Load() {
		c.recvClosed = true
		return nil
	}
	c.srv.handler.OnMessage(c, op, p)
	return nil
}
