package app_test

import (
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/web"
)

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req) // no transparent decompression
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// The embedded browser files are served next to the API, and web.enabled
// turns them off.
func TestServeWebFiles(t *testing.T) {
	want, err := fs.ReadFile(web.Files(), "sdk/multijuego.js")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Roles = []string{app.RoleGateway, app.RoleAuth}
	cfg.Web.RealtimeOrigins = []string{"https://rt.example.com"}
	m, stop := startMain(t, cfg)
	res, body := get(t, m.URL()+"/sdk/multijuego.js")
	if res.StatusCode != 200 || string(body) != string(want) || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		stop()
		t.Fatalf("GET /sdk/multijuego.js: %d %s, %d bytes (want %d)", res.StatusCode, res.Header.Get("Content-Type"), len(body), len(want))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https://rt.example.com wss://rt.example.com;") {
		t.Errorf("CSP %q lacks the configured realtime origin", csp)
	}
	if res, _ := get(t, m.URL()+"/v1/nope"); res.StatusCode != 404 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /v1/nope: %d %s, want the API's JSON 404", res.StatusCode, res.Header.Get("Content-Type"))
	}
	stop()

	cfg = testConfig(t)
	cfg.Roles = []string{app.RoleGateway, app.RoleAuth}
	cfg.Web.Enabled = false
	m, stop = startMain(t, cfg)
	defer stop()
	if res, _ := get(t, m.URL()+"/sdk/multijuego.js"); res.StatusCode != 404 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("web.enabled=false: GET /sdk/multijuego.js: %d %s, want the API's JSON 404", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func TestWebConfigValidation(t *testing.T) {
	_, _, err := app.LoadConfig("multijuego", []string{"--web-realtime-origins", "https://ok.example.com,https://bad.example.com/path"}, nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `web.realtime_origins: "https://bad.example.com/path" is not an origin`) {
		t.Fatalf("LoadConfig: %v, want an error naming web.realtime_origins and the bad value", err)
	}
	cfg, _, err := app.LoadConfig("multijuego", nil, []string{"MULTIJUEGO_WEB_ENABLED=false"}, io.Discard)
	if err != nil || cfg.Web.Enabled {
		t.Fatalf("MULTIJUEGO_WEB_ENABLED=false: %v, enabled=%v", err, cfg.Web.Enabled)
	}
}
