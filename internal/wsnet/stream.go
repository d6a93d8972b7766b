package wsnet

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// streamReadBuffer is a stream reader's buffer. A reader parked on an idle
// socket holds none (readBufs); only a socket without a raw fd to park on
// keeps one for its whole life. A larger message takes several reads (an
// incomplete frame is assembled in Conn.rbuf on both backends).
const streamReadBuffer = 2 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, streamReadBuffer); return &b }}

// maxCoalesce bounds the frames copied together into one Write on a socket
// without writev (TLS: one record's payload); a larger frame is written
// from its own bytes.
const maxCoalesce = 16 << 10

// A stream teardown waits at most closeWriteTimeout for its close frame to
// be written, and closeDrainTimeout for input to discard (see closeSocket).
const (
	closeWriteTimeout = 100 * time.Millisecond
	closeDrainTimeout = time.Millisecond
)

// aLongTimeAgo is a deadline in the past: it wakes a blocked Read at once.
var aLongTimeAgo = time.Unix(1, 0)

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// streamLink is a connection's socket on the stream backend: any net.Conn,
// read by one goroutine per connection and written by a goroutine that
// exists only while the send queue is not empty.
//
// Teardown: the reader goroutine owns the connection's life. A teardown
// request (timeout, slow consumer, shutdown) sets c.closeNow and wakes the
// reader with a read deadline in the past; the reader then writes the
// close frame, unless a write is in flight, and closes the socket, which
// ends a blocked write. A write error or a flushed close frame closes the
// socket from the writer, which ends the reader's Read.
type streamLink struct {
	c        *Conn
	nc       net.Conn
	writev   bool           // nc writes net.Buffers with writev
	buffered bool           // nc keeps read input of its own (TLS): see readBurst
	writers  sync.WaitGroup // the writer goroutine, while one runs
	writer   func()         // l.runWriter, bound once so that starting a writer allocates nothing
	peek     [1]byte        // readable's MSG_PEEK target
	readable func(fd uintptr) bool
}

var _ link = (*streamLink)(nil)

// adoptStream opens c on nc and starts its reader goroutine (counted in
// s.wg, so Server.Close waits for it; the reader waits for its writer).
func adoptStream(c *Conn, nc net.Conn, pending []byte) {
	// No deadline of the upgrade (or of an http.Server's timeouts) may
	// outlive it: the stream backend sets its own.
	_ = nc.SetDeadline(time.Time{})
	l := &streamLink{c: c, nc: nc}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		l.writev = true
	default:
		l.buffered = true
	}
	l.writer = l.runWriter
	l.readable = l.peekReadable
	c.l = l
	s := c.srv
	if !s.open(c, func() { s.wg.Add(1) }) {
		_ = nc.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
		_, _ = nc.Write(EncodeClose(ReasonShutdown.Code, ReasonShutdown.Text))
		_ = nc.Close()
		s.refused(c.addr.String(), "server closed", nil)
		return
	}
	go l.read(pending)
}

// read is the reader goroutine: it consumes the bytes the upgrade read
// ahead, then reads until the socket fails or is closed.
func (l *streamLink) read(pending []byte) {
	c := l.c
	defer c.srv.wg.Done()
	if len(pending) > 0 {
		c.consume(pending)
	}
	var err error
	if rc := l.rawSocket(); rc != nil {
		err = l.readParked(rc)
	} else {
		err = l.readBlocking()
	}
	l.readFailed(err)
	// c is closed now, and a flush is scheduled only under c.mu while c is
	// open: after this barrier no writer starts, so Wait cannot race Add.
	c.mu.Lock()
	c.mu.Unlock() //nolint:staticcheck // empty critical section: a barrier
	l.writers.Wait()
}

// rawSocket returns the socket under nc (under TLS too) to park on, or nil
// where that is not possible (see canPeek).
func (l *streamLink) rawSocket() syscall.RawConn {
	nc := l.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !canPeek || !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readBlocking reads with one buffer held for the connection's life.
func (l *streamLink) readBlocking() error {
	buf := make([]byte, streamReadBuffer)
	for {
		n, err := l.nc.Read(buf)
		if n > 0 {
			// After a close frame or protocol error consume discards: the
			// socket is read to its end so that closing it sends no reset.
			l.c.readFrom(buf[:n])
		}
		if err != nil {
			return err
		}
	}
}

// readParked waits for input on the raw socket (shallow in the stack, with
// no buffer held) and reads each burst with a pooled buffer. A goroutine
// parked deep inside tls.Conn.Read kept about 4.5 KiB of stack per idle
// socket; parked here the GC shrinks it to the minimum
// (docs/benchmarks.md, "Realtime transport: TLS and portable backend").
func (l *streamLink) readParked(rc syscall.RawConn) error {
	for {
		if err := rc.Read(l.readable); err != nil {
			return err // a teardown request's deadline, or the socket closed
		}
		bp := readBufs.Get().(*[]byte)
		err := l.readBurst(*bp)
		readBufs.Put(bp)
		if err != nil {
			return err
		}
	}
}

// readBurst reads what has arrived. Under TLS the first Read may wait for
// the rest of a record, and tls.Conn may keep input it has read or
// decrypted that the socket no longer shows: it is read under an expired
// deadline (which returns buffered input and never blocks; a timeout does
// not break a tls.Conn) until nothing is left, so that parking on the
// socket again never leaves a message unread.
func (l *streamLink) readBurst(buf []byte) error {
	c := l.c
	n, err := l.nc.Read(buf)
	if n > 0 {
		c.readFrom(buf[:n])
	}
	if err != nil || !l.buffered {
		return err
	}
	_ = l.nc.SetReadDeadline(aLongTimeAgo)
	for err == nil {
		if n, err = l.nc.Read(buf); n > 0 {
			c.readFrom(buf[:n])
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	_ = l.nc.SetReadDeadline(time.Time{})
	// A teardown request's expired deadline may have just been cleared:
	// its c.closeNow is set before the deadline, so it is seen here.
	c.mu.Lock()
	r := c.closeNow
	c.mu.Unlock()
	if r != nil {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// readFailed tears c down after a failed Read: a requested teardown (the
// reader was woken for it), the client's EOF, or an I/O error.
func (l *streamLink) readFailed(err error) {
	c := l.c
	if c.closed.Load() {
		return
	}
	c.mu.Lock()
	r := c.closeNow
	c.mu.Unlock()
	switch {
	case r != nil:
		c.terminate(*r, true)
	case errors.Is(err, io.EOF):
		c.terminate(c.eofReason(), false)
	default:
		c.terminate(CloseReason{Code: CloseAbnormal, Text: "read error", Remote: true, Err: err}, false)
	}
}

func (l *streamLink) willFlush(*Conn)  { l.writers.Add(1) }
func (l *streamLink) flushSoon(*Conn)  { go l.writer() }
func (l *streamLink) shutdown(c *Conn) { c.requestClose(ReasonShutdown) }

// park is never called: stream writes block until done or failed.
func (l *streamLink) park(*Conn) {}

// requestTeardown wakes the reader, which tears c down (see streamLink).
func (l *streamLink) requestTeardown(*Conn) { _ = l.nc.SetReadDeadline(aLongTimeAgo) }

// tearDown: the request that set c.closeNow woke the reader already; wake
// it again in case a Read started since with a fresh deadline.
func (l *streamLink) tearDown(c *Conn, _ CloseReason) { l.requestTeardown(c) }

// runWriter flushes c's queue until it is empty or c is closed.
func (l *streamLink) runWriter() {
	defer l.writers.Done()
	sc := scratchPool.Get().(*scratch)
	l.c.flush(sc)
	scratchPool.Put(sc)
}

// write writes all of iov under a deadline of Config.WriteTimeout: with one
// writev where nc supports it, else with one Write per maxCoalesce bytes of
// frames copied together.
func (l *streamLink) write(c *Conn, sc *scratch, iov [][]byte, _ bool) (int, bool, error) {
	if err := l.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		return 0, false, err
	}
	if l.writev {
		sc.bufs = iov
		n, err := sc.bufs.WriteTo(l.nc)
		sc.bufs = nil
		c.srv.writes.Add(1)
		return int(n), false, err
	}
	written := 0
	for len(iov) > 0 {
		b := iov[0]
		iov = iov[1:]
		if len(b) < maxCoalesce {
			buf := append(sc.buf[:0], b...)
			for len(iov) > 0 && len(buf)+len(iov[0]) <= maxCoalesce {
				buf = append(buf, iov[0]...)
				iov = iov[1:]
			}
			sc.buf = buf[:0]
			b = buf
		}
		n, err := l.nc.Write(b)
		c.srv.writes.Add(1)
		written += n
		if err != nil {
			return written, false, err
		}
	}
	return written, false, nil
}

// closeSocket runs on the reader goroutine when closeFrame is not nil (see
// streamLink). The close frame is written only if no write is in flight (c
// is closed, so none starts), within closeWriteTimeout; then input that
// has already arrived is discarded, bounded, because closing a socket with
// unread input makes the kernel send a reset, which can destroy the close
// frame before the client reads it. A TLS connection whose close frame
// went out is closed with tls.Conn.Close (close_notify); for any other the
// socket under it is closed, because tls.Conn.Close may wait 5 s to send
// its alert into a full socket buffer.
func (l *streamLink) closeSocket(c *Conn, closeFrame []byte) {
	sent := false
	if closeFrame != nil {
		c.mu.Lock()
		busy := c.writing
		c.mu.Unlock()
		if !busy {
			_ = l.nc.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
			if _, err := l.nc.Write(closeFrame); err == nil {
				sent = true
				l.drain()
			}
		}
	}
	if tc, ok := l.nc.(*tls.Conn); ok && !sent {
		_ = tc.NetConn().Close()
		return
	}
	_ = l.nc.Close()
}

// drain discards input that arrives within closeDrainTimeout, at most 256
// KiB; under TLS it reads the raw socket (nothing is decrypted).
func (l *streamLink) drain() {
	raw := l.nc
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	_ = raw.SetReadDeadline(time.Now().Add(closeDrainTimeout))
	sink := make([]byte, 4096)
	for range 64 {
		if n, err := raw.Read(sink); n <= 0 || err != nil {
			break
		}
	}
}
