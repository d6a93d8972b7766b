package wsnet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// The TLS 1.3 record layer (RFC 8446, section 5) that serves a wss:// socket
// once its handshake is done, so that the socket can live on the epoll
// backend like a plain one: crypto/tls runs the handshake and the HTTP
// upgrade, then hands over its traffic secrets (through KeyLogWriter) and
// the record sequence numbers (counted by tlsSocket), and the tls.Conn, its
// buffers and its goroutine are dropped. Only application data, alerts and
// KeyUpdate are possible after the handshake on a server that asks for no
// client certificate; anything else ends the connection.

const (
	recordHeaderLen  = 5
	maxPlaintext     = 1 << 14
	maxCiphertext    = maxPlaintext + 256 // RFC 8446 5.2
	recordAppData    = 23
	recordAlert      = 21
	recordHandshake  = 22
	recordCCS        = 20
	handshakeKeyUpd  = 24
	alertCloseNotify = 0
)

var (
	errRecordOverflow = errors.New("tls: record too large")
	errRecordType     = errors.New("tls: unexpected record type after the handshake")
	errRecordMAC      = errors.New("tls: record failed authentication")
	errAlert          = errors.New("tls: alert from peer")
	errCloseNotify    = errors.New("tls: close_notify from peer")
)

// tlsSuite is what a TLS 1.3 cipher suite needs here.
type tlsSuite struct {
	keyLen int
	hash   func() hash.Hash
	aead   func(key []byte) (cipher.AEAD, error)
}

func aesGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// suiteOf returns the parameters of a TLS 1.3 suite; false for any other.
func suiteOf(id uint16) (tlsSuite, bool) {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256:
		return tlsSuite{16, sha256.New, aesGCM}, true
	case tls.TLS_AES_256_GCM_SHA384:
		return tlsSuite{32, sha512.New384, aesGCM}, true
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return tlsSuite{chacha20poly1305.KeySize, sha256.New, chacha20poly1305.New}, true
	}
	return tlsSuite{}, false
}

// expandLabel is HKDF-Expand-Label (RFC 8446 7.1) with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0) // context length
	return hkdf.Expand(h, secret, string(info), n)
}

// halfConn is one direction's protection: its traffic secret (kept for
// KeyUpdate), AEAD, IV and sequence number.
type halfConn struct {
	suite  tlsSuite
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
}

func newHalf(s tlsSuite, secret []byte, seq uint64) (*halfConn, error) {
	h := &halfConn{suite: s, seq: seq}
	return h, h.setSecret(secret)
}

func (h *halfConn) setSecret(secret []byte) error {
	key, err := expandLabel(h.suite.hash, secret, "key", h.suite.keyLen)
	if err != nil {
		return err
	}
	iv, err := expandLabel(h.suite.hash, secret, "iv", 12)
	if err != nil {
		return err
	}
	a, err := h.suite.aead(key)
	if err != nil {
		return err
	}
	h.secret, h.aead = secret, a
	copy(h.iv[:], iv)
	return nil
}

// update moves to the next traffic secret (KeyUpdate, RFC 8446 7.2).
func (h *halfConn) update() error {
	next, err := expandLabel(h.suite.hash, h.secret, "traffic upd", len(h.secret))
	if err != nil {
		return err
	}
	h.seq = 0
	return h.setSecret(next)
}

func (h *halfConn) nonce() [12]byte {
	n := h.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], h.seq)
	for i := range s {
		n[4+i] ^= s[i]
	}
	return n
}

// seal appends one record carrying payload (at most maxPlaintext bytes) of
// inner content type typ to dst.
func (h *halfConn) seal(dst, payload []byte, typ byte) []byte {
	return h.sealParts(dst, [][]byte{payload}, typ)
}

// sealParts appends one record carrying the parts (at most maxPlaintext
// bytes in all) to dst; the parts are copied once, into the record.
func (h *halfConn) sealParts(dst []byte, parts [][]byte, typ byte) []byte {
	n := 1 + h.aead.Overhead()
	for _, p := range parts {
		n += len(p)
	}
	dst = append(dst, recordAppData, 3, 3, byte(n>>8), byte(n))
	hdr := len(dst) - recordHeaderLen
	for _, p := range parts {
		dst = append(dst, p...)
	}
	dst = append(dst, typ)
	nonce := h.nonce()
	h.seq++
	body := dst[hdr+recordHeaderLen:]
	return h.aead.Seal(dst[:hdr+recordHeaderLen], nonce[:], body, dst[hdr:hdr+recordHeaderLen])
}

// sealAll appends records carrying all of p to dst.
func (h *halfConn) sealAll(dst, p []byte) []byte {
	for len(p) > 0 {
		n := min(len(p), maxPlaintext)
		dst = h.seal(dst, p[:n], recordAppData)
		p = p[n:]
	}
	return dst
}

// recordLen returns the length of the record at the start of b (header
// included), or 0 if its header is not all there.
func recordLen(b []byte) (int, error) {
	if len(b) < recordHeaderLen {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint16(b[3:5]))
	if n > maxCiphertext {
		return 0, errRecordOverflow
	}
	return recordHeaderLen + n, nil
}

// open decrypts the whole record rec in place and returns its content and
// inner type.
func (h *halfConn) open(rec []byte) ([]byte, byte, error) {
	if rec[0] != recordAppData {
		return nil, 0, fmt.Errorf("%w (%d)", errRecordType, rec[0])
	}
	nonce := h.nonce()
	p, err := h.aead.Open(rec[recordHeaderLen:recordHeaderLen], nonce[:], rec[recordHeaderLen:], rec[:recordHeaderLen])
	if err != nil {
		return nil, 0, errRecordMAC
	}
	h.seq++
	i := len(p) - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, 0, errRecordType // no content type: all padding
	}
	if i > maxPlaintext {
		return nil, 0, errRecordOverflow
	}
	return p[:i], p[i], nil
}

// recordConn is a TLS 1.3 connection after its handshake: both directions'
// state and the control records (alerts, KeyUpdate) the peer may send.
type recordConn struct {
	rx, tx *halfConn
	// updateTx is set (by the reader) when the peer asked for a KeyUpdate
	// in return: the writer sends one before its next record.
	updateTx atomic.Bool
}

// handleControl acts on a non-application record's content: alerts end the
// connection (close_notify cleanly), KeyUpdate moves rx to its next secret.
func (r *recordConn) handleControl(typ byte, p []byte) error {
	switch typ {
	case recordAlert:
		if len(p) == 2 && p[1] == alertCloseNotify {
			return errCloseNotify
		}
		return errAlert
	case recordHandshake:
		// Exactly one KeyUpdate message (type, 3-byte length 1, request).
		if len(p) != 5 || p[0] != handshakeKeyUpd || p[1] != 0 || p[2] != 0 || p[3] != 1 || p[4] > 1 {
			return fmt.Errorf("%w (handshake message after the handshake)", errRecordType)
		}
		if p[4] == 1 {
			r.updateTx.Store(true)
		}
		return r.rx.update()
	}
	return fmt.Errorf("%w (inner %d)", errRecordType, typ)
}

// keyUpdateMsg is a KeyUpdate that requests nothing in return.
var keyUpdateMsg = []byte{handshakeKeyUpd, 0, 0, 1, 0}

// sealTx appends parts to dst in records (one record if they fit in one),
// preceded by a KeyUpdate (and the switch to the next tx secret) if the
// peer asked for one.
func (r *recordConn) sealTx(dst []byte, parts ...[]byte) ([]byte, error) {
	if r.updateTx.CompareAndSwap(true, false) {
		dst = r.tx.seal(dst, keyUpdateMsg, recordHandshake)
		if err := r.tx.update(); err != nil {
			return dst, err
		}
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > maxPlaintext {
		for _, p := range parts {
			dst = r.tx.sealAll(dst, p)
		}
		return dst, nil
	}
	return r.tx.sealParts(dst, parts, recordAppData), nil
}
