package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/wsnet"
	"github.com/multijuego/multijuego/match"
)

// The realtime gateway: GET /v1/realtime upgrades to a WebSocket on the
// wsnet transport (no goroutine per socket). The access token is checked
// before the upgrade completes (Authorization: Bearer; or, for browsers,
// which cannot set headers, the multijuego.bearer.<token> subprotocol or a
// single-use ticket from POST /v1/realtime/tickets), and the Origin against
// an allow-list. Control messages are JSON envelopes in text frames; match
// data travels in binary frames. See docs/protocol.md.
//
// # Goroutines
//
// wsnet calls OnMessage and OnClose on its reader goroutines, a few for all
// sockets (and OnClose also on whichever goroutine tears a socket down).
// Nothing that can wait runs there: a binary input is a non-blocking push
// to the match's queue, and an echo is answered at once; every other
// control message, and the Disconnect of a closed socket, goes to the
// control pool (realtime_control.go), whose workers wait on matches and on
// the key-value store for at most Config.ControlTimeout.
//
// # Lock order
//
// A lock on the left may be held while taking one on its right, never the
// other way:
//
//	wsnet Conn.cb -> { realtime.mu | session.mu | controlPool.mu } -> wsnet Conn.mu -> wsnet Conn.fdmu
//
//   - Conn.cb (wsnet, per socket) is held while OnMessage or OnClose runs.
//   - realtime.mu (the byAccount map), session.mu (the socket's match) and
//     controlPool.mu (the ready list and every session's pending work) are
//     each held alone, briefly, and never while calling the engine, the
//     key-value store or wsnet, except Send, which takes Conn.mu -> fdmu
//     (and then wsnet's work-queue lock) and never blocks.
//   - wsnet Server.mu (its set of sockets) and the readers' locks are
//     wsnet's own and taken with none of the gateway's held.
//   - Conn.Close may run OnClose of that socket, so under its Conn.cb: it is
//     never called with a gateway lock held, nor from OnMessage or OnClose
//     of the same socket.

// Engine is the match engine as the realtime gateway uses it.
type Engine interface {
	Matches
	Join(ctx context.Context, id string, p match.Presence, meta map[string]string) error
	Leave(ctx context.Context, id string, p match.Presence) error
	Disconnect(ctx context.Context, id string, p match.Presence) error
	Input(id string, p match.Presence, op match.OpCode, data []byte) error
	End(ctx context.Context, id, reason string) error
}

// Tickets is what the realtime gateway needs from the key-value store.
type Tickets interface {
	Get(ctx context.Context, key string) (kv.Item, error)
	PutIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error)
	CompareAndSet(ctx context.Context, key string, value []byte, ttl time.Duration, expect uint64) (uint64, error)
}

// Subprotocols (Sec-WebSocket-Protocol). A client offering Subprotocol gets
// it selected; a browser passes its access token as a second offer,
// BearerSubprotocolPrefix + token, which is never selected (never echoed).
const (
	Subprotocol             = "multijuego.v1"
	BearerSubprotocolPrefix = "multijuego.bearer."
)

// Close codes the realtime gateway uses besides the RFC 6455 ones.
const (
	CloseReplaced = 4001 // a newer socket of the same account took over, on this gateway or another
	CloseRevoked  = 4002 // the token was revoked (realtime_sessions.go)
)

// session is one authenticated socket.
type session struct {
	id    string
	p     *auth.Principal
	conn  *wsnet.Conn
	since time.Time   // when the socket opened
	name  string      // the account's username, for other players' screens
	ip    string      // the client's address (per-IP limits)
	slot  *socketSlot // its place among the gateway's sockets, nil in tests that build sessions by hand
	mu    sync.Mutex
	match string // the match this socket plays in, "" when none
	// joining is the match a join of this socket is under way in: the
	// match's frames reach the player as soon as the engine seats it,
	// before the join's answer, and a client may answer them with inputs.
	joining string

	// bucket limits its text messages; only OnMessage touches it
	// (realtime_limits.go).
	bucket controlBucket

	// Control work waiting for the pool, guarded by controlPool.mu.
	ctl          []controlJob
	ctlScheduled bool // in the pool's ready list, or being run
}

func (s *session) presence() match.Presence {
	return match.Presence{UserID: s.p.AccountID, SessionID: s.id, Username: s.name, Conn: s}
}

func (s *session) currentMatch() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.match
}

// inputMatch is where the socket's inputs go: its match, or the one it is
// being seated in.
func (s *session) inputMatch() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.match != "" {
		return s.match
	}
	return s.joining
}

type realtime struct {
	gw      *Server
	engine  Engine
	tickets Tickets
	ws      *wsnet.Server
	ctl     *controlPool
	sweep   *sweeper // closes the sockets whose token ended
	limits  *socketLimits

	mu        sync.Mutex
	byAccount map[string]*session // under mu: the one socket of each account
	// sessions maps a session id to its *session. Reads (one per frame
	// sent) take no lock: sync.Map is a concurrent hash trie.
	sessions sync.Map
	seq      atomic.Uint64
}

func newRealtime(gw *Server, engine Engine, tickets Tickets, exemptLoopback bool) (*realtime, error) {
	rt := &realtime{gw: gw, engine: engine, tickets: tickets, byAccount: map[string]*session{},
		limits: newSocketLimits(gw.cfg, exemptLoopback, gw.reg)}
	ws, err := wsnet.NewServer(wsnet.Config{
		Authorize:      rt.authorize,
		MaxMessageSize: gw.cfg.MaxMessageBytes,
		SendQueueLen:   gw.cfg.SendQueue,
		PingInterval:   gw.cfg.PingInterval,
		Logger:         gw.log,
	}, rt)
	if err != nil {
		return nil, err
	}
	rt.ws = ws
	workers := gw.cfg.ControlWorkers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	rt.ctl = newControlPool(workers, gw.cfg.ControlQueue, rt.runControl, gw.reg)
	rt.sweep = startSweep(rt)
	return rt, nil
}

func (rt *realtime) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/realtime", rt.upgrade)
	mux.HandleFunc("POST /v1/realtime/tickets", rt.gw.authenticated(rt.ticket))
}

// --- wsnet.Handler ------------------------------------------------------------

func (rt *realtime) OnOpen(c *wsnet.Conn) {
	s := c.Data().(*session)
	s.conn = c
	if s.slot != nil {
		s.slot.opened.Store(true)
	}
	rt.mu.Lock()
	old := rt.byAccount[s.p.AccountID]
	rt.byAccount[s.p.AccountID] = s
	rt.mu.Unlock()
	rt.sessions.Store(s.id, s)
	if old != nil {
		old.conn.Close(CloseReplaced, "replaced by a newer connection")
	}
	if a, ok := rt.engine.(socketAnnouncer); ok {
		a.SocketOpened(s.p.AccountID, s.id, s.since)
	}
	rt.send(s, "session.started", "", map[string]string{"session_id": s.id, "account_id": s.p.AccountID})
}

// socketAnnouncer is the engine that tells the other gateways of a socket
// opened here (the router), so that an account keeps one socket across
// gateways: each closes its older one (Replace).
type socketAnnouncer interface {
	SocketOpened(account, session string, opened time.Time)
}

// Replace closes this gateway's socket of account if it opened before
// session, a socket of the same account another gateway opened at opened
// (4001, as for a newer socket here). Of two sockets opened at the same
// instant, the one with the greater session id stays.
func (rt *realtime) Replace(account, session string, opened time.Time) {
	rt.mu.Lock()
	cur := rt.byAccount[account]
	rt.mu.Unlock()
	if cur == nil || cur.id == session {
		return
	}
	if cur.since.After(opened) || cur.since.Equal(opened) && cur.id > session {
		return
	}
	cur.conn.Close(CloseReplaced, "replaced by a newer connection")
}

func (rt *realtime) OnClose(c *wsnet.Conn, _ wsnet.CloseReason) {
	s := c.Data().(*session)
	rt.mu.Lock()
	if rt.byAccount[s.p.AccountID] == s {
		delete(rt.byAccount, s.p.AccountID)
	}
	rt.mu.Unlock()
	rt.sessions.Delete(s.id)
	if s.slot != nil {
		rt.limits.release(s.slot)
	}
	rt.ctl.close(s) // the Disconnect, after the socket's pending messages
}

// disconnect tells the socket's match, if any, that the socket closed. The
// seat is kept for the disconnect grace; a new socket of the same account
// takes it back with match.join.
func (rt *realtime) disconnect(ctx context.Context, s *session) {
	m := s.currentMatch()
	if m == "" {
		return
	}
	if err := rt.engine.Disconnect(ctx, m, s.presence()); timedOut(err) {
		// Queued, it is still carried out; else the seat stays until the
		// match ends or the account joins again.
		rt.gw.log.Warn("realtime: disconnect timed out", "match", m, "session", s.id)
	}
}

// envelope is a control message, the JSON object of a text frame.
type envelope struct {
	Type    string          `json:"type"`
	CID     string          `json:"cid"`
	Payload json.RawMessage `json:"payload"` // nil if absent
}

// maxCIDLen is the longest correlation id, in bytes.
const maxCIDLen = 64

// decodeEnvelope parses a text message with the strict rules of DecodeJSON
// (one object, no unknown fields, no trailing data) and checks the cid.
// Every error it returns is an *errcode.Error.
func decodeEnvelope(b []byte) (envelope, error) {
	var env envelope
	if err := DecodeJSON(b, &env); err != nil {
		return envelope{}, err
	}
	if len(env.CID) > maxCIDLen {
		return envelope{}, errcode.Field("cid", "cid must be at most %d characters.", maxCIDLen)
	}
	return env, nil
}

func (rt *realtime) OnMessage(c *wsnet.Conn, op wsnet.OpCode, payload []byte) {
	s := c.Data().(*session)
	if op == wsnet.OpBinary {
		rt.input(s, payload)
		return
	}
	env, err := decodeEnvelope(payload)
	if !rt.controlAllowed(s, env.CID) {
		return
	}
	if err != nil {
		rt.fail(s, "", err)
		return
	}
	if env.Type == "echo" {
		// The payload goes back as it came: no decoding, no marshalling.
		s.conn.Send(envelopeFrame("echo", env.CID, env.Payload))
		return
	}
	// Everything else may wait on a match or the key-value store: not here.
	if err := rt.ctl.submit(s, env); err != nil {
		rt.fail(s, env.CID, err)
	}
}

// runControl carries out one job of the control pool, within
// Config.ControlTimeout.
func (rt *realtime) runControl(s *session, job controlJob) {
	ctx, cancel := context.WithTimeout(context.Background(), rt.gw.cfg.ControlTimeout)
	defer cancel()
	if job.close {
		rt.disconnect(ctx, s)
		return
	}
	rt.control(ctx, s, job.env)
}

// control carries out a control message, on a worker of the control pool.
func (rt *realtime) control(ctx context.Context, s *session, env envelope) {
	switch env.Type {
	case "match.create":
		var req struct {
			Mode   string            `json:"mode"`
			Params map[string]string `json:"params"`
		}
		if !rt.decodePayload(s, env.CID, env.Payload, &req) {
			return
		}
		id, err := rt.gw.createMatchFor(ctx, s.p.AccountID, s.ip, req.Mode, match.Params(req.Params))
		if err != nil {
			// A timeout: a game node may still create it; nobody joins,
			// so it ends empty after game.empty_timeout.
			rt.fail(s, env.CID, err)
			return
		}
		rt.send(s, "match.created", env.CID, matchResponse(rt.gw.created(id, req.Mode)))
	case "match.list":
		var req struct {
			Mode  string `json:"mode"`
			Label string `json:"label"`
		}
		if !rt.decodePayload(s, env.CID, env.Payload, &req) {
			return
		}
		list := rt.engine.List(match.Filter{Mode: req.Mode, Label: req.Label, OpenOnly: true, Limit: 100})
		out := make([]MatchResponse, 0, len(list))
		for _, i := range list {
			out = append(out, matchResponse(i))
		}
		rt.send(s, "match.list", env.CID, map[string]any{"matches": out})
	case "match.join":
		var req struct {
			MatchID string            `json:"match_id"`
			Meta    map[string]string `json:"meta"`
		}
		if !rt.decodePayload(s, env.CID, env.Payload, &req) {
			return
		}
		rt.join(ctx, s, env.CID, req.MatchID, req.Meta)
	case "match.resume":
		var req struct {
			ResumeToken string `json:"resume_token"`
		}
		if !rt.decodePayload(s, env.CID, env.Payload, &req) {
			return
		}
		id, err := rt.resumeMatch(ctx, s, req.ResumeToken)
		if err != nil {
			rt.fail(s, env.CID, err)
			return
		}
		rt.join(ctx, s, env.CID, id, nil)
	case "match.leave":
		m := s.currentMatch()
		if m == "" {
			rt.fail(s, env.CID, errcode.New(errcode.Conflict, "You are not in a match."))
			return
		}
		if err := rt.engine.Leave(ctx, m, s.presence()); timedOut(err) {
			// The socket keeps its match: if the leave was queued, it is
			// carried out and match.closed (left) says so.
			rt.fail(s, env.CID, errTimeout)
			return
		}
		s.mu.Lock()
		s.match = ""
		s.mu.Unlock()
		rt.send(s, "match.left", env.CID, map[string]string{"match_id": m})
	default:
		rt.fail(s, env.CID, errcode.Field("type", "Unknown message type %q.", env.Type))
	}
}

// join seats the socket's player in a match (or gives the seat back within
// the grace period) and answers with a resume token for the next socket.
func (rt *realtime) join(ctx context.Context, s *session, cid, id string, meta map[string]string) {
	if cur := s.currentMatch(); cur != "" && cur != id {
		rt.fail(s, cid, errcode.New(errcode.Conflict, "Leave your current match first."))
		return
	}
	s.mu.Lock()
	s.joining = id
	s.mu.Unlock()
	err := rt.engine.Join(ctx, id, s.presence(), meta)
	s.mu.Lock()
	s.joining = ""
	if err == nil {
		s.match = id
	}
	s.mu.Unlock()
	if err != nil {
		if !timedOut(err) {
			rt.fail(s, cid, joinError(err))
			return
		}
		rt.fail(s, cid, errJoinTimeout)
		rt.abandonJoin(id, s)
		return
	}
	token := "mjs_" + newRequestID() + newRequestID()
	claims, _ := json.Marshal(map[string]string{"account_id": s.p.AccountID, "match_id": id})
	if _, err := rt.tickets.PutIfAbsent(ctx, resumeKey(token), claims, rt.gw.cfg.ResumeTTL); err != nil {
		rt.gw.log.Warn("store resume token", "err", err, "session", s.id)
		token = "" // the player can still rejoin by match id
	}
	rt.send(s, "match.joined", cid, map[string]string{"match_id": id, "resume_token": token})
}

// abandonJoin follows a join that timed out: it may have been queued, and
// then seats the player later, in a seat no socket plays. A Disconnect
// queued behind it makes that seat a dropped one, freed after the
// disconnect grace (or taken back by the player's next match.join); if the
// join never lands, the Disconnect finds no seat. The socket's next
// control message waits for this, so a retried join comes after it.
func (rt *realtime) abandonJoin(id string, s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), rt.gw.cfg.ControlTimeout)
	defer cancel()
	if err := rt.engine.Disconnect(ctx, id, s.presence()); timedOut(err) {
		rt.gw.log.Warn("realtime: disconnect after a timed-out join timed out too", "match", id, "session", s.id)
	}
}

func resumeKey(t string) string {
	sum := sha256.Sum256([]byte(t))
	return "realtime:resume:" + hex.EncodeToString(sum[:])
}

var errResume = &errcode.Error{Code: errcode.NotFound, Field: "resume_token", Message: "The resume token is unknown or expired."}

// errResumeStore: resume tokens live in the shared key-value store, which
// does not answer (the seat itself is in the match: a join by match id
// takes it back).
var errResumeStore = &errcode.Error{Code: errcode.Unavailable, RetryAfter: 2 * time.Second,
	Message: "Resume tokens cannot be checked now; try again shortly, or join the match by its id (match.join)."}

// resumeMatch returns the match a resume token names; it is only good for
// the account it was issued to.
func (rt *realtime) resumeMatch(ctx context.Context, s *session, token string) (string, error) {
	if !strings.HasPrefix(token, "mjs_") || len(token) > 128 {
		return "", errResume
	}
	it, err := rt.tickets.Get(ctx, resumeKey(token))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return "", errResume
	case timedOut(err):
		return "", errTimeout
	case errors.Is(err, context.Canceled):
		return "", err
	case err != nil:
		return "", errResumeStore
	}
	var c struct {
		AccountID string `json:"account_id"`
		MatchID   string `json:"match_id"`
	}
	if json.Unmarshal(it.Value, &c) != nil || c.AccountID != s.p.AccountID {
		return "", errResume
	}
	return c.MatchID, nil
}

func (rt *realtime) decodePayload(s *session, cid string, raw json.RawMessage, dst any) bool {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	if err := DecodeJSON(raw, dst); err != nil {
		rt.fail(s, cid, err)
		return false
	}
	return true
}

func joinError(err error) error {
	var rej *match.RejectedError
	switch {
	case errors.As(err, &rej):
		return errcode.New(errcode.PermissionDenied, "The match refused you: %s", rej.Reason)
	case errors.Is(err, match.ErrMatchFull):
		return errcode.New(errcode.Conflict, "The match is full.")
	}
	return matchError(err)
}

// splitInput splits a binary message into its op code (uint16,
// little-endian) and the game's payload; ok is false if it is shorter than
// an op code.
func splitInput(frame []byte) (op match.OpCode, payload []byte, ok bool) {
	if len(frame) < 2 {
		return 0, nil, false
	}
	return match.OpCode(binary.LittleEndian.Uint16(frame)), frame[2:], true
}

// input forwards a binary frame to the socket's match: op code (uint16 LE)
// then the game's payload.
func (rt *realtime) input(s *session, frame []byte) {
	m := s.inputMatch()
	op, data, ok := splitInput(frame)
	switch {
	case !ok:
		rt.fail(s, "", errcode.New(errcode.Invalid, "A binary frame is an op code (2 bytes, little-endian) and a payload."))
		return
	case m == "":
		rt.fail(s, "", errcode.New(errcode.Conflict, "Join a match before sending inputs."))
		return
	}
	rt.inputResult(s, op, rt.engine.Input(m, s.presence(), op, data))
}

// inputResult answers a refused input, here or when a remote game node
// reports it (InputRefused).
func (rt *realtime) inputResult(s *session, op match.OpCode, err error) {
	switch {
	case err == nil:
	case errors.Is(err, match.ErrRateLimited), errors.Is(err, match.ErrQueueFull):
		// The engine warns and, if it goes on, kicks; answering every
		// dropped input would only add to the flood. (Unknown op codes
		// count against the rate limit too, so their answers stop when
		// the flood starts.)
	default:
		rt.fail(s, "", inputError(err, op))
	}
}

// close shuts the transport down (all sockets get 1001), then the control
// pool once it has carried out what was queued (the closes included).
func (rt *realtime) close() error {
	rt.sweep.close()
	err := rt.ws.Close()
	rt.ctl.stop()
	return err
}
