package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/app"
)

// With metrics.listen, /metrics is served on the admin listener only; the
// probes stay on the public one.
func TestMetricsOnAdminListener(t *testing.T) {
	cfg := testConfig(t)
	cfg.Metrics.Listen = "127.0.0.1:0"
	m, stop := startMain(t, cfg)
	defer stop()
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get(m.URL() + path); code != 200 {
			t.Errorf("public %s: %d, want 200", path, code)
		}
	}
	if code, _ := get(m.URL() + "/metrics"); code != 404 {
		t.Errorf("public /metrics with metrics.listen set: %d, want 404", code)
	}
	admin := "http://" + m.MetricsAddr()
	if code, body := get(admin + "/metrics"); code != 200 || !strings.Contains(body, "multijuego_http_requests_total") {
		t.Errorf("admin /metrics: %d, want 200 with the HTTP metrics", code)
	}
	if code, _ := get(admin + "/healthz"); code != 404 {
		t.Errorf("admin /healthz: %d, want 404 (only /metrics there)", code)
	}
}

func TestMetricsListenConfig(t *testing.T) {
	cfg, _, err := app.LoadConfig("test", []string{"--metrics-listen", "127.0.0.1:9090"}, nil, io.Discard)
	if err != nil || cfg.Metrics.Listen != "127.0.0.1:9090" {
		t.Fatalf("--metrics-listen: %v %q", err, cfg.Metrics.Listen)
	}
	cfg = testConfig(t)
	cfg.Listen = "127.0.0.1:7350"
	for _, bad := range []string{"9090", "127.0.0.1:7350"} {
		cfg.Metrics.Listen = bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
			t.Errorf("metrics.listen %q: Validate = %v, want an error naming metrics.listen", bad, err)
		}
	}
}
