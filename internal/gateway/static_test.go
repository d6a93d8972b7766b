package gateway_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/store/storetest"
	"github.com/multijuego/multijuego/internal/webui"
)

// newStaticEnv is a gateway with the auth API and the browser files.
func newStaticEnv(t *testing.T, files fstest.MapFS) *env {
	t.Helper()
	st := storetest.SQLite(t)
	acfg := auth.DefaultConfig()
	acfg.Argon2MemoryKiB, acfg.Argon2Iterations = 64, 1
	svc, err := auth.New(context.Background(), acfg, auth.KeysDir{Path: t.TempDir()}, auth.Deps{Store: st, KV: newKV(t)})
	if err != nil {
		t.Fatal(err)
	}
	d := gateway.Deps{Auth: svc, Registry: prometheus.NewRegistry(), Version: "test"}
	if files != nil {
		if d.Static, err = webui.New(files, webui.DefaultConfig()); err != nil {
			t.Fatal(err)
		}
	}
	gw, err := gateway.New(gateway.DefaultConfig(), d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, auth: svc, st: st}
}

// The browser files and the API share one origin: the files take only
// GET and HEAD of paths no API route takes, outside the API's namespace,
// and the API keeps its JSON errors.
func TestStaticAndAPICoexist(t *testing.T) {
	const page = "<!doctype html><title>multijuego</title>"
	e := newStaticEnv(t, fstest.MapFS{
		"index.html":              {Data: []byte(page)},
		"admin/index.html":        {Data: []byte("<!doctype html><title>admin</title>")},
		"assets/game-5LQ3K2ZB.js": {Data: []byte("export {};")},
		"v1/index.html":           {Data: []byte("shadowed by the API")},
		"healthz":                 {Data: []byte("shadowed by the API")},
	})
	r := e.do("GET", "/", "", "", nil)
	if r.status != 200 || string(r.body) != page || r.header.Get("Content-Type") != "text/html; charset=utf-8" ||
		r.header.Get("Cache-Control") != "no-cache" || !strings.Contains(r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		r.header.Get("X-Request-ID") == "" {
		t.Fatalf("GET /: %d %q %v", r.status, r.body, r.header)
	}
	if r := e.do("HEAD", "/assets/game-5LQ3K2ZB.js", "", "", nil); r.status != 200 || r.header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("HEAD asset: %d %v", r.status, r.header)
	}
	if r := e.do("GET", "/admin", "", "", nil); r.status != 200 || !strings.Contains(string(r.body), "admin") {
		t.Errorf("GET /admin (redirect followed): %d %q", r.status, r.body)
	}
	if r := e.do("GET", "/nope", "", "", nil); r.status != 404 || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("GET /nope: %d %s, want the static 404 page", r.status, r.header.Get("Content-Type"))
	}
	for _, path := range []string{"/v1", "/v1/"} {
		r := e.do("GET", path, "", "", nil)
		var idx map[string]string
		r.json(t, &idx)
		if r.status != 200 || idx["service"] != "multijuego" || idx["openapi"] != "/v1/openapi.json" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: %d %s", path, r.status, r.body)
		}
	}
	if r := e.do("GET", "/healthz", "", "", nil); r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("GET /healthz: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		code         errcode.Code
	}{
		{"GET", "/v1/nope", 404, errcode.NotFound},
		{"GET", "/v1/index.html", 404, errcode.NotFound},
		{"HEAD", "/v1/nope", 404, ""},
		{"GET", "/.well-known/nope", 404, errcode.NotFound},
		{"GET", "/v1/auth/login", 405, errcode.MethodNotAllowed},
		{"POST", "/healthz", 405, errcode.MethodNotAllowed},
		{"POST", "/", 404, errcode.NotFound}, // the files answer GET and HEAD only
		{"DELETE", "/assets/game-5LQ3K2ZB.js", 404, errcode.NotFound},
	} {
		r := e.do(tc.method, tc.path, "", "", nil)
		if r.status != tc.status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: %d %s %q, want %d JSON no-store", tc.method, tc.path, r.status, r.header.Get("Content-Type"), r.header.Get("Cache-Control"), tc.status)
			continue
		}
		if tc.code != "" && r.errBody(t).Code != tc.code {
			t.Errorf("%s %s: code %s, want %s", tc.method, tc.path, r.errBody(t).Code, tc.code)
		}
	}
	m := e.do("GET", "/metrics", "", "", nil)
	if !strings.Contains(string(m.body), `route="static"`) {
		t.Errorf("metrics lack the static route label")
	}
}

// Without files, / is an unknown route like any other.
func TestNoStaticFiles(t *testing.T) {
	e := newStaticEnv(t, nil)
	r := e.do("GET", "/", "", "", nil)
	if r.status != 404 || r.errBody(t).Code != errcode.NotFound {
		t.Fatalf("GET / without files: %d %s", r.status, r.body)
	}
}
