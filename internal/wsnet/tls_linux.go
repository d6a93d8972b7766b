//go:build linux

package wsnet

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// ListenTLS returns a TLS listener on ln whose upgraded sockets the
// transport can serve on the epoll backend: after a TLS 1.3 handshake and
// the WebSocket upgrade, the socket leaves crypto/tls (its tls.Conn,
// buffers and reader goroutine) for the record layer in tlsrecord.go, and
// costs about what a plain socket costs. A TLS 1.2 socket, or one whose
// secrets could not be followed, stays on the stream backend.
func ListenTLS(ln net.Listener, cfg *tls.Config) net.Listener {
	return tls.NewListener(tlsListener{ln}, withKeyLog(cfg))
}

// tlsLink is the TLS state of an epollLink on a wss:// socket.
type tlsLink struct {
	rc recordConn
	// in is a partial record read (reader-owned).
	in []byte
	// out holds sealed records from outOff not yet written, which carry
	// the first plain bytes of the send queue (they stay queued until
	// written, so the queue's bound counts them); written under fdmu.
	out    []byte
	outOff int
	plain  int
	// ended is how crypto/tls's last read ended, if not for want of
	// input (the client closed during the upgrade): the socket ends with it.
	ended error
}

// tlsOf returns the tls.Conn and tlsSocket of a socket accepted by
// ListenTLS.
func tlsOf(nc net.Conn) (*tls.Conn, *tlsSocket, bool) {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil, nil, false
	}
	s, ok := tc.NetConn().(*tlsSocket)
	return tc, s, ok
}

// takeTLS moves an upgraded TLS socket off crypto/tls: it checks that the
// record layer can carry on (TLS 1.3, both directions followed), drains
// what crypto/tls holds (pending and the records it read, in order), and
// builds the record layer's state. It reports false, with nothing
// consumed, if the socket must stay with crypto/tls.
func takeTLS(tc *tls.Conn, s *tlsSocket, pending []byte) (*tlsLink, []byte, error) {
	st := tc.ConnectionState()
	suite, ok := suiteOf(st.CipherSuite)
	if st.Version != tls.VersionTLS13 || !ok || !s.rx.found || !s.tx.found ||
		s.rx.suite != st.CipherSuite || s.tx.suite != st.CipherSuite {
		return nil, nil, fmt.Errorf("TLS version %#x, suite %#x: traffic secrets not followed", st.Version, st.CipherSuite)
	}
	s.mu.Lock()
	cs, ss := s.clientSecret, s.serverSecret
	s.mu.Unlock()
	rx, err := newHalf(suite, cs, 0)
	if err != nil {
		return nil, nil, err
	}
	tx, err := newHalf(suite, ss, 0)
	if err != nil {
		return nil, nil, err
	}
	s.draining = true
	plain := pending
	bp := readBufs.Get().(*[]byte)
	t := &tlsLink{rc: recordConn{rx: rx, tx: tx}}
	for {
		n, err := tc.Read(*bp)
		plain = append(plain, (*bp)[:n]...)
		if err != nil {
			if !errors.Is(err, errWouldBlock) {
				t.ended = err
			}
			break
		}
	}
	readBufs.Put(bp)
	// Every complete record was handed over and read: the counts are the
	// next sequence numbers.
	rx.seq, tx.seq = s.rx.seq, s.tx.seq
	if s.ready < len(s.buf) {
		t.in = bytes.Clone(s.buf[s.ready:])
	}
	s.release()
	return t, plain, nil
}

// feed decrypts the records in data (after a partial one kept from the
// last read) and hands their content to c; false once c is closing.
func (t *tlsLink) feed(c *Conn, data []byte) bool {
	b := data
	if len(t.in) > 0 {
		t.in = append(t.in, data...)
		b = t.in
	}
	for {
		n, err := recordLen(b)
		if err == nil && (n == 0 || n > len(b)) {
			break
		}
		var p []byte
		var typ byte
		if err == nil {
			p, typ, err = t.rc.rx.open(b[:n])
		}
		if err == nil && typ != recordAppData {
			err = t.rc.handleControl(typ, p)
		}
		if err != nil {
			t.in = nil
			if errors.Is(err, errCloseNotify) {
				c.terminate(c.eofReason(), false)
			} else {
				c.terminate(CloseReason{Code: CloseAbnormal, Text: "tls error", Remote: true, Err: err}, false)
			}
			return false
		}
		b = b[n:]
		if typ == recordAppData && len(p) > 0 && !c.readFrom(p) {
			t.in = nil
			return false
		}
	}
	switch {
	case len(b) == 0:
		t.in = nil
	case len(t.in) > 0:
		t.in = t.in[:copy(t.in, b)]
	default:
		t.in = bytes.Clone(b)
	}
	return true
}

// write seals iov's frames into records, at most one record's worth at a
// time, and writes them without blocking; see epollLink.write. The caller
// holds fdmu shared.
func (t *tlsLink) write(c *Conn, fd int, iov [][]byte) (written int, blocked bool, err error) {
	if t.outOff < len(t.out) {
		if blocked, err := t.flushOut(c, fd); blocked || err != nil {
			return 0, blocked, err
		}
		written, iov = t.plain, skipBytes(iov, t.plain)
	}
	for len(iov) > 0 {
		n, k := len(iov[0]), 1
		for k < len(iov) && n+len(iov[k]) <= maxPlaintext {
			n += len(iov[k])
			k++
		}
		if t.out == nil {
			t.out = (*tlsBufs.Get().(*[]byte))[:0]
		}
		if t.out, err = t.rc.sealTx(t.out[:0], iov[:k]...); err != nil {
			return written, false, err
		}
		t.outOff, t.plain = 0, n
		iov = iov[k:]
		if blocked, err := t.flushOut(c, fd); blocked || err != nil {
			return written, blocked, err
		}
		written += n
	}
	return written, false, nil
}

// flushOut writes out until done (releasing the buffer) or EAGAIN.
func (t *tlsLink) flushOut(c *Conn, fd int) (blocked bool, err error) {
	for t.outOff < len(t.out) {
		n, err := unix.Write(fd, t.out[t.outOff:])
		c.srv.writes.Add(1)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return true, nil
		case err != nil:
			return false, err
		}
		t.outOff += n
	}
	t.releaseOut()
	return false, nil
}

func (t *tlsLink) releaseOut() {
	if t.out != nil && cap(t.out) == tlsReadAhead {
		b := t.out[:cap(t.out)]
		tlsBufs.Put(&b)
	}
	t.out, t.outOff, t.plain = nil, 0, 0
}

// closeWith writes what is left of out, then closeFrame and a
// close_notify alert, without blocking; the caller holds fdmu exclusively.
func (t *tlsLink) closeWith(fd int, closeFrame []byte) {
	defer t.releaseOut()
	if rest := t.out[t.outOff:]; len(rest) > 0 {
		if n, err := unix.Write(fd, rest); err != nil || n < len(rest) {
			return // stopped inside a record: nothing more can follow
		}
	}
	rec, err := t.rc.sealTx(nil, closeFrame)
	if err != nil {
		return
	}
	rec = t.rc.tx.seal(rec, []byte{1, alertCloseNotify}, recordAlert)
	_, _ = unix.Write(fd, rec)
}

// skipBytes drops the first n bytes of iov.
func skipBytes(iov [][]byte, n int) [][]byte {
	for n > 0 && len(iov) > 0 {
		if n < len(iov[0]) {
			iov[0] = iov[0][n:]
			return iov
		}
		n -= len(iov[0])
		iov = iov[1:]
	}
	return iov
}
