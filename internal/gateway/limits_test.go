package gateway_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/ratelimit"
)

// clock is this package's fake clock for the limiter.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// limitedEnv is a gateway with the default limits but for the rates
// mutate sets, on an in-process limiter driven by clk. The tarpit is off
// (it holds refusals in real time) unless mutate turns it on.
func limitedEnv(t *testing.T, clk *clock, trusted []string, mutate func(*gateway.Limits)) *env {
	t.Helper()
	return newEnvWith(t, func(d *gateway.Deps) {
		l := gateway.Limits{Config: gateway.DefaultLimitsConfig()}
		l.Config.Tarpit = 0
		mutate(&l)
		l.Limiter = ratelimit.NewMemory(ratelimit.MemoryOptions{Rules: l.Config.Rules(), Now: clk.Now})
		d.Limits = l
	}, func(g *gateway.Config, _ *auth.Config) { g.TrustedProxies = trusted })
}

func TestRateLimit429(t *testing.T) {
	clk := newClock()
	e := limitedEnv(t, clk, nil, func(l *gateway.Limits) {
		l.Config.IP.Auth = "2/1m"
		l.Config.IP.Other = "off"
	})
	login := []byte(`{"username":"nobody","password":"wrong-password"}`)
	for i := range 2 {
		if r := e.do("POST", "/v1/auth/login", "", "application/json", login); r.status != 401 {
			t.Fatalf("attempt %d: got %d, want 401 (within the rate)", i+1, r.status)
		}
	}
	r := e.do("POST", "/v1/auth/login", "", "application/json", login)
	if r.status != 429 {
		t.Fatalf("3rd attempt: got %d, want 429: %s", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != "30" {
		t.Fatalf("Retry-After %q, want 30 (one token of 2/1m)", got)
	}
	eb := r.errBody(t)
	if eb.Code != errcode.RateLimited || !strings.Contains(eb.Message, "limits.ip.auth") || !strings.Contains(eb.Message, "30 seconds") {
		t.Fatalf("error %+v: want rate_limited naming limits.ip.auth and the wait", eb)
	}
	// Another class is not held by this one; health probes never are.
	if r := e.do("GET", "/v1/openapi.json", "", "", nil); r.status != 200 {
		t.Fatalf("openapi after auth is exhausted: %d", r.status)
	}
	for range 5 {
		if r := e.do("GET", "/healthz", "", "", nil); r.status != 200 {
			t.Fatalf("healthz limited: %d", r.status)
		}
	}
	clk.Advance(30 * time.Second)
	if r := e.do("POST", "/v1/auth/login", "", "application/json", login); r.status != 401 {
		t.Fatalf("after Retry-After: got %d, want 401", r.status)
	}
	metrics := string(e.do("GET", "/metrics", "", "", nil).body)
	if !strings.Contains(metrics, `multijuego_http_rate_limited_total{limit="ip.auth"} 1`) {
		t.Fatal("refusal not counted in multijuego_http_rate_limited_total")
	}
}

func TestRateLimitPerAccount(t *testing.T) {
	clk := newClock()
	e := limitedEnv(t, clk, nil, func(l *gateway.Limits) { l.Config.Account.Matches = "1/1m" })
	a, b := e.register("alice"), e.register("bob")
	if r := e.do("GET", "/v1/matches", a.AccessToken, "", nil); r.status != 200 {
		t.Fatalf("first list: %d %s", r.status, r.body)
	}
	r := e.do("GET", "/v1/matches", a.AccessToken, "", nil)
	if r.status != 429 || r.header.Get("Retry-After") != "60" || !strings.Contains(r.errBody(t).Message, "limits.account.matches") {
		t.Fatalf("second list by one account: %d %q %s; want 429, Retry-After 60, naming limits.account.matches", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Same address, other account: its own bucket.
	if r := e.do("GET", "/v1/matches", b.AccessToken, "", nil); r.status != 200 {
		t.Fatalf("other account: %d", r.status)
	}
}

func TestRateLimitTrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		hdr     func(ip string) []string
		apart   bool // two forwarded clients get separate buckets
	}{
		{"untrusted peer: Forwarded ignored", nil, func(ip string) []string { return []string{"Forwarded", "for=" + ip} }, false},
		{"untrusted peer: X-Forwarded-For ignored", nil, func(ip string) []string { return []string{"X-Forwarded-For", ip} }, false},
		{"trusted proxy: Forwarded", []string{"127.0.0.0/8"}, func(ip string) []string { return []string{"Forwarded", `for="` + ip + `:4711";proto=https`} }, true},
		{"trusted proxy: X-Forwarded-For", []string{"127.0.0.0/8"}, func(ip string) []string { return []string{"X-Forwarded-For", "203.0.113.99, " + ip} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := limitedEnv(t, newClock(), tc.trusted, func(l *gateway.Limits) { l.Config.IP.Other = "1/1m" })
			if r := e.do("GET", "/v1/openapi.json", "", "", nil, tc.hdr("198.51.100.1")...); r.status != 200 {
				t.Fatalf("first client: %d", r.status)
			}
			r := e.do("GET", "/v1/openapi.json", "", "", nil, tc.hdr("198.51.100.2")...)
			if got := r.status == 200; got != tc.apart {
				t.Fatalf("second client: %d; separate buckets %v, want %v", r.status, got, tc.apart)
			}
			if r := e.do("GET", "/v1/openapi.json", "", "", nil, tc.hdr("198.51.100.1")...); r.status != 429 {
				t.Fatalf("first client again: %d, want 429", r.status)
			}
		})
	}
}

func TestDenyAllowListsReload(t *testing.T) {
	dir := t.TempDir()
	denyPath, allowPath := filepath.Join(dir, "deny"), filepath.Join(dir, "allow")
	write := func(path, content string, mtime int64) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, time.Unix(mtime, 0), time.Unix(mtime, 0)); err != nil {
			t.Fatal(err)
		}
	}
	write(denyPath, "198.51.100.0/24\n", 1)
	write(allowPath, "198.51.100.7\n", 1)
	deny, err := ratelimit.LoadIPList(denyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := ratelimit.LoadIPList(allowPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := limitedEnv(t, newClock(), []string{"127.0.0.0/8"}, func(l *gateway.Limits) {
		l.Config.IP.Other = "1/1m"
		l.Deny, l.Allow = deny, allow
	})
	get := func(ip string) resp { return e.do("GET", "/healthz", "", "", nil, "X-Forwarded-For", ip) }
	r := get("198.51.100.1")
	if r.status != 403 || r.errBody(t).Code != errcode.PermissionDenied || !strings.Contains(string(r.body), "limits.deny_file") {
		t.Fatalf("denied address: %d %s; want 403 naming limits.deny_file (before anything else, health included)", r.status, r.body)
	}
	// The allow list wins over the deny list, and over the rates.
	for range 3 {
		if r := e.do("GET", "/v1/openapi.json", "", "", nil, "X-Forwarded-For", "198.51.100.7"); r.status != 200 {
			t.Fatalf("allowed address: %d", r.status)
		}
	}
	write(denyPath, "203.0.113.0/24\n", 2)
	if changed, err := deny.Reload(false); !changed || err != nil {
		t.Fatalf("Reload = %v, %v", changed, err)
	}
	if r := get("198.51.100.1"); r.status != 200 {
		t.Fatalf("after reload, formerly denied: %d", r.status)
	}
	if r := get("203.0.113.5"); r.status != 403 {
		t.Fatalf("after reload, newly denied: %d", r.status)
	}
	if !deny.Contains(netip.MustParseAddr("203.0.113.5")) {
		t.Fatal("list not swapped")
	}
}

func TestRateLimitLoopbackDevServer(t *testing.T) {
	e := limitedEnv(t, newClock(), nil, func(l *gateway.Limits) {
		l.Config.IP.Other = "1/1m"
		l.LoopbackUnlimited = true
	})
	for range 5 {
		if r := e.do("GET", "/v1/openapi.json", "", "", nil); r.status != 200 {
			t.Fatalf("loopback client on a dev server: %d, want never limited", r.status)
		}
	}
}

func TestReadyzDegraded(t *testing.T) {
	down := errors.New("Redis unreachable since ...; limiting in-process at 0.5 of the configured rates")
	e := newEnvWith(t, func(d *gateway.Deps) {
		d.Ready = append(d.Ready, gateway.ReadyDegraded("rate_limits", func(context.Context) error { return down }))
	})
	r := e.do("GET", "/readyz", "", "", nil)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	r.json(t, &body)
	if r.status != 200 || body.Status != "degraded" || !strings.Contains(body.Checks["rate_limits"], "0.5") {
		t.Fatalf("readyz: %d %s; want 200 degraded with the reason", r.status, r.body)
	}
	e = newEnvWith(t, func(d *gateway.Deps) {
		d.Ready = append(d.Ready, gateway.ReadyDegraded("rate_limits", func(context.Context) error { return down }),
			gateway.ReadyCheck{Name: "database", Check: func(context.Context) error { return errors.New("down") }})
	})
	if r := e.do("GET", "/readyz", "", "", nil); r.status != 503 || !strings.Contains(string(r.body), "not_ready") {
		t.Fatalf("readyz with a hard failure too: %d %s; want 503 not_ready", r.status, r.body)
	}
}

func TestRouteClassesDefaultsValid(t *testing.T) {
	rules := gateway.DefaultLimitsConfig().Rules()
	for _, subject := range []string{"ip", "account"} {
		for _, class := range []string{"auth", "account", "matches", "records", "admin", "other"} {
			if _, ok := rules[subject+"."+class]; !ok {
				t.Errorf("no rule for %s.%s", subject, class)
			}
		}
	}
	if rules["ip.auth"].Off() || rules["account.matches"].Off() {
		t.Error("production defaults leave auth or match creation unlimited")
	}
}

// countingLimiter counts the limiter calls a request makes: on Redis each
// call is one round trip (AllowAll pipelines its checks).
type countingLimiter struct {
	*ratelimit.Memory
	singles, batches atomic.Int64
}

func (c *countingLimiter) Allow(ctx context.Context, class, subject string) (ratelimit.Decision, error) {
	c.singles.Add(1)
	return c.Memory.Allow(ctx, class, subject)
}

func (c *countingLimiter) AllowAll(ctx context.Context, checks []ratelimit.Check) ([]ratelimit.Decision, error) {
	c.batches.Add(1)
	return c.Memory.AllowAll(ctx, checks)
}

// An authenticated request's address and account checks go to the
// limiter together, once; a request without a good token makes the
// address check alone, and a bad token still gets its 401.
func TestRateLimitOneCallPerRequest(t *testing.T) {
	clk := newClock()
	var cl *countingLimiter
	e := newEnvWith(t, func(d *gateway.Deps) {
		l := gateway.Limits{Config: gateway.DefaultLimitsConfig()}
		cl = &countingLimiter{Memory: ratelimit.NewMemory(ratelimit.MemoryOptions{Rules: l.Config.Rules(), Now: clk.Now})}
		l.Limiter = cl
		d.Limits = l
	})
	a := e.register("counted")
	calls := func(method, path, token string, want int) {
		t.Helper()
		cl.singles.Store(0)
		cl.batches.Store(0)
		if r := e.do(method, path, token, "", nil); r.status != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, want, r.body)
		}
	}
	calls("GET", "/v1/matches", a.AccessToken, 200)
	if s, b := cl.singles.Load(), cl.batches.Load(); s != 0 || b != 1 {
		t.Errorf("authenticated request: %d single and %d batched limiter calls, want 0 and 1", s, b)
	}
	calls("GET", "/v1/matches", "", 401)
	if s, b := cl.singles.Load(), cl.batches.Load(); s != 1 || b != 0 {
		t.Errorf("request without a token: %d single and %d batched calls, want 1 and 0", s, b)
	}
	calls("GET", "/v1/matches", "not-a-token", 401)
	if s, b := cl.singles.Load(), cl.batches.Load(); s != 1 || b != 0 {
		t.Errorf("request with a bad token: %d single and %d batched calls, want 1 and 0", s, b)
	}
}
