package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// GET /v1/admin/audit/verify walks the chain: rows not chained yet are
// counted, chained ones verified, a changed one named; the audit list
// shows each row's place in the chain; a bad anchor is 400.
func TestAdminAuditVerify(t *testing.T) {
	e := newEnv(t)
	tok := e.adminToken("root")
	var v gateway.AuditVerifyResponse
	r := e.do("GET", "/v1/admin/audit/verify", tok, "", nil)
	// The admin's registration row is chained as it is written (a login
	// batch, on SQLite); the role grant's is not yet.
	if r.json(t, &v); r.status != 200 || !v.OK || v.Chained != 1 || v.Unchained < 1 || v.OldestUnchained == nil {
		t.Fatalf("before chaining: %d %s", r.status, r.body)
	}
	if _, err := e.auth.ChainAuditOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/v1/admin/audit/verify", tok, "", nil)
	if r.json(t, &v); r.status != 200 || !v.OK || v.Chained < 2 || v.Unchained != 0 || !strings.HasPrefix(v.Head, fmt.Sprintf("%d:", v.Chained)) || len(v.Problems) != 0 {
		t.Fatalf("after chaining: %d %+v", r.status, v)
	}
	var list struct {
		Events []gateway.AuditResponse `json:"events"`
	}
	r = e.do("GET", "/v1/admin/audit?limit=1", tok, "", nil)
	if r.json(t, &list); len(list.Events) != 1 || list.Events[0].ChainSeq != v.Chained {
		t.Fatalf("newest row's chain place: %s; want %d", r.body, v.Chained)
	}
	if _, err := storetest.Raw(t, e.st).ExecContext(context.Background(), `UPDATE audit_log SET kind='logout' WHERE chain_seq=1`); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/v1/admin/audit/verify?anchor="+v.Head, tok, "", nil)
	if r.json(t, &v); r.status != 200 || v.OK || v.ProblemCount != 1 || v.Problems[0].Kind != store.AuditChanged || v.Problems[0].Seq != 1 {
		t.Fatalf("after a change: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/admin/audit/verify?anchor=12", tok, "", nil); r.status != 400 || !strings.Contains(string(r.body), "anchor") {
		t.Fatalf("bad anchor: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/admin/audit/verify", e.register("pleb").AccessToken, "", nil); r.status != 403 {
		t.Fatalf("a player: %d", r.status)
	}
}

// A rate-limit trip is audited once per limit, key and window, however
// many requests are refused: by address, and by account with the account.
func TestRateLimitTripsAudited(t *testing.T) {
	e := limitedEnv(t, newClock(), nil, func(l *gateway.Limits) {
		l.Config.IP.Auth = "3/1m"
		l.Config.Account.Matches = "1/1m"
	})
	a := e.register("alice")
	login := []byte(`{"username":"nobody","password":"wrong-password"}`)
	for range 6 {
		e.do("POST", "/v1/auth/login", "", "application/json", login)
	}
	for range 4 {
		e.do("GET", "/v1/matches", a.AccessToken, "", nil)
	}
	ev, err := e.st.Audit(context.Background(), store.AuditQuery{Kind: "rate_limited"})
	if err != nil || len(ev) != 2 {
		t.Fatalf("rate_limited rows = %+v, %v; want one per limit", ev, err)
	}
	byLimit := map[string]store.AuditEvent{}
	for _, e := range ev {
		var d struct{ Limit string }
		_ = json.Unmarshal([]byte(e.Detail), &d)
		byLimit[d.Limit] = e
	}
	if ip, ok := byLimit["ip.auth"]; !ok || ip.AccountID != "" || ip.IP == "" {
		t.Fatalf("ip.auth trip: %+v", byLimit)
	}
	if acc, ok := byLimit["account.matches"]; !ok || acc.AccountID == "" {
		t.Fatalf("account.matches trip: %+v", byLimit)
	}
}
