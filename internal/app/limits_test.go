package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/redistest"
)

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func getJSON(t *testing.T, url string, v any) (int, http.Header) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
		}
	}
	return res.StatusCode, res.Header
}

// Rate limits live in Redis; with Redis gone they go on in-process at
// half the rate and /readyz says degraded (200); when it is back, shared
// limits resume.
func TestLimitsRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(t)
	cfg.Roles = []string{app.RoleAuth}
	cfg.RedisURL, cfg.RedisPrefix = srv.URL(), redistest.Prefix(t)
	cfg.Limits.IP.Auth = "4/1h"
	m, stop := startMain(t, cfg)
	defer stop()
	hits := func(n int) (ok int, retry string) {
		for range n {
			res, err := http.Post(m.URL()+"/v1/auth/refresh", "application/json", strings.NewReader(`{"refresh_token":"bogus"}`))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			switch res.StatusCode {
			case 401:
				ok++
			case 429:
				retry = res.Header.Get("Retry-After")
			default:
				t.Fatalf("refresh: %d", res.StatusCode)
			}
		}
		return ok, retry
	}
	if ok, retry := hits(6); ok != 4 || retry == "" {
		t.Fatalf("Redis up: %d of 6 allowed (Retry-After %q), want 4 then 429 with Retry-After", ok, retry)
	}
	var rb readyBody
	if code, _ := getJSON(t, m.URL()+"/readyz", &rb); code != 200 || rb.Status != "ready" {
		t.Fatalf("readyz with Redis up: %d %+v", code, rb)
	}

	srv.Stop()
	// The fallback has fresh buckets at half the rule: 2 at once.
	if ok, _ := hits(5); ok != 2 {
		t.Fatalf("Redis down: %d of 5 allowed, want 2 (half of burst 4, in-process)", ok)
	}
	if code, _ := getJSON(t, m.URL()+"/readyz", &rb); code != 200 || rb.Status != "degraded" || !strings.Contains(rb.Checks["rate_limits"], "0.5 of the configured rates") {
		t.Fatalf("readyz with Redis down: %d %+v; want 200 degraded, naming the fallback rate", code, rb)
	}
	res, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"multijuego_ratelimit_degraded 1", "multijuego_ratelimit_redis_outages_total 1", "multijuego_ratelimit_fallback_checks_total "} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := getJSON(t, m.URL()+"/readyz", &rb); code == 200 && rb.Status == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after Redis came back: %+v", rb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Redis restarted empty (no persistence): the shared buckets are fresh.
	if ok, _ := hits(6); ok != 4 {
		t.Fatalf("Redis back: %d of 6 allowed, want 4 (shared buckets again)", ok)
	}
}

func TestLimitsConfigNamesKey(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.IP.Auth = "60 per minute"
	cfg.Limits.Fallback = 2
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "limits.ip.auth") || !strings.Contains(err.Error(), "limits.fallback") {
		t.Fatalf("Validate = %v; want errors naming limits.ip.auth and limits.fallback", err)
	}
	if _, _, err := app.LoadConfig("test", []string{"--limits-account-matches", "10/1m burst 2", "--limits-deny-file", "/nonexistent"}, nil, io.Discard); err != nil {
		t.Fatalf("flags: %v", err)
	}
}

// The login throttle and sign-up limit count in Redis; with Redis gone
// they go on in-process at limits.fallback (half) of every limit, /readyz
// says degraded (200) naming them, and the metrics count the outage; when
// Redis is back, the shared counts are used again.
func TestThrottleRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	cfg := testConfig(t)
	cfg.Roles = []string{app.RoleAuth}
	cfg.RedisURL, cfg.RedisPrefix = srv.URL(), redistest.Prefix(t)
	cfg.Limits.IP.Auth = "off" // only the auth service's own limits here
	cfg.Auth.SignupIPLimit, cfg.Auth.AccountIPFailures = 4, 4
	m, stop := startMain(t, cfg)
	defer stop()
	post := func(path, body string) (int, string) {
		t.Helper()
		res, err := http.Post(m.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After")
	}
	if code, _ := post("/v1/auth/register", `{"username":"owner","password":"right-horse-battery"}`); code != 201 {
		t.Fatalf("register: %d", code)
	}

	srv.Stop()
	// Sign-ups: 4 per hour shared, 2 in-process (the one made while Redis
	// was up is in Redis, not here).
	var codes []int
	for i := range 3 {
		code, _ := post("/v1/auth/device", fmt.Sprintf(`{"device_id":"device-%d-abcdefghijklmnop"}`, i))
		codes = append(codes, code)
	}
	if !slices.Equal(codes, []int{201, 201, 429}) && !slices.Equal(codes, []int{200, 200, 429}) {
		t.Fatalf("guest sign-ups with Redis down: %v, want two then 429 (half of signup_ip_limit 4)", codes)
	}
	// Failed logins: 4 per (account, IP) shared, 2 in-process.
	wrong := `{"username":"owner","password":"wrong-horse-battery"}`
	codes = codes[:0]
	for range 3 {
		code, retry := post("/v1/auth/login", wrong)
		codes = append(codes, code)
		if code == 429 && retry == "" {
			t.Error("429 without Retry-After")
		}
	}
	if !slices.Equal(codes, []int{401, 401, 429}) {
		t.Fatalf("wrong passwords with Redis down: %v, want 401 401 429 (half of account_ip_failures 4)", codes)
	}
	var rb readyBody
	if code, _ := getJSON(t, m.URL()+"/readyz", &rb); code != 200 || rb.Status != "degraded" || !strings.Contains(rb.Checks["login_throttle"], "0.5 of their limits") {
		t.Fatalf("readyz with Redis down: %d %+v; want 200 degraded, login_throttle naming the fallback", code, rb)
	}
	metrics := getText(t, m.URL()+"/metrics")
	for _, want := range []string{"multijuego_auth_throttle_degraded 1", "multijuego_auth_throttle_store_outages_total 1", "multijuego_auth_throttle_failed_open_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(metrics, "multijuego_auth_throttle_fallback_ops_total 0\n") {
		t.Error("multijuego_auth_throttle_fallback_ops_total is 0 after an outage")
	}

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := getJSON(t, m.URL()+"/readyz", &rb); code == 200 && rb.Status == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after Redis came back: %+v", rb)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The shared counts again (Redis restarted empty): the owner gets in.
	if code, _ := post("/v1/auth/login", `{"username":"owner","password":"right-horse-battery"}`); code != 200 {
		t.Fatalf("login after Redis came back: %d, want 200", code)
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
