package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
	"github.com/multijuego/multijuego/match"
)

type env struct {
	t    *testing.T
	srv  *httptest.Server
	auth *auth.Service
	st   *store.Store
	gw   *gateway.Server
}

// testDisconnectGrace is the engine's grace period in newEnv (0: the
// default); tests here do not run in parallel.
var testDisconnectGrace time.Duration

func newEnv(t *testing.T, mutate ...func(*gateway.Config, *auth.Config)) *env {
	t.Helper()
	return newEnvWith(t, nil, mutate...)
}

// newEnvWith is newEnv with a hook that may change the gateway's deps.
func newEnvWith(t *testing.T, deps func(*gateway.Deps), mutate ...func(*gateway.Config, *auth.Config)) *env {
	t.Helper()
	st := storetest.SQLite(t)
	acfg := auth.DefaultConfig()
	acfg.Argon2MemoryKiB, acfg.Argon2Iterations = 64, 1
	gcfg := gateway.DefaultConfig()
	for _, m := range mutate {
		m(&gcfg, &acfg)
	}
	svc, err := auth.New(context.Background(), acfg, auth.KeysDir{Path: t.TempDir()}, auth.Deps{Store: st, KV: newKV(t)})
	if err != nil {
		t.Fatal(err)
	}
	relay := &lateSender{}
	engine, err := match.NewEngine(match.Config{Sender: relay, DisconnectGrace: testDisconnectGrace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Shutdown(context.Background()) })
	for mode, f := range map[string]match.Factory{arena.Mode: arena.New, tictactoe.Mode: tictactoe.New} {
		if err := engine.Register(mode, f); err != nil {
			t.Fatal(err)
		}
	}
	d := gateway.Deps{
		Auth: svc, Matches: engine, Tickets: newKV(t), Records: st, Registry: prometheus.NewRegistry(), Version: "test",
		Ready: []gateway.ReadyCheck{{Name: "database", Check: st.Ping}}, NodeID: "test-node",
	}
	if deps != nil {
		deps(&d)
	}
	gw, err := gateway.New(gcfg, d)
	if err != nil {
		t.Fatal(err)
	}
	relay.set(gw.Realtime())
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, auth: svc, st: st, gw: gw}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
}

func (r resp) errBody(t *testing.T) gateway.ErrorDetail {
	t.Helper()
	var b gateway.ErrorBody
	r.json(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" || b.Error.RequestID == "" {
		t.Fatalf("error body lacks code, message or request_id: %s", r.body)
	}
	return b.Error
}

func (e *env) do(method, path, token, contentType string, body []byte, hdr ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) post(path, token string, v any) resp {
	e.t.Helper()
	b, _ := json.Marshal(v)
	return e.do("POST", path, token, "application/json", b)
}

func (e *env) register(name string) gateway.TokenResponse {
	e.t.Helper()
	r := e.post("/v1/auth/register", "", map[string]string{"username": name, "password": name + "-password"})
	if r.status != http.StatusCreated {
		e.t.Fatalf("register %s: %d %s", name, r.status, r.body)
	}
	var tr gateway.TokenResponse
	r.json(e.t, &tr)
	return tr
}

func TestAuthFlow(t *testing.T) {
	e := newEnv(t)
	reg := e.register("alice")
	if reg.TokenType != "Bearer" || reg.ExpiresIn != 900 || reg.AccessToken == "" || reg.RefreshToken == "" {
		t.Fatalf("token response = %+v", reg)
	}
	r := e.do("GET", "/v1/account", reg.AccessToken, "", nil)
	var acc gateway.AccountResponse
	r.json(t, &acc)
	if r.status != 200 || acc.Username != "alice" || acc.Guest || len(acc.Roles) != 1 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("account: %d %s", r.status, r.body)
	}
	r = e.post("/v1/auth/login", "", map[string]string{"username": "alice", "password": "alice-password"})
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var login gateway.TokenResponse
	r.json(t, &login)
	r = e.post("/v1/auth/refresh", "", map[string]string{"refresh_token": login.RefreshToken})
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	var next gateway.TokenResponse
	r.json(t, &next)
	r = e.post("/v1/auth/refresh", "", map[string]string{"refresh_token": login.RefreshToken})
	if r.status != 401 || r.errBody(t).Code != errcode.Unauthenticated {
		t.Fatalf("reused refresh: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/account", next.AccessToken, "", nil); r.status != 401 {
		t.Fatalf("access token of a revoked family: %d", r.status)
	}
	r = e.do("POST", "/v1/auth/logout", reg.AccessToken, "", nil)
	if r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/account", reg.AccessToken, "", nil)
	if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("after logout: %d %v", r.status, r.header)
	}

	// Guest, then link a password.
	r = e.post("/v1/auth/device", "", map[string]string{"device_id": "browser-abcdef123456"})
	if r.status != 201 {
		t.Fatalf("device first time: %d %s", r.status, r.body)
	}
	var guest gateway.TokenResponse
	r.json(t, &guest)
	if r := e.post("/v1/auth/device", "", map[string]string{"device_id": "browser-abcdef123456"}); r.status != 200 {
		t.Fatalf("device again: %d", r.status)
	}
	r = e.post("/v1/account/link", guest.AccessToken, map[string]string{"username": "bob", "password": "bobs-password"})
	r.json(t, &acc)
	if r.status != 200 || acc.Guest || acc.Username != "bob" {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	r = e.post("/v1/account/password", guest.AccessToken, map[string]string{"current_password": "bobs-password", "new_password": "bobs-new-password"})
	if r.status != 200 {
		t.Fatalf("password change: %d %s", r.status, r.body)
	}
	if r := e.post("/v1/auth/login", "", map[string]string{"username": "bob", "password": "bobs-new-password"}); r.status != 200 {
		t.Fatalf("login with the new password: %d", r.status)
	}
}

// Every public entry point answers bad input with a clear error and a
// stable code, and names the field when one is at fault.
func TestBadInput(t *testing.T) {
	e := newEnv(t, func(g *gateway.Config, _ *auth.Config) { g.MaxBodyBytes = 2048 })
	tok := e.register("carol").AccessToken
	big := `{"username":"` + strings.Repeat("x", 3000) + `","password":"x"}`
	for _, tc := range []struct {
		name, method, path, token, ctype, body string
		status                                 int
		code                                   errcode.Code
		field                                  string
	}{
		{"malformed JSON", "POST", "/v1/auth/login", "", "application/json", `{"username": "a",`, 400, errcode.Invalid, ""},
		{"syntax error", "POST", "/v1/auth/login", "", "application/json", `{"username" "a"}`, 400, errcode.Invalid, ""},
		{"empty body", "POST", "/v1/auth/register", "", "application/json", ``, 400, errcode.Invalid, ""},
		{"array body", "POST", "/v1/auth/register", "", "application/json", `[1,2]`, 400, errcode.Invalid, ""},
		{"null body", "POST", "/v1/auth/refresh", "", "application/json", `null`, 400, errcode.Invalid, ""},
		{"trailing data", "POST", "/v1/auth/login", "", "application/json", `{"username":"a","password":"b"} {}`, 400, errcode.Invalid, ""},
		{"unknown field", "POST", "/v1/auth/register", "", "application/json", `{"username":"dave","password":"long-enough","admin":true}`, 400, errcode.Invalid, "admin"},
		{"wrong type", "POST", "/v1/auth/register", "", "application/json", `{"username":"dave","password":12345678}`, 400, errcode.Invalid, "password"},
		{"wrong type bool", "POST", "/v1/auth/device", "", "application/json", `{"device_id":true}`, 400, errcode.Invalid, "device_id"},
		{"wrong type roles", "PUT", "/v1/admin/accounts/x/roles", "", "application/json", `{"roles":"admin"}`, 401, errcode.Unauthenticated, ""},
		{"oversized", "POST", "/v1/auth/register", "", "application/json", big, 413, errcode.TooLarge, ""},
		{"form body", "POST", "/v1/auth/login", "", "application/x-www-form-urlencoded", `username=a&password=b`, 415, errcode.Unsupported, ""},
		{"no content type", "POST", "/v1/auth/login", "", "", `{"username":"a","password":"b"}`, 415, errcode.Unsupported, ""},
		{"invalid username", "POST", "/v1/auth/register", "", "application/json", `{"username":"a b","password":"long-enough"}`, 400, errcode.Invalid, "username"},
		{"short password", "POST", "/v1/auth/register", "", "application/json", `{"username":"dave","password":"short"}`, 400, errcode.Invalid, "password"},
		{"missing refresh", "POST", "/v1/auth/refresh", "", "application/json", `{}`, 400, errcode.Invalid, "refresh_token"},
		{"bad refresh", "POST", "/v1/auth/refresh", "", "application/json", `{"refresh_token":"nope"}`, 401, errcode.Unauthenticated, ""},
		{"wrong credentials", "POST", "/v1/auth/login", "", "application/json", `{"username":"carol","password":"wrong-password"}`, 401, errcode.Unauthenticated, ""},
		{"no token", "GET", "/v1/account", "", "", ``, 401, errcode.Unauthenticated, ""},
		{"garbage token", "GET", "/v1/account", "garbage", "", ``, 401, errcode.Unauthenticated, ""},
		{"player on admin route", "GET", "/v1/admin/accounts", tok, "", ``, 403, errcode.PermissionDenied, ""},
		{"unknown route", "GET", "/v1/nope", "", "", ``, 404, errcode.NotFound, ""},
		{"wrong method", "GET", "/v1/auth/login", "", "", ``, 405, errcode.MethodNotAllowed, ""},
		{"taken username", "POST", "/v1/auth/register", "", "application/json", `{"username":"CAROL","password":"long-enough"}`, 409, errcode.Conflict, "username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.token, tc.ctype, []byte(tc.body))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			eb := r.errBody(t)
			if eb.Code != tc.code || eb.Field != tc.field {
				t.Fatalf("error %+v, want code %s field %q", eb, tc.code, tc.field)
			}
			if strings.Contains(eb.Message, "json:") || strings.Contains(eb.Message, "sql") {
				t.Fatalf("message leaks internals: %q", eb.Message)
			}
		})
	}
	if r := e.do("GET", "/v1/auth/login", "", "", nil); r.header.Get("Allow") != "POST" {
		t.Errorf("405 Allow = %q, want POST", r.header.Get("Allow"))
	}
}

func TestLoginFloodGets429(t *testing.T) {
	e := newEnv(t, func(_ *gateway.Config, a *auth.Config) { a.AccountIPFailures = 2; a.AccountFailures = 2 })
	e.register("erin")
	var r resp
	for i := 0; i < 3; i++ {
		r = e.post("/v1/auth/login", "", map[string]string{"username": "erin", "password": "wrong-password"})
	}
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.errBody(t).Code != errcode.RateLimited {
		t.Fatalf("third failure: %d Retry-After=%q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
}

func TestAdmin(t *testing.T) {
	e := newEnv(t)
	admin := e.register("root1")
	p, _ := e.auth.Authenticate(admin.AccessToken)
	if _, err := e.auth.SetRoles(context.Background(), nil, p.AccountID, []string{"player", "admin"}, auth.Meta{}); err != nil {
		t.Fatal(err)
	}
	// The old token lost nothing (roles were added), but carries no admin
	// role yet: roles reach tokens at refresh.
	if r := e.do("GET", "/v1/admin/accounts", admin.AccessToken, "", nil); r.status != 403 {
		t.Fatalf("stale token on admin route: %d", r.status)
	}
	var fresh gateway.TokenResponse
	e.post("/v1/auth/refresh", "", map[string]string{"refresh_token": admin.RefreshToken}).json(t, &fresh)
	for i := 0; i < 3; i++ {
		e.register("player" + string(rune('a'+i)))
	}
	// Device ids are credentials: neither the owner nor an operator sees
	// them (or their stored hashes), only how many there are.
	const dev = "admin-sees-not-0123456789"
	var guest gateway.TokenResponse
	e.post("/v1/auth/device", "", map[string]string{"device_id": dev}).json(t, &guest)
	for _, r := range []resp{
		e.do("GET", "/v1/account", guest.AccessToken, "", nil),
		e.do("GET", "/v1/admin/accounts/"+guest.AccountID, fresh.AccessToken, "", nil),
		e.do("GET", "/v1/admin/accounts?limit=500", fresh.AccessToken, "", nil),
	} {
		if r.status != 200 || strings.Contains(string(r.body), dev) || strings.Contains(string(r.body), auth.DeviceHashPrefix) {
			t.Fatalf("account view shows a device id: %d %s", r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/admin/accounts/"+guest.AccountID, fresh.AccessToken, "", nil); !strings.Contains(string(r.body), `"device_count":1`) {
		t.Fatalf("admin account view: %s, want device_count 1", r.body)
	}
	r := e.do("GET", "/v1/admin/accounts?limit=2&q=player", fresh.AccessToken, "", nil)
	var list struct {
		Accounts []gateway.AccountResponse
		Next     string
	}
	r.json(t, &list)
	if r.status != 200 || len(list.Accounts) != 2 || list.Next == "" {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/admin/accounts?limit=2&q=player&after="+list.Next, fresh.AccessToken, "", nil)
	r.json(t, &list)
	if len(list.Accounts) != 1 {
		t.Fatalf("page 2: %s", r.body)
	}
	victim := list.Accounts[0]
	if r := e.do("GET", "/v1/admin/accounts?limit=0", fresh.AccessToken, "", nil); r.status != 400 || r.errBody(t).Field != "limit" {
		t.Fatalf("limit=0: %d %s", r.status, r.body)
	}
	r = e.post("/v1/admin/accounts/"+victim.ID+"/ban", fresh.AccessToken, map[string]string{"reason": "cheating"})
	var banned gateway.AccountResponse
	r.json(t, &banned)
	if r.status != 200 || !banned.Banned || banned.BanReason != "cheating" {
		t.Fatalf("ban: %d %s", r.status, r.body)
	}
	r = e.post("/v1/auth/login", "", map[string]string{"username": victim.Username, "password": victim.Username + "-password"})
	if r.status != 403 || r.errBody(t).Code != errcode.Banned {
		t.Fatalf("banned login: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/admin/accounts/"+victim.ID+"/unban", fresh.AccessToken, "", nil); r.status != 200 {
		t.Fatalf("unban: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/admin/accounts/nope/ban", fresh.AccessToken, "", nil); r.status != 404 {
		t.Fatalf("ban unknown: %d %s", r.status, r.body)
	}
	r = e.do("PUT", "/v1/admin/accounts/"+victim.ID+"/roles", fresh.AccessToken, "application/json", []byte(`{"roles":["player","service"]}`))
	if r.status != 200 {
		t.Fatalf("set roles: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/admin/audit?kind=ban", fresh.AccessToken, "", nil)
	var audit struct{ Events []gateway.AuditResponse }
	r.json(t, &audit)
	if r.status != 200 || len(audit.Events) != 1 || audit.Events[0].ActorID != p.AccountID || audit.Events[0].AccountID != victim.ID {
		t.Fatalf("audit: %d %s", r.status, r.body)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	r := e.do("GET", "/readyz", "", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"database":"ok"`) {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	e.register("frank")
	// Made-up methods share one label value: they cannot grow the series.
	for i := range 20 {
		e.do(fmt.Sprintf("BREW%d", i), "/v1/matches", "", "", nil)
	}
	r = e.do("GET", "/metrics", "", "", nil)
	for _, want := range []string{
		`multijuego_http_requests_total{method="POST",route="/v1/auth/register",status="201"} 1`,
		`multijuego_http_request_duration_seconds_bucket{method="POST",route="/v1/auth/register"`,
		`method="other"`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(r.body), "BREW") {
		t.Error("a made-up method became a metric label")
	}
	// A failing dependency makes readyz 503 and names it.
	gw, _ := gateway.New(gateway.DefaultConfig(), gateway.Deps{Auth: e.auth, Ready: []gateway.ReadyCheck{{Name: "database", Check: func(context.Context) error { return errors.New("connection refused") }}}})
	rec := httptest.NewRecorder()
	gw.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "connection refused") {
		t.Fatalf("failing readyz: %d %s", rec.Code, rec.Body)
	}
	// Draining: readyz fails while healthz still answers.
	gw.SetDraining()
	rec = httptest.NewRecorder()
	gw.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "draining") {
		t.Fatalf("draining readyz: %d %s", rec.Code, rec.Body)
	}
}

func TestRequestIDAndClientIP(t *testing.T) {
	e := newEnv(t, func(g *gateway.Config, a *auth.Config) {
		g.TrustedProxies = []string{"127.0.0.0/8"}
		a.LoginIPLimit = 1
	})
	r := e.do("GET", "/healthz", "", "", nil, "X-Request-ID", "abc-123")
	if r.header.Get("X-Request-ID") != "abc-123" {
		t.Fatalf("request id not kept: %q", r.header.Get("X-Request-ID"))
	}
	r = e.do("GET", "/healthz", "", "", nil, "X-Request-ID", "bad id\twith spaces")
	if id := r.header.Get("X-Request-ID"); id == "" || strings.Contains(id, " ") {
		t.Fatalf("bad request id echoed: %q", id)
	}
	// Behind a trusted proxy, the client address comes from X-Forwarded-For,
	// so two clients behind it have separate login limits.
	login := []byte(`{"username":"x","password":"y-password"}`)
	for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		if r := e.do("POST", "/v1/auth/login", "", "application/json", login, "X-Forwarded-For", ip); r.status != 401 {
			t.Fatalf("first attempt from %s: %d", ip, r.status)
		}
	}
	if r := e.do("POST", "/v1/auth/login", "", "application/json", login, "X-Forwarded-For", "198.51.100.1"); r.status != 429 {
		t.Fatalf("second attempt from one address: %d, want 429", r.status)
	}
}

// The OpenAPI document describes exactly the routes the gateway serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/openapi.json", "", "", nil)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	r.json(t, &doc)
	if r.status != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi: %d openapi=%q", r.status, doc.OpenAPI)
	}
	// What is served is openapi.json (embedded as openapi.json.gz).
	if src, err := os.ReadFile("openapi.json"); err != nil || !bytes.Equal(r.body, src) {
		t.Fatalf("GET /v1/openapi.json is not openapi.json (%v): openapi.json.gz is stale, run `go generate ./internal/gateway`", err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(documented)
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{id}", "some-id")
		if r := e.do(method, path, "", "", nil); r.status == 404 && strings.Contains(string(r.body), "No such route") || r.status == 405 {
			t.Errorf("documented %s is not served (%d)", op, r.status)
		}
	}
	var src []byte
	for _, f := range []string{"adminapi.go", "authapi.go", "matchapi.go", "realtime.go", "recordsapi.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	for _, line := range strings.Split(string(src), "\n") {
		_, after, ok := strings.Cut(line, `mux.HandleFunc("`)
		if !ok {
			_, after, ok = strings.Cut(line, `mux.Handle("`)
		}
		if !ok {
			continue
		}
		pattern, _, _ := strings.Cut(after, `"`)
		if sort.SearchStrings(documented, pattern) == len(documented) || documented[sort.SearchStrings(documented, pattern)] != pattern {
			t.Errorf("route %s is not in openapi.json", pattern)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"username":"a","password":"b"}`, `{`, `[]`, `null`, `{"username":1}`, `{"x":1}`, `{} {}`, "\xff", `{"username":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req struct {
			Username string   `json:"username"`
			Password string   `json:"password"`
			Roles    []string `json:"roles"`
		}
		err := gateway.DecodeJSON(data, &req)
		if err == nil {
			return
		}
		e := errcode.As(err)
		if e == nil || e.Code != errcode.Invalid || e.Message == "" {
			t.Fatalf("DecodeJSON(%q) = %v; want an invalid_argument domain error", data, err)
		}
		if strings.Contains(e.Message, "json:") {
			t.Fatalf("message leaks the decoder's text: %q", e.Message)
		}
	})
}

func newKV(t testing.TB) *kv.Memory {
	m := kv.NewMemory(kv.MemoryOptions{})
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMatchAPI(t *testing.T) {
	e := newEnv(t)
	tok := e.register("player1").AccessToken
	r := e.do("POST", "/v1/matches", tok, "application/json", []byte(`{"mode":"tictactoe"}`))
	var m gateway.MatchResponse
	r.json(t, &m)
	if r.status != 201 || m.Mode != "tictactoe" || len(m.MatchID) < 20 || !m.Open || m.MaxPlayers != 2 || m.TickRate != tictactoe.TickRate {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/matches", tok, "application/json", []byte(`{"mode":"arena","params":{"max_players":"4"}}`))
	if r.status != 201 {
		t.Fatalf("create arena: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/matches?mode=tictactoe", tok, "", nil)
	var list struct{ Matches []gateway.MatchResponse }
	r.json(t, &list)
	if r.status != 200 || len(list.Matches) != 1 || list.Matches[0].MatchID != m.MatchID {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name, token, body string
		status            int
		field             string
	}{
		{"no token", "", `{"mode":"arena"}`, 401, ""},
		{"unknown mode", tok, `{"mode":"chess"}`, 400, "mode"},
		{"no mode", tok, `{}`, 400, "mode"},
		{"params not strings", tok, `{"mode":"arena","params":{"max_players":4}}`, 400, "params"},
		{"params the game refuses", tok, `{"mode":"arena","params":{"max_players":"99"}}`, 400, "params"},
	} {
		r := e.do("POST", "/v1/matches", tc.token, "application/json", []byte(tc.body))
		if r.status != tc.status || r.errBody(t).Field != tc.field {
			t.Errorf("%s: %d %s; want %d field %q", tc.name, r.status, r.body, tc.status, tc.field)
		}
	}
	// A parameter the mode does not take is refused by name, with the ones
	// it does take; no match is created.
	for _, tc := range []struct{ body, param, takes string }{
		{`{"mode":"arena","params":{"players":"4","duration":"90s"}}`, "duration", "max_players, min_players, time_limit, tick_rate"},
		{`{"mode":"arena","params":{"max_players":"4","Time_limit":"30s"}}`, "Time_limit", "time_limit"},
		{`{"mode":"tictactoe","params":{"max_players":"2"}}`, "max_players", "takes none"},
	} {
		r := e.do("POST", "/v1/matches", tok, "application/json", []byte(tc.body))
		got := r.errBody(t)
		if r.status != 400 || got.Code != errcode.Invalid || got.Field != "params" ||
			!strings.Contains(got.Message, `"`+tc.param+`"`) || !strings.Contains(got.Message, tc.takes) || strings.Contains(got.Message, "match:") {
			t.Errorf("%s: %d %s; want 400 invalid_argument naming %q", tc.body, r.status, r.body, tc.param)
		}
	}
	r = e.do("GET", "/v1/matches", tok, "", nil)
	r.json(t, &list)
	if len(list.Matches) != 2 {
		t.Errorf("after the refusals %d matches, want the 2 created", len(list.Matches))
	}
}

// lateSender lets the test engine be built before the gateway it sends to.
type lateSender struct {
	mu sync.Mutex
	s  match.Sender
}

func (l *lateSender) set(s match.Sender) { l.mu.Lock(); l.s = s; l.mu.Unlock() }
func (l *lateSender) get() match.Sender  { l.mu.Lock(); defer l.mu.Unlock(); return l.s }
func (l *lateSender) Send(p match.Presence, f *match.Frame) bool {
	if s := l.get(); s != nil {
		return s.Send(p, f)
	}
	return false
}
func (l *lateSender) Close(p match.Presence, id string, r match.Reason) {
	if s := l.get(); s != nil {
		s.Close(p, id, r)
	}
}
