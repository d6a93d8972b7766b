package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/redistest"
)

// metricRef finds the metric names a PromQL expression uses: the
// binary's own (multijuego_) and the Go runtime and process collectors'.
var metricRef = regexp.MustCompile(`\b(?:multijuego|go|process)_[a-z0-9_]+\b`)

// alertRules is deploy/prometheus/alerts.yml, decoded strictly.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboard is the part of deploy/grafana/multijuego.json the test reads.
type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// usedMetrics reads the dashboard and the alert rules, checks their shape,
// and returns every metric name their expressions use, each with where.
func usedMetrics(t *testing.T) map[string]string {
	t.Helper()
	used := map[string]string{gameMetric: "the game nodes' HPA (deploy/helm)"}
	raw, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || !slices.Contains([]string{"warning", "critical"}, r.Labels["severity"]) {
				t.Errorf("alert %q: wants a name, an expr, a summary and severity warning or critical", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			for _, m := range metricRef.FindAllString(r.Expr, -1) {
				used[m] = "alert " + r.Alert
			}
		}
	}
	if n < 5 {
		t.Errorf("%d alert rules, want the set docs/operations.md describes", n)
	}
	raw, err = os.ReadFile("grafana/multijuego.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("multijuego.json: %v", err)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			refs := metricRef.FindAllString(tg.Expr, -1)
			if len(refs) == 0 {
				t.Errorf("panel %q: query %q uses no multijuego metric", p.Title, tg.Expr)
			}
			for _, m := range refs {
				used[m] = "panel " + p.Title
			}
		}
	}
	return used
}

// TestMetricsExist: every metric the dashboard, the alert rules and the
// game nodes' autoscaler use is one multijuego exports. A process with
// every role (on Redis, so the rate limiter's and throttles' Redis
// metrics exist) is started, a player signs in and creates a match, so
// the per-request and per-tick series exist too, and /metrics is read.
func TestMetricsExist(t *testing.T) {
	used := usedMetrics(t)
	exported := scrape(t)
	for m, where := range used {
		if !exported[m] {
			t.Errorf("%s (%s) is not exported", m, where)
		}
	}
}

func scrape(t *testing.T) map[string]bool {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Auth.Argon2MemoryKiB, cfg.Auth.Argon2Iterations = 8192, 1
	cfg.RedisURL, cfg.RedisPrefix = redistest.URL(t), redistest.Prefix(t)
	ctx, cancel := context.WithCancel(context.Background())
	m := &app.Main{Config: cfg, Modes: []app.Mode{{Name: tictactoe.Mode, Factory: tictactoe.New}}}
	if err := m.Open(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		m.Close()
	})

	post := func(path, token, body string) []byte {
		req, _ := http.NewRequest("POST", m.URL()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
		}
		return b
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(post("/v1/auth/device", "", `{"device_id":"device-observability-test"}`), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("device login: %v %+v", err, tok)
	}
	post("/v1/matches", tok.AccessToken, `{"mode":"tictactoe"}`)

	deadline := time.Now().Add(10 * time.Second)
	for {
		series := readMetrics(t, m.URL()+"/metrics")
		if series["multijuego_match_tick_seconds_bucket"] {
			return series
		}
		if time.Now().After(deadline) {
			t.Fatal("no match tick observed within 10s of creating a match")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readMetrics returns the names of the series in a text exposition.
func readMetrics(t *testing.T, url string) map[string]bool {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}
