package bots

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/multijuego/multijuego/client"
)

// loginPath is the request of the login storm.
const loginPath = "/v1/auth/device"

// loginTimeout bounds one login, as the SDK client's HTTP timeout does the
// game modes' logins.
const loginTimeout = 30 * time.Second

// loginConn is one storm client's keep-alive HTTP/1.1 connection to its
// server: it sends the login as the SDK's Client.Device does (POST, JSON
// body, the same headers but Accept-Encoding: gzip, which it could not
// read) and reads the answer with parseAnswer into buffers it reuses: a
// login is a write and a read on the caller's goroutine, and allocates
// nothing. A 2xx must carry a token pair (checkTokenPair). After any
// failure the connection is closed and the next login dials a new one.
// Not safe for concurrent use.
type loginConn struct {
	t     target
	url   string      // the login's URL, in errors as net/http words them
	c     net.Conn    // nil until dialled, and after a failure
	stop  func() bool // unregisters c's deadline on the context's end
	armed time.Time   // when the deadline was last set, loginTimeout before it
	req   []byte
	in    []byte // answer bytes read
}

func newLoginConn(t target, base string) *loginConn {
	lc := &loginConn{t: t, url: base + loginPath, in: make([]byte, 0, 4<<10)}
	lc.req = append(lc.req, "POST "+loginPath+" HTTP/1.1\r\nHost: "+t.host+
		"\r\nUser-Agent: Go-http-client/1.1\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: "...)
	return lc
}

// close closes the connection, if any.
func (lc *loginConn) close() {
	if lc.c != nil {
		lc.stop()
		closeConn(lc.c)
		lc.c = nil
	}
}

// login logs the device of body (a JSON object, {"device_id": ...}) in;
// now is the time the caller took for its latency. Success is a 2xx (200,
// or 201 for a new account) with a token pair. A failure is what the
// SDK's Device returns for it: a *client.APIError for an error answer,
// the transport's failure wrapped in a *url.Error.
func (lc *loginConn) login(ctx context.Context, body []byte, now time.Time) error {
	a, err := lc.roundTrip(ctx, body, now)
	if err != nil {
		lc.close()
		return &url.Error{Op: "Post", URL: lc.url, Err: err}
	}
	if a.close {
		lc.close()
	}
	if a.status/100 != 2 {
		return answerError(a)
	}
	if err := checkTokenPair(a.body); err != nil {
		return fmt.Errorf("multijuego: POST %s: %w", loginPath, err)
	}
	return nil
}

// roundTrip sends the request and reads its answer.
func (lc *loginConn) roundTrip(ctx context.Context, body []byte, now time.Time) (httpAnswer, error) {
	if lc.c == nil {
		if err := lc.dial(ctx); err != nil {
			return httpAnswer{}, err
		}
		lc.armed = time.Time{}
	}
	// The deadline moves once a second, not per login: a login may take
	// up to a second less than loginTimeout.
	if now.Sub(lc.armed) > time.Second {
		if err := lc.c.SetDeadline(now.Add(loginTimeout)); err != nil {
			return httpAnswer{}, err
		}
		lc.armed = now
		if err := ctx.Err(); err != nil { // cancelled before the deadline moved
			return httpAnswer{}, err
		}
	}
	head := len(lc.req)
	lc.req = strconv.AppendInt(lc.req, int64(len(body)), 10)
	lc.req = append(lc.req, "\r\n\r\n"...)
	lc.req = append(lc.req, body...)
	_, err := lc.c.Write(lc.req)
	lc.req = lc.req[:head]
	if err != nil {
		return httpAnswer{}, err
	}
	lc.in = lc.in[:0]
	for {
		if len(lc.in) >= maxAnswer {
			return httpAnswer{}, fmt.Errorf("answer over %d bytes", maxAnswer)
		}
		if len(lc.in) == cap(lc.in) {
			lc.in = slices.Grow(lc.in, len(lc.in))
		}
		n, rerr := lc.c.Read(lc.in[len(lc.in):min(cap(lc.in), maxAnswer)])
		lc.in = lc.in[:len(lc.in)+n]
		eof := errors.Is(rerr, io.EOF)
		if rerr != nil && !eof {
			return httpAnswer{}, rerr
		}
		a, size, err := parseAnswer(lc.in, eof)
		switch {
		case err != nil:
			return httpAnswer{}, err
		case size > 0 && size < len(lc.in):
			return httpAnswer{}, fmt.Errorf("%w: %d bytes after the answer", errAnswer, len(lc.in)-size)
		case size > 0:
			a.close = a.close || eof
			return a, nil
		case eof:
			return httpAnswer{}, io.ErrUnexpectedEOF
		}
	}
}

// dial connects, over TLS for https://; cancelling ctx interrupts the
// connection's reads and writes.
func (lc *loginConn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: loginTimeout}
	c, err := d.DialContext(ctx, "tcp", lc.t.addr.String())
	if err != nil {
		return err
	}
	if lc.t.tls != nil {
		tc := tls.Client(c, lc.t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return err
		}
		c = tc
	}
	lc.c = c
	lc.stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// answerError is the SDK's error for an answer other than a 2xx: the
// server's error body, or the status alone.
func answerError(a httpAnswer) error {
	return client.NewAPIError(a.status, time.Duration(a.retryAfter)*time.Second, a.body)
}
