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
