package gateway_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/match"
)

// dialProto opens a socket offering subprotocols, as a browser does
// (new WebSocket(url, protocols)); it returns the selected subprotocol, or
// the HTTP status of a refused handshake.
func (e *env) dialProto(protocols []string, hdr http.Header) (*sock, string, int) {
	e.t.Helper()
	d := ws.Dialer{Protocols: protocols, Header: ws.HandshakeHeaderHTTP(hdr), Timeout: 5 * time.Second}
	nc, br, hs, err := d.Dial(context.Background(), e.wsURL(""))
	var se ws.StatusError
	if errors.As(err, &se) {
		return nil, "", int(se)
	}
	if err != nil {
		e.t.Fatalf("dial offering %q: %v", protocols, err)
	}
	e.t.Cleanup(func() { nc.Close() })
	return &sock{t: e.t, nc: nc, br: br}, hs.Protocol, 101
}

// The access token can travel as a subprotocol (browsers cannot set
// headers); the server selects multijuego.v1 and never echoes the token.
func TestRealtimeSubprotocolToken(t *testing.T) {
	e := newEnv(t)
	tr := e.register("kim")
	bearer := gateway.BearerSubprotocolPrefix + tr.AccessToken

	s, selected, status := e.dialProto([]string{gateway.Subprotocol, bearer}, nil)
	if status != 101 || selected != gateway.Subprotocol {
		t.Fatalf("subprotocol token: status %d, selected %q", status, selected)
	}
	if env := s.expect("session.started"); env.Payload["account_id"] != tr.AccountID {
		t.Fatalf("session.started = %+v", env)
	}
	s.sendJSON("match.list", "l", map[string]any{})
	s.expect("match.list")

	// The token in either position; and a browser's same-origin header.
	if _, selected, status := e.dialProto([]string{bearer, gateway.Subprotocol}, http.Header{"Origin": {e.srv.URL}}); status != 101 || selected != gateway.Subprotocol {
		t.Fatalf("token offered first: %d %q", status, selected)
	}
	// Other credentials may offer multijuego.v1 too, and get it; without
	// an offer nothing is selected.
	hdr := http.Header{"Authorization": {"Bearer " + tr.AccessToken}}
	if _, selected, status := e.dialProto([]string{gateway.Subprotocol}, hdr); status != 101 || selected != gateway.Subprotocol {
		t.Fatalf("Bearer header offering v1: %d %q", status, selected)
	}
	if _, selected, status := e.dialProto(nil, hdr); status != 101 || selected != "" {
		t.Fatalf("Bearer header, no offer: %d %q", status, selected)
	}
	if _, selected, status := e.dialProto([]string{"chat"}, hdr); status != 101 || selected != "" {
		t.Fatalf("Bearer header, foreign offer: %d %q", status, selected)
	}

	for _, tc := range []struct {
		name      string
		protocols []string
		hdr       http.Header
		status    int
	}{
		{"garbage token", []string{gateway.Subprotocol, gateway.BearerSubprotocolPrefix + "garbage"}, nil, 401},
		{"empty token", []string{gateway.Subprotocol, gateway.BearerSubprotocolPrefix}, nil, 401},
		{"tampered token", []string{gateway.Subprotocol, bearer + "x"}, nil, 401},
		{"v1 only", []string{gateway.Subprotocol}, nil, 401},
		{"token without v1", []string{bearer}, nil, 400},
		{"two tokens", []string{gateway.Subprotocol, bearer, bearer + "2"}, nil, 400},
		{"foreign origin", []string{gateway.Subprotocol, bearer}, http.Header{"Origin": {"https://evil.example"}}, 403},
		{"bad Authorization wins", []string{gateway.Subprotocol, bearer}, http.Header{"Authorization": {"Basic eDp5"}}, 401},
	} {
		if _, _, status := e.dialProto(tc.protocols, tc.hdr); status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, status, tc.status)
		}
	}

	// Logged out: the token is revoked and opens nothing any more.
	if r := e.do("POST", "/v1/auth/logout", tr.AccessToken, "", nil); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	if _, _, status := e.dialProto([]string{gateway.Subprotocol, bearer}, nil); status != 401 {
		t.Fatalf("revoked token via subprotocol: %d, want 401", status)
	}
}

// The 101 response names multijuego.v1 alone: the token offer is not
// echoed anywhere in it.
func TestRealtimeSubprotocolResponse(t *testing.T) {
	e := newEnv(t)
	tr := e.register("lou")
	req, err := http.NewRequest("GET", e.srv.URL+"/v1/realtime", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = http.Header{
		"Connection":             {"Upgrade"},
		"Upgrade":                {"websocket"},
		"Sec-Websocket-Version":  {"13"},
		"Sec-Websocket-Key":      {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Protocol": {gateway.Subprotocol + ", " + gateway.BearerSubprotocolPrefix + tr.AccessToken},
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := res.Header.Values("Sec-WebSocket-Protocol"); len(got) != 1 || got[0] != gateway.Subprotocol {
		t.Errorf("Sec-WebSocket-Protocol = %q, want [%s]", got, gateway.Subprotocol)
	}
	for k, vs := range res.Header {
		for _, v := range vs {
			if strings.Contains(v, tr.AccessToken) {
				t.Errorf("response header %s echoes the token", k)
			}
		}
	}
}

// arenaMatch makes an arena match with a seated player per name.
func arenaMatch(t *testing.T, e *env, names ...string) []*sock {
	t.Helper()
	var out []*sock
	for _, n := range names {
		s, _ := e.connect(n)
		out = append(out, s)
	}
	out[0].sendJSON("match.create", "", map[string]any{"mode": arena.Mode, "params": map[string]string{"time_limit": "30s"}})
	id := out[0].expect("match.created").Payload["match_id"].(string)
	for _, s := range out {
		s.sendJSON("match.join", "", map[string]any{"match_id": id})
		s.expect("match.joined")
	}
	return out
}

func (s *sock) input(op match.OpCode, payload []byte) error {
	return wsutil.WriteClientBinary(s, append(binary.LittleEndian.AppendUint16(nil, uint16(op)), payload...))
}

// states counts the arena states s receives until n arrived, skipping
// envelopes.
func (s *sock) states(n int) {
	s.t.Helper()
	for got := 0; got < n; {
		_, bin, err := s.next()
		if err != nil {
			s.t.Fatalf("waiting for states (%d of %d): %v", got, n, err)
		}
		if bin != nil && match.OpCode(binary.LittleEndian.Uint16(bin[1:])) == arena.OpState {
			got++
		}
	}
}

// match.create with a parameter the mode does not take is answered with
// invalid_argument naming it (with the request's cid); nothing is created
// and the socket goes on.
func TestRealtimeUnknownParams(t *testing.T) {
	e := newEnv(t)
	s, _ := e.connect("rhea")
	for _, tc := range []struct {
		mode   string
		params map[string]string
		param  string
	}{
		{arena.Mode, map[string]string{"players": "4"}, "players"},
		{arena.Mode, map[string]string{"max_players": "4", "duration": "90s"}, "duration"},
		{tictactoe.Mode, map[string]string{"time_limit": "30s"}, "time_limit"},
	} {
		s.sendJSON("match.create", "c-"+tc.param, map[string]any{"mode": tc.mode, "params": tc.params})
		got := s.expect("error")
		msg, _ := got.Payload["message"].(string)
		if got.CID != "c-"+tc.param || got.Payload["code"] != "invalid_argument" || got.Payload["field"] != "params" || !strings.Contains(msg, `"`+tc.param+`"`) {
			t.Errorf("%s %v: %+v", tc.mode, tc.params, got)
		}
	}
	s.sendJSON("match.list", "l", map[string]any{})
	if got := s.expect("match.list"); got.CID != "l" || len(got.Payload["matches"].([]any)) != 0 {
		t.Errorf("after refused creations: %+v", got)
	}
	// The documented parameters are taken.
	s.sendJSON("match.create", "ok", map[string]any{"mode": arena.Mode, "params": map[string]string{
		arena.ParamMaxPlayers: "4", arena.ParamMinPlayers: "3", arena.ParamTimeLimit: "90", arena.ParamTickRate: "30"}})
	if got := s.expect("match.created"); got.CID != "ok" || got.Payload["max_players"] != 4.0 || got.Payload["tick_rate"] != 30.0 {
		t.Errorf("create with every parameter: %+v", got)
	}
}

// The lifecycle docs/protocol.md section 5 describes: creating does not
// seat; the game's frames for a join come before match.joined; a leave is
// answered with match.closed (left), then match.left.
func TestRealtimeLifecycle(t *testing.T) {
	e := newEnv(t)
	s, me := e.connect("sol")
	s.sendJSON("match.create", "c", map[string]any{"mode": arena.Mode})
	created := s.expect("match.created")
	id, _ := created.Payload["match_id"].(string)
	if created.Payload["players"] != 0.0 || created.Payload["label"] != "waiting" {
		t.Fatalf("match.created: %+v", created.Payload)
	}
	s.sendJSON("match.join", "j", map[string]any{"match_id": id})
	env, bin, err := s.next()
	if err != nil || bin == nil || match.OpCode(binary.LittleEndian.Uint16(bin[1:])) != arena.OpRoster {
		t.Fatalf("first message after match.join: %+v %x %v, want the roster frame", env, bin, err)
	}
	var roster arena.Roster
	if err := json.Unmarshal(bin[12+int(bin[11]):], &roster); err != nil || len(roster.Players) != 1 || roster.Players[0].UserID != me {
		t.Fatalf("roster %+v %v", roster, err)
	}
	if got := s.expect("match.joined"); got.CID != "j" || got.Payload["match_id"] != id {
		t.Fatalf("match.joined: %+v", got)
	}
	s.sendJSON("match.leave", "l", nil)
	if got := s.expect("match.closed"); got.Payload["reason"] != "left" || got.Payload["match_id"] != id {
		t.Fatalf("match.closed: %+v", got)
	}
	if got := s.expect("match.left"); got.CID != "l" || got.Payload["match_id"] != id {
		t.Fatalf("match.left: %+v", got)
	}
}

// An input with an op code the game does not declare is answered with an
// error and dropped; the socket and the match go on.
func TestRealtimeUnknownOp(t *testing.T) {
	e := newEnv(t)
	socks := arenaMatch(t, e, "mia", "ned")
	a, b := socks[0], socks[1]
	if err := a.input(77, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	got := a.expect("error")
	msg, _ := got.Payload["message"].(string)
	if got.Payload["code"] != "invalid_argument" || got.Payload["field"] != "op" || got.CID != "" || !strings.Contains(msg, "op code 77") {
		t.Fatalf("unknown op: %+v", got)
	}
	// Reserved op codes are refused the same way.
	if err := a.input(match.OpWarning, nil); err != nil {
		t.Fatal(err)
	}
	if got := a.expect("error"); got.Payload["code"] != "invalid_argument" || got.Payload["field"] != "op" {
		t.Fatalf("reserved op: %+v", got)
	}
	// The other player still gets states, and a is still in the match.
	b.states(3)
	if err := a.input(arena.OpInput, arena.AppendInput(nil, arena.Input{Seq: 1, DX: 127})); err != nil {
		t.Fatal(err)
	}
	a.sendJSON("match.list", "l2", map[string]any{})
	a.expect("match.list")
	a.states(2)
}

// Unknown op codes count toward the rate limit: a client flooding them
// gets errors until the limit, then a warning, then is kicked; the other
// players play on.
func TestRealtimeUnknownOpFlood(t *testing.T) {
	e := newEnv(t)
	socks := arenaMatch(t, e, "ola", "pia", "quy")
	a, b := socks[0], socks[1]
	for range 400 {
		if err := b.input(0x4242, nil); err != nil {
			break // kicked and closed mid-flood is fine
		}
	}
	errs, warned, kicked := 0, false, false
	for !kicked {
		env, bin, err := b.next()
		if err != nil {
			t.Fatalf("flooder: %v (errors=%d warned=%v)", err, errs, warned)
		}
		switch {
		case bin != nil:
			if binary.LittleEndian.Uint16(bin[1:]) == uint16(match.OpWarning) {
				warned = true
			}
		case env.Type == "error":
			if env.Payload["field"] != "op" {
				t.Fatalf("flooder error %+v", env.Payload)
			}
			errs++
		case env.Type == "match.closed":
			if env.Payload["reason"] != "rate_limited" {
				t.Fatalf("flooder closed with %v", env.Payload)
			}
			kicked = true
		}
	}
	// The default limit: a burst of 60, 60 per second.
	if !warned || errs == 0 || errs > 120 {
		t.Errorf("warned=%v after %d unknown-op errors", warned, errs)
	}
	a.states(3)
}

// readText reads the next text message's raw bytes, skipping match frames.
func (s *sock) readText() []byte {
	s.t.Helper()
	for {
		_ = s.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		data, op, err := wsutil.ReadServerData(s)
		if err != nil {
			s.t.Fatalf("waiting for a text message: %v", err)
		}
		if op == ws.OpText {
			return data
		}
	}
}

func TestRealtimeEcho(t *testing.T) {
	e := newEnv(t, func(g *gateway.Config, _ *auth.Config) { g.MaxMessageBytes = 100_000 })
	s, _ := e.connect("quin")
	big := `"` + strings.Repeat("é", 35_000) + `"` // 70 002 bytes: the 8-byte length form
	for _, tc := range []struct {
		name, cid, payload string
	}{
		{"object", "1", `{"t":1712345678901,"nested":{"a":[1,2,{"b":null}]}}`},
		{"string", "", `"ping"`},
		{"number", "n", `-12.5e3`},
		{"array", "arr", `[true,false,null,"x"]`},
		{"null", "z", `null`},
		{"spaced", "sp", `{ "a" : [ 1 , 2 ] }`},
		{"escapes in cid", "q\"uo\\te\n\u0001é", `"<&>\u2028"`},
		{"medium", "m", `"` + strings.Repeat("x", 3000) + `"`},
		{"large", "l", big},
	} {
		msg := `{"type":"echo","cid":` + mustJSON(tc.cid) + `,"payload":` + tc.payload + `}`
		if err := wsutil.WriteClientText(s, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		raw := s.readText()
		var got struct {
			Type    string          `json:"type"`
			CID     *string         `json:"cid"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: reply is not JSON: %v: %.200s", tc.name, err, raw)
		}
		if got.Type != "echo" || got.CID == nil || *got.CID != tc.cid || string(got.Payload) != tc.payload {
			t.Errorf("%s: reply %.300s", tc.name, raw)
		}
	}
	// No payload: null comes back.
	if err := wsutil.WriteClientText(s, []byte(`{"type":"echo","cid":"np"}`)); err != nil {
		t.Fatal(err)
	}
	if raw := string(s.readText()); raw != `{"type":"echo","cid":"np","payload":null}` {
		t.Errorf("echo without payload: %s", raw)
	}
	// The envelope rules still hold.
	for _, tc := range []struct{ msg, field string }{
		{`{"type":"echo","cid":"` + strings.Repeat("c", 65) + `","payload":1}`, "cid"},
		{`{"type":"echo","payload":1,"extra":2}`, "extra"},
	} {
		if err := wsutil.WriteClientText(s, []byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		if got := s.expect("error"); got.Payload["code"] != "invalid_argument" || got.Payload["field"] != tc.field {
			t.Errorf("%.60s: %+v", tc.msg, got.Payload)
		}
	}
	if err := wsutil.WriteClientText(s, []byte(`{"type":"echo","payload":[1,}`)); err != nil {
		t.Fatal(err)
	}
	if got := s.expect("error"); got.Payload["code"] != "invalid_argument" {
		t.Errorf("malformed payload: %+v", got.Payload)
	}
	// The socket is still fine.
	s.sendJSON("match.list", "after", map[string]any{})
	if got := s.expect("match.list"); got.CID != "after" {
		t.Errorf("after echoes: %+v", got)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
