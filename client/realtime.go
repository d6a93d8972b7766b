package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// Frame is one match message from the server (see docs/protocol.md).
type Frame struct {
	Op      uint16
	Tick    uint64
	MatchID string
	Payload []byte
}

// Event is a server message that answers no request: "match.closed",
// "session.started", or an "error" without a correlation id.
type Event struct {
	Type    string
	Payload json.RawMessage
}

// Realtime is an open realtime socket. Its methods are safe for concurrent
// use. Frames and Events deliver what the server sends; both channels are
// bounded (256), and when the application does not keep up the newest
// message is dropped and counted in Dropped, so a slow application never
// makes the server see a slow socket.
type Realtime struct {
	nc     net.Conn
	br     *bufio.Reader
	wmu    sync.Mutex
	seq    atomic.Uint64
	frames chan Frame
	events chan Event

	mu      sync.Mutex
	pending map[string]chan envelope
	err     error // why the socket ended

	done    chan struct{}
	Dropped atomic.Int64
}

type envelope struct {
	Type    string          `json:"type"`
	CID     string          `json:"cid"`
	Payload json.RawMessage `json:"payload"`
}

// Connect opens a realtime socket for the session (with a single-use
// ticket, so the access token never travels in the URL).
func (c *Client) Connect(ctx context.Context) (*Realtime, error) {
	var t struct {
		Ticket string `json:"ticket"`
	}
	if err := c.authed(ctx, "POST", "/v1/realtime/tickets", nil, &t); err != nil {
		return nil, err
	}
	u := *c.base
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path += "/v1/realtime"
	u.RawQuery = "ticket=" + t.Ticket
	nc, br, _, err := ws.Dialer{Timeout: 10 * time.Second}.Dial(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("multijuego: realtime: %w", err)
	}
	r := &Realtime{nc: nc, br: br, frames: make(chan Frame, 256), events: make(chan Event, 256),
		pending: map[string]chan envelope{}, done: make(chan struct{})}
	go r.read()
	return r, nil
}

// Frames delivers match frames; it is closed when the socket ends.
func (r *Realtime) Frames() <-chan Frame { return r.frames }

// Events delivers server messages that answer no request; it is closed when
// the socket ends.
func (r *Realtime) Events() <-chan Event { return r.events }

// Done is closed when the socket has ended; Err then says why.
func (r *Realtime) Done() <-chan struct{} { return r.done }

// Close codes the server ends a socket with (docs/protocol.md#close-codes).
const (
	CloseReplaced     = 4001 // a newer socket of the account took over
	CloseRevoked      = 4002 // logout, password change or role removal: log in again
	CloseKicked       = 4003 // an operator's kick or ban: do not reconnect on your own
	CloseTokenExpired = 4004 // the access token expired: Connect again (it refreshes) and resume
)

// CloseCode returns the code of the close frame the server ended the
// socket with (see the Close constants; 1008 for a slow consumer), or 0
// while it is open or when it ended without one.
func (r *Realtime) CloseCode() int {
	var ce wsutil.ClosedError
	if err := r.Err(); errors.As(err, &ce) {
		return int(ce.Code)
	}
	return 0
}

// Err returns why the socket ended (nil while open).
func (r *Realtime) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close closes the socket.
func (r *Realtime) Close() error {
	r.wmu.Lock()
	_ = wsutil.WriteClientMessage(r.nc, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	r.wmu.Unlock()
	err := r.nc.Close()
	<-r.done
	return err
}

// wire is the socket as the WebSocket reader sees it: reads through the
// handshake's buffer first; writes (pongs) under the write lock.
type wire struct{ r *Realtime }

func (w wire) Read(p []byte) (int, error) {
	if w.r.br != nil && w.r.br.Buffered() > 0 {
		return w.r.br.Read(p)
	}
	return w.r.nc.Read(p)
}

func (w wire) Write(p []byte) (int, error) {
	w.r.wmu.Lock()
	defer w.r.wmu.Unlock()
	return w.r.nc.Write(p)
}

// read is the socket's one reader goroutine; it ends with the socket.
func (r *Realtime) read() {
	var err error
	defer func() {
		r.mu.Lock()
		r.err = err
		for cid, ch := range r.pending {
			close(ch)
			delete(r.pending, cid)
		}
		r.mu.Unlock()
		close(r.frames)
		close(r.events)
		close(r.done)
	}()
	for {
		var data []byte
		var op ws.OpCode
		data, op, err = wsutil.ReadServerData(wire{r})
		if err != nil {
			return
		}
		if op == ws.OpBinary {
			f, ok := parseFrame(data)
			if !ok {
				continue
			}
			select {
			case r.frames <- f:
			default:
				r.Dropped.Add(1)
			}
			continue
		}
		var e envelope
		if json.Unmarshal(data, &e) != nil {
			continue
		}
		if e.CID != "" {
			r.mu.Lock()
			ch := r.pending[e.CID]
			delete(r.pending, e.CID)
			r.mu.Unlock()
			if ch != nil {
				ch <- e
				continue
			}
		}
		select {
		case r.events <- Event{Type: e.Type, Payload: e.Payload}:
		default:
			r.Dropped.Add(1)
		}
	}
}

func parseFrame(b []byte) (Frame, bool) {
	if len(b) < 12 || b[0] != 0x01 || len(b) < 12+int(b[11]) {
		return Frame{}, false
	}
	n := int(b[11])
	return Frame{Op: binary.LittleEndian.Uint16(b[1:]), Tick: binary.LittleEndian.Uint64(b[3:]),
		MatchID: string(b[12 : 12+n]), Payload: append([]byte(nil), b[12+n:]...)}, true
}

// request sends an envelope and waits for its answer.
func (r *Realtime) request(ctx context.Context, typ string, payload, out any) error {
	cid := strconv.FormatUint(r.seq.Add(1), 10)
	ch := make(chan envelope, 1)
	r.mu.Lock()
	if r.err != nil || isDone(r.done) {
		r.mu.Unlock()
		return errors.New("multijuego: realtime socket closed")
	}
	r.pending[cid] = ch
	r.mu.Unlock()
	b, err := json.Marshal(map[string]any{"type": typ, "cid": cid, "payload": payload})
	if err != nil {
		return err
	}
	r.wmu.Lock()
	err = wsutil.WriteClientText(r.nc, b)
	r.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case e, ok := <-ch:
		if !ok {
			return errors.New("multijuego: realtime socket closed")
		}
		if e.Type == "error" {
			var d struct{ Code, Message, Field string }
			_ = json.Unmarshal(e.Payload, &d)
			return &APIError{Code: d.Code, Message: d.Message, Field: d.Field}
		}
		if out != nil {
			return json.Unmarshal(e.Payload, out)
		}
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.pending, cid)
		r.mu.Unlock()
		return ctx.Err()
	}
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// CreateMatch starts a match over the socket.
func (r *Realtime) CreateMatch(ctx context.Context, mode string, params map[string]string) (Match, error) {
	var m Match
	err := r.request(ctx, "match.create", map[string]any{"mode": mode, "params": params}, &m)
	return m, err
}

// ListMatches lists open matches over the socket.
func (r *Realtime) ListMatches(ctx context.Context, mode, label string) ([]Match, error) {
	var out struct {
		Matches []Match `json:"matches"`
	}
	err := r.request(ctx, "match.list", map[string]string{"mode": mode, "label": label}, &out)
	return out.Matches, err
}

// Join takes a seat in a match and returns the resume token for a later
// socket.
func (r *Realtime) Join(ctx context.Context, matchID string) (resumeToken string, err error) {
	var out struct {
		ResumeToken string `json:"resume_token"`
	}
	err = r.request(ctx, "match.join", map[string]string{"match_id": matchID}, &out)
	return out.ResumeToken, err
}

// Resume takes the seat back on a new socket after a drop.
func (r *Realtime) Resume(ctx context.Context, resumeToken string) (matchID string, err error) {
	var out struct {
		MatchID string `json:"match_id"`
	}
	err = r.request(ctx, "match.resume", map[string]string{"resume_token": resumeToken}, &out)
	return out.MatchID, err
}

// Leave leaves the current match.
func (r *Realtime) Leave(ctx context.Context) error {
	return r.request(ctx, "match.leave", nil, nil)
}

// Send sends an input to the current match: op code and game payload, in
// one binary frame.
func (r *Realtime) Send(op uint16, payload []byte) error {
	b := make([]byte, 2, 2+len(payload))
	binary.LittleEndian.PutUint16(b, op)
	b = append(b, payload...)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return wsutil.WriteClientBinary(r.nc, b)
}
