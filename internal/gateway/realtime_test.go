package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/match"
)

// sock is a realtime client over a real socket.
type sock struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (s *sock) Read(p []byte) (int, error) {
	if s.br != nil && s.br.Buffered() > 0 {
		return s.br.Read(p)
	}
	return s.nc.Read(p)
}

func (s *sock) Write(p []byte) (int, error) { return s.nc.Write(p) }

func (e *env) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/realtime" + query
}

// dialWS opens a socket; a refused handshake returns its HTTP status.
func (e *env) dialWS(query string, hdr http.Header) (*sock, int, error) {
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(hdr), Timeout: 5 * time.Second}
	nc, br, _, err := d.Dial(context.Background(), e.wsURL(query))
	var se ws.StatusError
	if errors.As(err, &se) {
		return nil, int(se), err
	}
	if err != nil {
		return nil, 0, err
	}
	s := &sock{t: e.t, nc: nc, br: br}
	e.t.Cleanup(func() { nc.Close() })
	return s, 101, nil
}

func (e *env) ticket(token string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/realtime/tickets", token, "", nil)
	var body struct{ Ticket string }
	r.json(e.t, &body)
	if r.status != 201 || body.Ticket == "" {
		e.t.Fatalf("ticket: %d %s", r.status, r.body)
	}
	return body.Ticket
}

// connect logs a new account in and opens its socket with a ticket.
func (e *env) connect(name string) (*sock, string) {
	e.t.Helper()
	tr := e.register(name)
	s, status, err := e.dialWS("?ticket="+e.ticket(tr.AccessToken), nil)
	if err != nil {
		e.t.Fatalf("dial: %d %v", status, err)
	}
	if env := s.expect("session.started"); env.Payload["account_id"] != tr.AccountID {
		e.t.Fatalf("session.started = %+v", env)
	}
	return s, tr.AccountID
}

type envelope struct {
	Type    string         `json:"type"`
	CID     string         `json:"cid"`
	Payload map[string]any `json:"payload"`
}

func (s *sock) sendJSON(typ, cid string, payload any) {
	s.t.Helper()
	b, _ := json.Marshal(map[string]any{"type": typ, "cid": cid, "payload": payload})
	if err := wsutil.WriteClientText(s, b); err != nil {
		s.t.Fatal(err)
	}
}

// next reads the next message: a text envelope or a binary match frame.
func (s *sock) next() (envelope, []byte, error) {
	_ = s.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, op, err := wsutil.ReadServerData(s)
	if err != nil {
		return envelope{}, nil, err
	}
	if op == ws.OpBinary {
		return envelope{}, data, nil
	}
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		s.t.Fatalf("bad envelope %s: %v", data, err)
	}
	return e, nil, nil
}

// closeCode reads until the server's close frame and returns it as a
// wsutil.ClosedError. The server closes right after its close frame, so the
// reader's echo of it goes nowhere (else it could end as a broken pipe).
func (s *sock) closeCode() error {
	_ = s.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rw := struct {
		io.Reader
		io.Writer
	}{s, io.Discard}
	for {
		if _, _, err := wsutil.ReadServerData(rw); err != nil {
			return err
		}
	}
}

// expect skips match frames until an envelope of type typ.
func (s *sock) expect(typ string) envelope {
	s.t.Helper()
	for {
		e, bin, err := s.next()
		if err != nil {
			s.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if bin == nil {
			if e.Type != typ {
				s.t.Fatalf("got %s %v, want %s", e.Type, e.Payload, typ)
			}
			return e
		}
	}
}

// state reads tictactoe states until cond holds.
func (s *sock) stateUntil(cond func(tictactoe.State) bool) tictactoe.State {
	s.t.Helper()
	for {
		_, bin, err := s.next()
		if err != nil {
			s.t.Fatalf("waiting for a state: %v", err)
		}
		if bin == nil {
			continue
		}
		// kind, op u16, tick u64, id length, id, payload
		if len(bin) < 12 || bin[0] != match.FrameKind {
			s.t.Fatalf("bad frame % x", bin)
		}
		op := binary.LittleEndian.Uint16(bin[1:])
		payload := bin[12+int(bin[11]):]
		if match.OpCode(op) != tictactoe.OpState {
			continue
		}
		var st tictactoe.State
		if err := json.Unmarshal(payload, &st); err != nil {
			s.t.Fatal(err)
		}
		if cond(st) {
			return st
		}
	}
}

func (s *sock) move(cell byte) {
	s.t.Helper()
	frame := binary.LittleEndian.AppendUint16(nil, uint16(tictactoe.OpMove))
	if err := wsutil.WriteClientBinary(s, append(frame, cell)); err != nil {
		s.t.Fatal(err)
	}
}

// Two players over real sockets play tic-tac-toe to a win.
func TestRealtimeTicTacToe(t *testing.T) {
	e := newEnv(t)
	a, aid := e.connect("alice")
	b, _ := e.connect("bruno")
	a.sendJSON("match.create", "c1", map[string]any{"mode": "tictactoe"})
	created := a.expect("match.created")
	id, _ := created.Payload["match_id"].(string)
	if created.CID != "c1" || id == "" {
		t.Fatalf("created = %+v", created)
	}
	b.sendJSON("match.list", "l1", map[string]any{"mode": "tictactoe"})
	if l := b.expect("match.list"); len(l.Payload["matches"].([]any)) != 1 {
		t.Fatalf("list = %+v", l)
	}
	a.sendJSON("match.join", "j1", map[string]any{"match_id": id})
	a.expect("match.joined")
	b.sendJSON("match.join", "j2", map[string]any{"match_id": id})
	b.expect("match.joined")
	a.stateUntil(func(s tictactoe.State) bool { return s.Status == tictactoe.StatusPlaying })
	// X (the first to join) takes the top row.
	for i, cell := range []byte{0, 3, 1, 4, 2} {
		if i%2 == 0 {
			a.move(cell)
		} else {
			b.move(cell)
		}
		want := i + 1
		a.stateUntil(func(s tictactoe.State) bool { return s.Moves == want })
	}
	final := b.stateUntil(func(s tictactoe.State) bool { return s.Status == tictactoe.StatusWon })
	if final.Winner != aid || final.Board[:3] != "XXX" {
		t.Fatalf("final state = %+v", final)
	}
	if c := b.expect("match.closed"); c.Payload["match_id"] != id {
		t.Fatalf("closed = %+v", c)
	}
}

func TestRealtimeRefusals(t *testing.T) {
	e := newEnv(t)
	tr := e.register("carl")
	bearer := http.Header{"Authorization": {"Bearer " + tr.AccessToken}}
	for _, tc := range []struct {
		name   string
		query  string
		hdr    http.Header
		status int
	}{
		{"no credentials", "", nil, 401},
		{"garbage token", "", http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"basic auth", "", http.Header{"Authorization": {"Basic eDp5"}}, 401},
		{"unknown ticket", "?ticket=mjt_nope", nil, 401},
		{"foreign origin", "", http.Header{"Authorization": {"Bearer " + tr.AccessToken}, "Origin": {"https://evil.example"}}, 403},
	} {
		if _, status, _ := e.dialWS(tc.query, tc.hdr); status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, status, tc.status)
		}
	}
	// A ticket works once.
	tk := e.ticket(tr.AccessToken)
	if _, status, err := e.dialWS("?ticket="+tk, nil); status != 101 {
		t.Fatalf("first use of a ticket: %d %v", status, err)
	}
	if _, status, _ := e.dialWS("?ticket="+tk, nil); status != 401 {
		t.Fatalf("second use of a ticket: %d, want 401", status)
	}
	// Same-origin browsers are welcome.
	same := http.Header{"Authorization": {"Bearer " + tr.AccessToken}, "Origin": {e.srv.URL}}
	if _, status, err := e.dialWS("", same); status != 101 {
		t.Fatalf("same origin: %d %v", status, err)
	}
	// A revoked token cannot open a socket, nor can its unused ticket.
	tk2 := e.ticket(tr.AccessToken)
	if r := e.do("POST", "/v1/auth/logout", tr.AccessToken, "", nil); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	if _, status, _ := e.dialWS("", bearer); status != 401 {
		t.Fatalf("revoked token: %d, want 401", status)
	}
	if _, status, _ := e.dialWS("?ticket="+tk2, nil); status != 401 {
		t.Fatalf("ticket of a revoked token: %d, want 401", status)
	}
}

func TestRealtimeBadMessages(t *testing.T) {
	e := newEnv(t)
	s, _ := e.connect("dora")
	for _, tc := range []struct {
		name, msg string
		code      string
		field     string
	}{
		{"malformed JSON", `{"type":`, "invalid_argument", ""},
		{"unknown field", `{"type":"match.list","extra":1}`, "invalid_argument", "extra"},
		{"unknown type", `{"type":"match.explode"}`, "invalid_argument", "type"},
		{"wrong payload type", `{"type":"match.join","payload":{"match_id":7}}`, "invalid_argument", "match_id"},
		{"join a missing match", `{"type":"match.join","payload":{"match_id":"nope"}}`, "not_found", ""},
		{"leave without a match", `{"type":"match.leave"}`, "conflict", ""},
	} {
		if err := wsutil.WriteClientText(s, []byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		got := s.expect("error")
		if got.Payload["code"] != tc.code || (tc.field != "" && got.Payload["field"] != tc.field) {
			t.Errorf("%s: error %v, want code %s field %q", tc.name, got.Payload, tc.code, tc.field)
		}
	}
	// An input before joining a match.
	s.move(0)
	if got := s.expect("error"); got.Payload["code"] != "conflict" {
		t.Errorf("input without a match: %v", got.Payload)
	}
	// An oversized message closes the socket with 1009; others are unaffected.
	other, _ := e.connect("emil")
	if err := wsutil.WriteClientText(s, []byte(`{"type":"match.list","cid":"`+strings.Repeat("x", 5000)+`"}`)); err != nil {
		t.Fatal(err)
	}
	err := s.closeCode()
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig {
		t.Fatalf("oversized message: %v, want close 1009", err)
	}
	other.sendJSON("match.list", "", map[string]any{})
	other.expect("match.list")
}

// A second socket of the same account replaces the first.
func TestRealtimeSingleSocketPerAccount(t *testing.T) {
	e := newEnv(t)
	tr := e.register("fay")
	first, _, err := e.dialWS("?ticket="+e.ticket(tr.AccessToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	first.expect("session.started")
	second, _, err := e.dialWS("?ticket="+e.ticket(tr.AccessToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	second.expect("session.started")
	err = first.closeCode()
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("first socket: %v, want close 4001", err)
	}
	second.sendJSON("match.list", "", map[string]any{})
	second.expect("match.list")
}

// announcer is the engine with the router's SocketOpened: it records the
// sockets the gateway tells the other gateways of.
type announcer struct {
	gateway.Engine
	mu     sync.Mutex
	opened []string // "account session"
}

func (a *announcer) SocketOpened(account, session string, _ time.Time) {
	a.mu.Lock()
	a.opened = append(a.opened, account+" "+session)
	a.mu.Unlock()
}

// One socket per account across gateways: the gateway tells the others of
// each socket it opens, and closes its own with 4001 when another gateway
// opened a newer one of the account (not an older one).
func TestRealtimeReplacedOnAnotherGateway(t *testing.T) {
	an := &announcer{}
	e := newEnvWith(t, func(d *gateway.Deps) { an.Engine = d.Matches; d.Matches = an })
	s, account := e.connect("gil")
	an.mu.Lock()
	opened := slices.Clone(an.opened)
	an.mu.Unlock()
	if len(opened) != 1 || !strings.HasPrefix(opened[0], account+" ") {
		t.Fatalf("sockets announced: %q, want one of account %s", opened, account)
	}
	rt := e.gw.Realtime()
	rt.Replace(account, "other/s1", time.Now().Add(-time.Hour)) // older: stays
	rt.Replace("someone-else", "other/s2", time.Now().Add(time.Hour))
	s.sendJSON("match.list", "", map[string]any{})
	s.expect("match.list")
	rt.Replace(account, "other/s3", time.Now().Add(time.Second))
	var ce wsutil.ClosedError
	if err := s.closeCode(); !errors.As(err, &ce) || ce.Code != gateway.CloseReplaced {
		t.Fatalf("socket after a newer one elsewhere: %v, want close %d", err, gateway.CloseReplaced)
	}
}

// A player whose socket drops takes the seat back from a new socket within
// the grace period and plays on.
func TestRealtimeReconnect(t *testing.T) {
	e := newEnv(t)
	atr := e.register("gus")
	a, _, err := e.dialWS("?ticket="+e.ticket(atr.AccessToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.expect("session.started")
	b, _ := e.connect("hana")
	a.sendJSON("match.create", "", map[string]any{"mode": "tictactoe"})
	id := a.expect("match.created").Payload["match_id"].(string)
	a.sendJSON("match.join", "", map[string]any{"match_id": id})
	resume, _ := a.expect("match.joined").Payload["resume_token"].(string)
	if resume == "" {
		t.Fatal("no resume token")
	}
	b.sendJSON("match.join", "", map[string]any{"match_id": id})
	b.expect("match.joined")
	a.move(0)
	b.stateUntil(func(s tictactoe.State) bool { return s.Moves == 1 })

	// Another account cannot use the token.
	b.sendJSON("match.resume", "x", map[string]any{"resume_token": resume})
	if got := b.expect("error"); got.Payload["code"] != "not_found" || got.Payload["field"] != "resume_token" {
		t.Fatalf("someone else's resume token: %v", got.Payload)
	}

	a.nc.Close() // the connection drops
	a2, _, err := e.dialWS("?ticket="+e.ticket(atr.AccessToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	a2.expect("session.started")
	a2.sendJSON("match.resume", "r1", map[string]any{"resume_token": resume})
	// The answer and the current state (the game sends it to a returning
	// player at once) arrive in either order.
	joined, stated := false, false
	for !joined || !stated {
		env, bin, err := a2.next()
		if err != nil {
			t.Fatalf("after resume: %v", err)
		}
		switch {
		case bin != nil:
			payload := bin[12+int(bin[11]):]
			if match.OpCode(binary.LittleEndian.Uint16(bin[1:])) == tictactoe.OpState && bytes.Contains(payload, []byte(`"moves":1`)) {
				stated = true
			}
		case env.Type == "match.joined":
			if env.CID != "r1" || env.Payload["match_id"] != id {
				t.Fatalf("resume = %+v", env)
			}
			joined = true
		default:
			t.Fatalf("unexpected %+v", env)
		}
	}
	b.move(4)
	a2.stateUntil(func(s tictactoe.State) bool { return s.Moves == 2 && s.Board[0] == 'X' && s.Board[4] == 'O' })
	a2.move(8)
	b.stateUntil(func(s tictactoe.State) bool { return s.Moves == 3 })
}

// A player whose socket drops and who does not come back within the grace
// period leaves the match: at tic-tac-toe that forfeits the game, and the
// resume token no longer gives a seat.
func TestRealtimeGraceExpires(t *testing.T) {
	testDisconnectGrace = 300 * time.Millisecond
	defer func() { testDisconnectGrace = 0 }()
	e := newEnv(t)
	atr := e.register("ines")
	a, _, err := e.dialWS("?ticket="+e.ticket(atr.AccessToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.expect("session.started")
	b, bID := e.connect("jon")
	a.sendJSON("match.create", "", map[string]any{"mode": "tictactoe"})
	id := a.expect("match.created").Payload["match_id"].(string)
	a.sendJSON("match.join", "", map[string]any{"match_id": id})
	resume, _ := a.expect("match.joined").Payload["resume_token"].(string)
	b.sendJSON("match.join", "", map[string]any{"match_id": id})
	b.expect("match.joined")
	a.move(0)
	b.stateUntil(func(s tictactoe.State) bool { return s.Moves == 1 })

	dropped := time.Now()
	a.nc.Close()
	st := b.stateUntil(func(s tictactoe.State) bool { return s.Status != tictactoe.StatusPlaying })
	if st.Status != tictactoe.StatusForfeit || st.Winner != bID {
		t.Fatalf("after the grace period: %+v, want a forfeit won by %s", st, bID)
	}
	if waited := time.Since(dropped); waited < 250*time.Millisecond {
		t.Fatalf("the seat was freed after %s, before the grace period", waited)
	}
	if got := b.expect("match.closed"); got.Payload["match_id"] != id || got.Payload["reason"] != "match_ended" {
		t.Fatalf("b: %+v", got)
	}

	a2, _, err := e.dialWS("?ticket="+e.ticket(atr.AccessToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	a2.expect("session.started")
	a2.sendJSON("match.resume", "r", map[string]any{"resume_token": resume})
	if got := a2.expect("error"); got.CID != "r" || got.Payload["code"] != "not_found" {
		t.Fatalf("resume after the grace period: %+v", got)
	}
}

// A flooding client is warned, then kicked from its match; the other player
// is unaffected and plays the arena match to its end.
func TestRealtimeFloodAndArenaEnd(t *testing.T) {
	e := newEnv(t)
	a, _ := e.connect("ivy")
	b, _ := e.connect("jon")
	a.sendJSON("match.create", "", map[string]any{"mode": "arena", "params": map[string]string{"time_limit": "10s"}})
	id := a.expect("match.created").Payload["match_id"].(string)
	a.sendJSON("match.join", "", map[string]any{"match_id": id})
	a.expect("match.joined")
	b.sendJSON("match.join", "", map[string]any{"match_id": id})
	b.expect("match.joined")

	// b floods: far more inputs than the per-player rate limit allows.
	for seq := uint32(1); seq <= 400; seq++ {
		in := binary.LittleEndian.AppendUint16(nil, 1) // arena OpInput
		in = binary.LittleEndian.AppendUint32(in, seq)
		in = append(in, 1, 0, 0, 0)
		if err := wsutil.WriteClientBinary(b, in); err != nil {
			break // kicked and closed mid-flood is fine
		}
	}
	warned, kicked := false, false
	for !kicked {
		env, bin, err := b.next()
		if err != nil {
			t.Fatalf("flooder: %v (warned=%v)", err, warned)
		}
		switch {
		case bin != nil:
			if binary.LittleEndian.Uint16(bin[1:]) == uint16(match.OpWarning) {
				warned = true
			}
		case env.Type == "match.closed":
			if env.Payload["reason"] != "rate_limited" {
				t.Fatalf("flooder closed with %v", env.Payload)
			}
			kicked = true
		}
	}
	if !warned {
		t.Error("kicked without a warning first")
	}
	// a plays on to the end of the match.
	deadline := time.Now().Add(20 * time.Second)
	frames := 0
	for {
		if time.Now().After(deadline) {
			t.Fatal("the arena match did not end")
		}
		env, bin, err := a.next()
		if err != nil {
			t.Fatal(err)
		}
		if bin != nil {
			frames++
			continue
		}
		if env.Type == "match.closed" {
			if env.Payload["reason"] != "match_ended" || frames == 0 {
				t.Fatalf("a closed with %v after %d frames", env.Payload, frames)
			}
			return
		}
	}
}

// Games see each player's username in the presence: arena's roster names
// both players.
func TestRealtimeRosterHasUsernames(t *testing.T) {
	e := newEnv(t)
	a, aid := e.connect("kim")
	b, bid := e.connect("lou")
	a.sendJSON("match.create", "", map[string]any{"mode": "arena"})
	id := a.expect("match.created").Payload["match_id"].(string)
	a.sendJSON("match.join", "", map[string]any{"match_id": id})
	a.expect("match.joined")
	b.sendJSON("match.join", "", map[string]any{"match_id": id})
	b.expect("match.joined")
	for {
		_, bin, err := a.next()
		if err != nil {
			t.Fatalf("waiting for a roster of two: %v", err)
		}
		if bin == nil || binary.LittleEndian.Uint16(bin[1:]) != uint16(arena.OpRoster) {
			continue
		}
		var r arena.Roster
		if err := json.Unmarshal(bin[12+int(bin[11]):], &r); err != nil {
			t.Fatalf("roster: %v", err)
		}
		if len(r.Players) < 2 {
			continue
		}
		names := map[string]string{}
		for _, p := range r.Players {
			names[p.UserID] = p.Username
		}
		if names[aid] != "kim" || names[bid] != "lou" {
			t.Fatalf("roster = %+v", r)
		}
		return
	}
}

// heldJoin is an engine whose Join, for one user, seats the player and
// then waits for release before it answers: the match's frames reach that
// player before the gateway's match.joined, as they may over the router.
type heldJoin struct {
	gateway.Engine
	user    string
	release chan struct{}
}

func (h heldJoin) Join(ctx context.Context, id string, p match.Presence, meta map[string]string) error {
	err := h.Engine.Join(ctx, id, p, meta)
	if p.Username == h.user {
		<-h.release
	}
	return err
}

// A player who answers the match's frames before its join's answer (the
// frames come as soon as the engine seats it) has its inputs taken, not
// refused with "Join a match before sending inputs" (the image test's bot
// met that once in CI).
func TestRealtimeInputBeforeJoinAnswer(t *testing.T) {
	release := make(chan struct{})
	e := newEnvWith(t, func(d *gateway.Deps) { d.Matches = heldJoin{Engine: d.Matches, user: "late", release: release} })
	x, _ := e.connect("early")
	o, _ := e.connect("late")
	x.sendJSON("match.create", "c", map[string]any{"mode": "tictactoe"})
	id, _ := x.expect("match.created").Payload["match_id"].(string)
	x.sendJSON("match.join", "j", map[string]any{"match_id": id})
	x.expect("match.joined")
	o.sendJSON("match.join", "j", map[string]any{"match_id": id})
	x.stateUntil(func(st tictactoe.State) bool { return st.Turn == "X" })
	x.move(4)
	o.stateUntil(func(st tictactoe.State) bool { return st.Moves == 1 })
	o.move(0) // before match.joined: the join is held
	for {
		env, bin, err := o.next()
		if err != nil {
			t.Fatalf("waiting for the second move's state: %v", err)
		}
		if bin == nil {
			t.Fatalf("got %s %v before the move's state, want the state", env.Type, env.Payload)
		}
		if len(bin) > 12 && match.OpCode(binary.LittleEndian.Uint16(bin[1:])) == tictactoe.OpState && strings.Contains(string(bin[12+int(bin[11]):]), `"moves":2`) {
			break
		}
	}
	close(release)
	o.expect("match.joined")
}
