package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
)

// A gateway run without the auth role serves the live match routes of the
// admin API itself and writes an end to the audit log through the auth
// role first: if that fails, nothing is ended (503); once it works, the
// end is done and the row is there, as the operator.
func TestAdminEndMatchThroughAuthRole(t *testing.T) {
	authRole := newEnv(t)
	target, _ := url.Parse(authRole.srv.URL)
	var refuse atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && r.URL.Path == "/v1/admin/audit/match-end" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	gw := newEnvWith(t, func(d *gateway.Deps) { d.Identity, d.Auth = authRole.auth, nil },
		func(g *gateway.Config, _ *auth.Config) { g.AuthURL = front.URL })
	admin := authRole.adminToken("ops")

	var m gateway.MatchResponse
	gw.post("/v1/matches", admin, map[string]any{"mode": "arena"}).json(t, &m)
	live := func() bool {
		var list struct {
			Matches []gateway.AdminMatchResponse `json:"matches"`
		}
		gw.do("GET", "/v1/admin/matches", admin, "", nil).json(t, &list)
		return slices.ContainsFunc(list.Matches, func(a gateway.AdminMatchResponse) bool { return a.MatchID == m.MatchID })
	}
	if !live() {
		t.Fatalf("match %s not in the gateway's admin list", m.MatchID)
	}
	if r := gw.do("GET", "/v1/admin/matches", authRole.register("player").AccessToken, "", nil); r.status != http.StatusForbidden {
		t.Errorf("admin matches as a player: %d, want 403", r.status)
	}

	refuse.Store(true)
	r := gw.post("/v1/admin/matches/"+m.MatchID+"/end", admin, map[string]string{"reason": "audit down"})
	if r.status != http.StatusServiceUnavailable || r.errBody(t).Code != "unavailable" || !live() {
		t.Fatalf("end with the audit log unreachable = %d %s (live %v), want 503 and the match still live", r.status, r.body, live())
	}
	refuse.Store(false)
	if r := gw.post("/v1/admin/matches/"+m.MatchID+"/end", admin, map[string]string{"reason": "cheating"}); r.status != http.StatusNoContent {
		t.Fatalf("end = %d %s", r.status, r.body)
	}
	if live() {
		t.Error("the match is live after its end")
	}
	var audit struct {
		Events []gateway.AuditResponse `json:"events"`
	}
	authRole.do("GET", "/v1/admin/audit?kind=admin_end_match", admin, "", nil).json(t, &audit)
	if len(audit.Events) != 1 || audit.Events[0].ActorID == "" || !strings.Contains(audit.Events[0].Detail, m.MatchID) {
		t.Fatalf("audit rows of the end: %+v", audit.Events)
	}
}

// The auth role's audit route for gateways takes only a well-formed end
// from an admin: a malformed body, a missing or oversized field, or a
// caller without the role is refused with the usual codes, and writes no
// row.
func TestAdminAuditMatchEndBadInput(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken("ops")
	for _, c := range []struct {
		token, body string
		status      int
		code        string
	}{
		{admin, `{"match_id":`, http.StatusBadRequest, "invalid_argument"},
		{admin, `{"reason":"no id"}`, http.StatusBadRequest, "invalid_argument"},
		{admin, `{"match_id":"` + strings.Repeat("m", 65) + `"}`, http.StatusBadRequest, "invalid_argument"},
		{admin, `{"match_id":"m1","reason":"` + strings.Repeat("r", 201) + `"}`, http.StatusBadRequest, "invalid_argument"},
		{admin, `{"match_id":"m1","extra":1}`, http.StatusBadRequest, "invalid_argument"},
		{e.register("player").AccessToken, `{"match_id":"m1"}`, http.StatusForbidden, "permission_denied"},
		{"", `{"match_id":"m1"}`, http.StatusUnauthorized, "unauthenticated"},
	} {
		r := e.do("POST", "/v1/admin/audit/match-end", c.token, "application/json", []byte(c.body))
		if r.status != c.status || string(r.errBody(t).Code) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.body, r.status, r.body, c.status, c.code)
		}
	}
	var audit struct {
		Events []gateway.AuditResponse `json:"events"`
	}
	e.do("GET", "/v1/admin/audit?kind=admin_end_match", admin, "", nil).json(t, &audit)
	if len(audit.Events) != 0 {
		t.Errorf("refused requests wrote %d audit rows", len(audit.Events))
	}
}
