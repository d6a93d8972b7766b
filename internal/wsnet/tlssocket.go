package wsnet

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"net"
	"sync"
	"syscall"
)

// tlsSocket is the net.Conn under a server-side tls.Conn (see ListenTLS).
// While crypto/tls runs the handshake and HTTP requests it passes bytes
// through, with two additions that let the epoll backend take the socket
// over after a WebSocket upgrade (tls_linux.go):
//
//   - it hands crypto/tls whole records only (it reads ahead into a pooled
//     buffer, released when empty), so at the switch crypto/tls holds no
//     partial record: what it holds can be drained, and a partial record
//     stays here for the record layer;
//   - it learns the TLS 1.3 traffic secrets (as tls.Config.KeyLogWriter)
//     and counts the application-data records each way, finding the first
//     one by trial decryption with the new secret, because the records of
//     the handshake look the same on the wire.
type tlsSocket struct {
	net.Conn // the TCP socket

	// Read side: one Read at a time (crypto/tls holds its input lock).
	buf      []byte // read ahead: [off:ready) complete records, [ready:) a partial one
	off      int
	ready    int
	draining bool // at the switch: no socket reads, errWouldBlock when empty
	rx       seqTrack

	// Write side: one Write at a time (crypto/tls holds its output lock).
	txHdr  [recordHeaderLen]byte
	txHdrN int
	txLeft int    // body bytes of the current record still to come
	txRec  []byte // the current record, while the first one is sought
	tx     seqTrack

	mu           sync.Mutex // guards the secrets (set by KeyLogWriter)
	clientSecret []byte
	serverSecret []byte
}

// seqTrack counts the application-data records of one direction.
type seqTrack struct {
	found bool   // the first record under the traffic secret was seen
	seq   uint64 // records under it so far
	suite uint16 // the suite its trial decryption succeeded with
}

// tlsReadAhead holds any record (TLS 1.2 allows 2^14+2048 bytes of body).
const tlsReadAhead = 20 << 10

var tlsBufs = sync.Pool{New: func() any { b := make([]byte, tlsReadAhead); return &b }}

// errWouldBlock is what a tlsSocket returns to crypto/tls when it has
// nothing to hand without waiting: a temporary net.Error, which crypto/tls
// does not keep as the connection's error.
var errWouldBlock = &wouldBlock{}

type wouldBlock struct{}

func (*wouldBlock) Error() string   { return "wsnet: no complete TLS record buffered" }
func (*wouldBlock) Timeout() bool   { return true }
func (*wouldBlock) Temporary() bool { return true }

// Read hands crypto/tls the complete records read ahead, reading the
// socket only when there are none.
func (s *tlsSocket) Read(p []byte) (int, error) {
	for s.off == s.ready {
		if s.draining {
			return 0, errWouldBlock
		}
		if s.buf == nil {
			s.buf = (*tlsBufs.Get().(*[]byte))[:0]
		}
		n, err := s.Conn.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		s.scan()
		if s.off == s.ready {
			if len(s.buf) == cap(s.buf) {
				s.ready = len(s.buf) // longer than any valid record: crypto/tls refuses it
				break
			}
			if err != nil {
				if len(s.buf) == 0 {
					s.release()
				}
				return 0, err // a partial record stays (a deadline may have ended the read)
			}
		}
	}
	n := copy(p, s.buf[s.off:s.ready])
	s.off += n
	if s.off == s.ready {
		s.compact()
	}
	return n, nil
}

// scan advances ready past the complete records read, counting them.
func (s *tlsSocket) scan() {
	for {
		b := s.buf[s.ready:]
		if len(b) < recordHeaderLen {
			return
		}
		n := recordHeaderLen + int(binary.BigEndian.Uint16(b[3:5]))
		if n > len(b) {
			return
		}
		s.track(&s.rx, b[:n], false)
		s.ready += n
	}
}

// compact keeps only the partial record, or releases the buffer.
func (s *tlsSocket) compact() {
	rest := copy(s.buf, s.buf[s.ready:])
	s.buf, s.off, s.ready = s.buf[:rest], 0, 0
	if rest == 0 {
		s.release()
	}
}

func (s *tlsSocket) release() {
	if s.buf != nil {
		b := s.buf[:cap(s.buf)]
		tlsBufs.Put(&b)
		s.buf, s.off, s.ready = nil, 0, 0
	}
}

// Write passes p on, counting the records crypto/tls writes.
func (s *tlsSocket) Write(p []byte) (int, error) {
	q := p
	for len(q) > 0 {
		if s.txLeft == 0 {
			k := copy(s.txHdr[s.txHdrN:], q)
			s.txHdrN += k
			q = q[k:]
			if s.txHdrN < recordHeaderLen {
				break
			}
			s.txHdrN = 0
			s.txLeft = int(binary.BigEndian.Uint16(s.txHdr[3:5]))
			if s.txHdr[0] == recordAppData && !s.tx.found {
				s.txRec = append(s.txRec[:0], s.txHdr[:]...)
			} else {
				s.track(&s.tx, s.txHdr[:], true)
			}
		}
		k := min(len(q), s.txLeft)
		if s.txRec != nil {
			s.txRec = append(s.txRec, q[:k]...)
		}
		s.txLeft -= k
		q = q[k:]
		if s.txLeft == 0 && s.txRec != nil {
			s.track(&s.tx, s.txRec, true)
			s.txRec = nil
		}
	}
	return s.Conn.Write(p)
}

// track counts one record: once the first application record of its
// direction is known, every encrypted record is one more; before that, an
// encrypted record is tried against the direction's traffic secret (only
// the record is needed, or its header once found).
func (s *tlsSocket) track(t *seqTrack, rec []byte, server bool) {
	if rec[0] != recordAppData {
		return
	}
	if t.found {
		t.seq++
		return
	}
	s.mu.Lock()
	secret := s.clientSecret
	if server {
		secret = s.serverSecret
	}
	s.mu.Unlock()
	if secret == nil {
		return // a record of the handshake: its secret is not logged yet
	}
	for _, id := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256, tls.TLS_AES_256_GCM_SHA384} {
		suite, _ := suiteOf(id)
		if suite.hash().Size() != len(secret) {
			continue
		}
		h, err := newHalf(suite, secret, 0)
		if err != nil {
			continue
		}
		if _, _, err := h.open(bytes.Clone(rec)); err == nil {
			t.found, t.seq, t.suite = true, 1, id
			return
		}
	}
}

// KeyLogWriter's side: crypto/tls logs the TLS 1.3 traffic secrets as they
// are derived, before the first record under them is written or read.
func (s *tlsSocket) logKey(line []byte) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return
	}
	secret, err := hex.AppendDecode(nil, f[2])
	if err != nil {
		return
	}
	s.mu.Lock()
	switch string(f[0]) {
	case "CLIENT_TRAFFIC_SECRET_0":
		s.clientSecret = secret
	case "SERVER_TRAFFIC_SECRET_0":
		s.serverSecret = secret
	}
	s.mu.Unlock()
}

// keyLog adapts logKey to io.Writer without giving tlsSocket a second
// Write method.
type keyLog struct{ s *tlsSocket }

func (k keyLog) Write(p []byte) (int, error) { k.s.logKey(p); return len(p), nil }

// SyscallConn exposes the TCP socket (the stream backend parks on it).
func (s *tlsSocket) SyscallConn() (syscall.RawConn, error) {
	sc, ok := s.Conn.(syscall.Conn)
	if !ok {
		return nil, syscall.EINVAL
	}
	return sc.SyscallConn()
}

// tlsListener wraps each accepted socket in a tlsSocket.
type tlsListener struct{ net.Listener }

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsSocket{Conn: c}, nil
}

// withKeyLog returns cfg made to give each tlsSocket its own traffic
// secrets: a per-handshake copy of the config whose KeyLogWriter is the
// socket (session tickets keep the original config's keys).
func withKeyLog(cfg *tls.Config) *tls.Config {
	base := cfg.Clone()
	base.GetConfigForClient = nil
	out := cfg.Clone()
	inner := cfg.GetConfigForClient
	out.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base
		if inner != nil {
			ic, err := inner(hi)
			if err != nil {
				return nil, err
			}
			if ic != nil {
				c = ic
			}
		}
		s, ok := hi.Conn.(*tlsSocket)
		if !ok {
			return c, nil
		}
		c = c.Clone()
		c.KeyLogWriter = keyLog{s}
		return c, nil
	}
	return out
}
