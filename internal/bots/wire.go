package bots

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// On Linux the bots speak plain WebSocket over raw non-blocking sockets
// served by a few epoll loops, not net.Conn: no goroutine, no bufio and no
// netpoller entry per player, so the tool stays cheap next to the server it
// measures (sock_linux.go). Over TLS (wss://), and on other platforms, each
// bot is a net.Conn with a reader goroutine (conn.go).

// WebSocket opcodes (RFC 6455).
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// appendFrame appends one masked client frame (FIN set).
func appendFrame(dst []byte, op byte, payload []byte, key uint32) []byte {
	dst = append(dst, 0x80|op)
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], key)
	dst = append(dst, k[:]...)
	for i, c := range payload {
		dst = append(dst, c^k[i&3])
	}
	return dst
}

var errProtocol = errors.New("bots: server broke the WebSocket framing")

// parseFrame reads one server frame from b: its header byte (FIN, opcode),
// payload and total size; n == 0 means b holds no whole frame yet.
func parseFrame(b []byte) (fin bool, op byte, payload []byte, n int, err error) {
	if len(b) < 2 {
		return false, 0, nil, 0, nil
	}
	if b[1]&0x80 != 0 {
		return false, 0, nil, 0, fmt.Errorf("%w: masked server frame", errProtocol)
	}
	hdr, l := 2, uint64(b[1]&0x7F)
	switch l {
	case 126:
		if len(b) < 4 {
			return false, 0, nil, 0, nil
		}
		hdr, l = 4, uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return false, 0, nil, 0, nil
		}
		hdr, l = 10, binary.BigEndian.Uint64(b[2:])
	}
	if l > 16<<20 {
		return false, 0, nil, 0, fmt.Errorf("%w: frame of %d bytes", errProtocol, l)
	}
	if uint64(len(b)-hdr) < l {
		return false, 0, nil, 0, nil
	}
	end := hdr + int(l)
	return b[0]&0x80 != 0, b[0] & 0x0F, b[hdr:end], end, nil
}

// target is where the bots connect.
type target struct {
	addr     netip.AddrPort
	host     string      // Host header
	tls      *tls.Config // https:// (wss:// sockets); nil for http://
	loopback bool
}

func parseTarget(rawURL string) (target, error) {
	u, err := parseHTTPURL(rawURL)
	if err != nil {
		return target{}, err
	}
	host, port := u.Hostname(), u.Port()
	var tc *tls.Config
	if u.Scheme == "https" {
		// The system roots verify the server, and on Linux SSL_CERT_FILE
		// (crypto/x509 reads it): a self-signed test certificate goes there.
		tc = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if port == "" {
		port = "80"
		if tc != nil {
			port = "443"
		}
	}
	ips, err := net.DefaultResolver.LookupNetIP(bgCtx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return target{}, fmt.Errorf("resolve %s: %v", host, err)
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(ips[0].Unmap().String(), port))
	if err != nil {
		return target{}, err
	}
	return target{addr: ap, host: u.Host, tls: tc, loopback: ap.Addr().IsLoopback()}, nil
}

// handshakeRequest is the upgrade request a bot sends, with a fresh key.
func handshakeRequest(t target, token string) []byte {
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	return []byte("GET /v1/realtime HTTP/1.1\r\nHost: " + t.host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
		base64.StdEncoding.EncodeToString(kb[:]) + "\r\nAuthorization: Bearer " + token + "\r\n\r\n")
}

// readHandshake reads the server's answer to handshakeRequest with read
// and returns the bytes the server sent after it.
func readHandshake(read func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 0, 1024)
	var end int
	for {
		if len(buf) == cap(buf) {
			return nil, errors.New("handshake answer too large")
		}
		n, err := read(buf[len(buf):cap(buf)])
		if err != nil {
			return nil, fmt.Errorf("read handshake: %w", err)
		}
		if n == 0 {
			return nil, errors.New("server closed during the handshake")
		}
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
			break
		}
	}
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf[:end])), nil)
	if err != nil {
		return nil, fmt.Errorf("handshake answer: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSwitchingProtocols {
		reason := strings.TrimSpace(string(buf[end:]))
		if len(reason) > 200 {
			reason = reason[:200]
		}
		return nil, fmt.Errorf("upgrade refused: %s %s", res.Status, reason)
	}
	return append([]byte(nil), buf[end:]...), nil
}
