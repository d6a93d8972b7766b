package gateway_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"github.com/nats-io/nats.go"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/internal/store"
)

// adminToken registers name, gives it the admin role and returns a token
// that carries it.
func (e *env) adminToken(name string) string {
	e.t.Helper()
	tr := e.register(name)
	p, err := e.auth.Authenticate(tr.AccessToken)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.auth.SetRoles(context.Background(), nil, p.AccountID, []string{auth.RolePlayer, auth.RoleAdmin}, auth.Meta{}); err != nil {
		e.t.Fatal(err)
	}
	var fresh gateway.TokenResponse
	e.post("/v1/auth/refresh", "", map[string]string{"refresh_token": tr.RefreshToken}).json(e.t, &fresh)
	return fresh.AccessToken
}

func wantCloseCode(t *testing.T, s *sock, code int) {
	t.Helper()
	err := s.closeCode()
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) || int(ce.Code) != code {
		t.Fatalf("socket ended with %v, want close %d", err, code)
	}
}

func TestAdminRoutesNeedAdmin(t *testing.T) {
	e := newEnv(t)
	player := e.register("plain").AccessToken
	routes := [][2]string{
		{"GET", "/v1/admin/matches"}, {"POST", "/v1/admin/matches/x/end"},
		{"GET", "/v1/admin/players/online"}, {"POST", "/v1/admin/players/x/kick"},
		{"GET", "/v1/admin/dlq"}, {"GET", "/v1/admin/dlq/1"}, {"POST", "/v1/admin/dlq/1/replay"}, {"POST", "/v1/admin/dlq/replay"},
	}
	for _, rt := range routes {
		if r := e.do(rt[0], rt[1], "", "", nil); r.status != 401 {
			t.Errorf("%s %s without a token: %d", rt[0], rt[1], r.status)
		}
		r := e.do(rt[0], rt[1], player, "", nil)
		if r.status != 403 || r.errBody(t).Code != "permission_denied" {
			t.Errorf("%s %s as a player: %d %s", rt[0], rt[1], r.status, r.body)
		}
	}
}

func TestAdminMatchesPlayersKickBan(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken("boss")
	a, aid := e.connect("anna")
	b, bid := e.connect("bert")
	a.sendJSON("match.create", "c1", map[string]any{"mode": "tictactoe"})
	id, _ := a.expect("match.created").Payload["match_id"].(string)
	a.sendJSON("match.join", "j1", map[string]any{"match_id": id})
	a.expect("match.joined")
	b.sendJSON("match.join", "j2", map[string]any{"match_id": id})
	b.expect("match.joined")

	var list struct {
		Matches []gateway.AdminMatchResponse `json:"matches"`
	}
	r := e.do("GET", "/v1/admin/matches", admin, "", nil)
	r.json(t, &list)
	if r.status != 200 || len(list.Matches) != 1 {
		t.Fatalf("admin matches: %d %s", r.status, r.body)
	}
	m := list.Matches[0]
	if m.MatchID != id || m.Mode != "tictactoe" || m.Node != "test-node" || len(m.PlayerIDs) != 2 || m.PlayerIDs[0] != aid || m.PlayerIDs[1] != bid {
		t.Fatalf("admin match = %+v", m)
	}
	// Tick time is measured once the match has ticked.
	deadline := time.Now().Add(3 * time.Second)
	for m.TickMs <= 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		e.do("GET", "/v1/admin/matches", admin, "", nil).json(t, &list)
		m = list.Matches[0]
	}
	if m.TickMs <= 0 {
		t.Fatalf("tick_ms stays %v", m.TickMs)
	}

	var online struct {
		Count   int
		Node    string
		Players []gateway.OnlinePlayer
	}
	r = e.do("GET", "/v1/admin/players/online", admin, "", nil)
	r.json(t, &online)
	inMatch := 0
	for _, p := range online.Players {
		if (p.AccountID == aid || p.AccountID == bid) && p.MatchID == id && !p.ConnectedAt.IsZero() {
			inMatch++
		}
	}
	if r.status != 200 || online.Count != 2 || inMatch != 2 {
		t.Fatalf("online: %d %s", r.status, r.body)
	}

	// Kick bert: his socket closes with 4003 and his seat is freed at once.
	if r := e.post("/v1/admin/players/"+bid+"/kick", admin, map[string]string{"reason": "spam"}); r.status != 204 {
		t.Fatalf("kick: %d %s", r.status, r.body)
	}
	wantCloseCode(t, b, gateway.CloseKicked)
	// A kick needs an existing account, not a socket on this node.
	if r := e.do("POST", "/v1/admin/players/no-such-account/kick", admin, "", nil); r.status != 404 {
		t.Fatalf("kick of an unknown account: %d %s", r.status, r.body)
	}
	// The game ends when a player leaves (forfeit), so start another match
	// for the end-match test.
	a.expect("match.closed")
	a.sendJSON("match.create", "c2", map[string]any{"mode": "tictactoe"})
	id2, _ := a.expect("match.created").Payload["match_id"].(string)
	a.sendJSON("match.join", "j3", map[string]any{"match_id": id2})
	a.expect("match.joined")
	if r := e.post("/v1/admin/matches/"+id2+"/end", admin, map[string]string{"reason": "maintenance"}); r.status != 204 {
		t.Fatalf("end match: %d %s", r.status, r.body)
	}
	if c := a.expect("match.closed"); c.Payload["match_id"] != id2 || c.Payload["reason"] != "ended_by_operator" {
		t.Fatalf("closed = %+v", c)
	}
	if r := e.do("POST", "/v1/admin/matches/"+id2+"/end", admin, "", nil); r.status != 404 {
		t.Fatalf("ending an ended match: %d %s", r.status, r.body)
	}
	if r := e.post("/v1/admin/matches/"+id2+"/end", admin, map[string]int{"reason": 3}); r.status != 400 {
		t.Fatalf("reason of the wrong type: %d %s", r.status, r.body)
	}

	// Banning anna closes her socket too, and the actions are audited.
	if r := e.post("/v1/admin/accounts/"+aid+"/ban", admin, map[string]string{"reason": "cheating"}); r.status != 200 {
		t.Fatalf("ban: %d %s", r.status, r.body)
	}
	wantCloseCode(t, a, gateway.CloseKicked)
	audit, err := e.st.Audit(context.Background(), store.AuditQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, ev := range audit {
		kinds[ev.Kind] = true
	}
	for _, k := range []string{"admin_kick", "admin_end_match", "ban"} {
		if !kinds[k] {
			t.Errorf("audit log lacks %s: %v", k, kinds)
		}
	}
}

func TestAdminDLQ(t *testing.T) {
	// Without an event queue in the process: 503, said plainly.
	e := newEnv(t)
	admin := e.adminToken("ops")
	for _, rt := range [][2]string{{"GET", "/v1/admin/dlq"}, {"GET", "/v1/admin/dlq/1"}, {"POST", "/v1/admin/dlq/1/replay"}, {"POST", "/v1/admin/dlq/replay"}} {
		if r := e.do(rt[0], rt[1], admin, "", nil); r.status != 503 || r.errBody(t).Code != "unavailable" {
			t.Fatalf("%s %s without a queue: %d %s", rt[0], rt[1], r.status, r.body)
		}
	}

	bus, err := events.Open(context.Background(), events.Config{DataDir: t.TempDir(), Prefix: eventstest.Prefix(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	e = newEnvWith(t, func(d *gateway.Deps) { d.DeadLetters = persist.NewDLQ(bus) })
	admin = e.adminToken("ops")
	// Two dead letters, as the persistence consumer writes them.
	for i, payload := range []string{`{"broken":`, `not json at all`} {
		m := &nats.Msg{Subject: bus.DLQSubject(persist.UnknownType), Data: []byte(payload), Header: nats.Header{}}
		m.Header.Set(persist.HeaderError, "decode: unexpected end of JSON input")
		m.Header.Set(persist.HeaderDeliveries, "1")
		m.Header.Set(persist.HeaderSubject, bus.Subject("match.ended"))
		m.Header.Set(persist.HeaderStreamSeq, strconv.Itoa(i+1))
		if _, err := bus.JetStream().PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	var list struct{ Messages []gateway.DeadLetterResponse }
	r := e.do("GET", "/v1/admin/dlq", admin, "", nil)
	r.json(t, &list)
	if r.status != 200 || len(list.Messages) != 2 || list.Messages[0].Error == "" || list.Messages[0].Payload != nil ||
		list.Messages[0].Subject != bus.Subject("match.ended") || list.Messages[0].Deliveries != 1 {
		t.Fatalf("dlq list: %d %s", r.status, r.body)
	}
	seq := strconv.FormatUint(list.Messages[0].Seq, 10)
	var one gateway.DeadLetterResponse
	r = e.do("GET", "/v1/admin/dlq/"+seq, admin, "", nil)
	r.json(t, &one)
	if r.status != 200 || one.Payload == nil || *one.Payload != `{"broken":` {
		t.Fatalf("dlq show: %d %s", r.status, r.body)
	}
	for _, bad := range []string{"0", "-1", "abc", "99999999999999999999999"} {
		if r := e.do("GET", "/v1/admin/dlq/"+bad, admin, "", nil); r.status != 400 || r.errBody(t).Field != "seq" {
			t.Errorf("dlq show %s: %d %s", bad, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/admin/dlq/4242", admin, "", nil); r.status != 404 {
		t.Fatalf("dlq show unknown: %d %s", r.status, r.body)
	}
	var replayed struct{ Replayed int }
	r = e.do("POST", "/v1/admin/dlq/"+seq+"/replay", admin, "", nil)
	r.json(t, &replayed)
	if r.status != 200 || replayed.Replayed != 1 {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/admin/dlq/"+seq+"/replay", admin, "", nil); r.status != 404 {
		t.Fatalf("replaying a replayed letter: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/admin/dlq/replay", admin, "", nil)
	r.json(t, &replayed)
	if r.status != 200 || replayed.Replayed != 1 {
		t.Fatalf("replay all: %d %s", r.status, r.body)
	}
	e.do("GET", "/v1/admin/dlq", admin, "", nil).json(t, &list)
	if len(list.Messages) != 0 {
		t.Fatalf("dlq after replays: %+v", list.Messages)
	}
	// Both went back to the events stream, on their original subject.
	info, err := bus.JetStream().Stream(context.Background(), bus.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("events stream holds %d messages, want the 2 replayed", n)
	}
}

// otherGateways is the router as the admin API asks it for the players
// online: another gateway's answer, or an error.
type otherGateways struct {
	answer gateway.GatewayOnline
	err    error
}

func (o otherGateways) NodeList(context.Context) ([]gateway.NodeInfo, error) { return nil, nil }
func (o otherGateways) DrainNode(context.Context, string) error              { return nil }
func (o otherGateways) PlayersOnline(_ context.Context, limit int) ([]gateway.GatewayOnline, error) {
	if o.err != nil {
		return nil, o.err
	}
	a := o.answer
	a.Players = a.Players[:min(limit, len(a.Players))]
	return []gateway.GatewayOnline{a}, nil
}

// The players online come from every gateway: counts added up, players
// merged oldest first and cut at the limit, each with its gateway; when
// the others cannot be asked, this gateway's own.
func TestAdminOnlineEveryGateway(t *testing.T) {
	old := time.Now().Add(-time.Hour)
	other := gateway.GatewayOnline{Node: "gw-b", Count: 3, Players: []gateway.OnlinePlayer{
		{AccountID: "b1", ConnectedAt: old, Node: "gw-b"}, {AccountID: "b2", ConnectedAt: old.Add(time.Minute), Node: "gw-b"},
		{AccountID: "b3", ConnectedAt: time.Now().Add(time.Hour), Node: "gw-b"}}}
	nodes := &otherGateways{answer: other}
	e := newEnvWith(t, func(d *gateway.Deps) { d.Nodes = nodes })
	admin := e.adminToken("boss")
	_, id := e.connect("cleo")
	type list struct {
		Count    int
		Node     string
		Gateways []gateway.GatewayCount
		Players  []gateway.OnlinePlayer
	}
	var got list
	r := e.do("GET", "/v1/admin/players/online?limit=3", admin, "", nil)
	r.json(t, &got)
	ids := []string{}
	for _, p := range got.Players {
		ids = append(ids, p.AccountID+"@"+p.Node)
	}
	want := []string{"b1@gw-b", "b2@gw-b", id + "@test-node"}
	if r.status != 200 || got.Count != 4 || !slices.Equal(ids, want) || len(got.Gateways) != 2 ||
		got.Gateways[0] != (gateway.GatewayCount{Node: "gw-b", Count: 3}) || got.Gateways[1] != (gateway.GatewayCount{Node: "test-node", Count: 1}) {
		t.Fatalf("online: %d %+v (players %v), want 4 on gw-b and test-node, players %v", r.status, got, ids, want)
	}
	*nodes = otherGateways{err: errors.New("no NATS")}
	got = list{}
	r = e.do("GET", "/v1/admin/players/online", admin, "", nil)
	r.json(t, &got)
	if r.status != 200 || got.Count != 1 || len(got.Players) != 1 || got.Players[0].AccountID != id {
		t.Fatalf("online with the others unreachable: %d %s, want this gateway's player", r.status, r.body)
	}
}
