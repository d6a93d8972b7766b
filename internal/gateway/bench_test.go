package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/ratelimit"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// BenchmarkAuthenticatedRequest serves GET /v1/account through the whole
// handler chain (request id, metrics, access log to a discarding logger,
// routing, Bearer check from the token cache, SQLite lookup, JSON), without
// the network. Results: docs/benchmarks.md.
func BenchmarkAuthenticatedRequest(b *testing.B) {
	st := storetest.SQLite(b)
	acfg := auth.DefaultConfig()
	acfg.Argon2MemoryKiB, acfg.Argon2Iterations = 64, 1
	svc, err := auth.New(context.Background(), acfg, auth.KeysDir{Path: b.TempDir()}, auth.Deps{Store: st, KV: newKV(b)})
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(gateway.DefaultConfig(), gateway.Deps{Auth: svc, Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	pair, err := svc.Register(context.Background(), auth.RegisterRequest{Username: "bench", Password: "bench-password"}, auth.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	h := gw.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/v1/account", nil)
			req.Header.Set("Authorization", "Bearer "+pair.AccessToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// BenchmarkDeviceLoginHTTP serves POST /v1/auth/device for 1,000 existing
// devices through the whole handler chain (decode, throttle, lookup,
// session and audit rows by the group commit, signing, JSON) on SQLite,
// with the account and device caches of a server (in memory),
// from about 50 goroutines, without the network: the server's share of
// what multijuego bots --mode auth measures.
func BenchmarkDeviceLoginHTTP(b *testing.B) {
	st := storetest.SQLite(b)
	mem := cache.NewMemory(cache.MemoryOptions{})
	b.Cleanup(func() { mem.Close() })
	svc, err := auth.New(context.Background(), auth.DefaultConfig(), auth.KeysDir{Path: b.TempDir()}, auth.Deps{Store: st, KV: newKV(b), LoopbackSignups: true,
		Profiles: cache.NewTyped[auth.Profile](mem, "account", 1, cache.TypedOptions{}), ProfileTTL: 5 * time.Minute,
		Devices: cache.NewTyped[string](mem, "device", 1, cache.TypedOptions{})})
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(gateway.DefaultConfig(), gateway.Deps{Auth: svc, Registry: prometheus.NewRegistry(), LoopbackExempt: true})
	if err != nil {
		b.Fatal(err)
	}
	h := gw.Handler()
	login := func(i int64) error {
		req := httptest.NewRequest("POST", "/v1/auth/device", strings.NewReader(fmt.Sprintf(`{"device_id":"bench-device-%04d"}`, i%1000)))
		req.RemoteAddr = "127.0.0.1:5555"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusCreated {
			return fmt.Errorf("status %d: %s", rec.Code, rec.Body)
		}
		return nil
	}
	for i := range int64(1000) {
		if err := login(i); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := login(next.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRateLimitedRequest serves POST /v1/auth/login from one address
// whose limits.ip.auth is spent, through the whole handler chain (request
// id, metrics, the in-process limiter, the 429 and its JSON), without the
// network: the handler's share of a rejection, against the whole server's
// CPU per rejection that multijuego bots --mode flood --pid reports
// (scripts/bench-flood.sh).
func BenchmarkRateLimitedRequest(b *testing.B) {
	svc, err := auth.New(context.Background(), auth.DefaultConfig(), auth.KeysDir{Path: b.TempDir()}, auth.Deps{Store: storetest.SQLite(b), KV: newKV(b)})
	if err != nil {
		b.Fatal(err)
	}
	l := gateway.Limits{Config: gateway.DefaultLimitsConfig()}
	l.Config.IP.Auth = "1/1h"
	l.Config.Tarpit = 0 // the refusal's CPU, not the tarpit's hold
	l.Limiter = ratelimit.NewMemory(ratelimit.MemoryOptions{Rules: l.Config.Rules()})
	gw, err := gateway.New(gateway.DefaultConfig(), gateway.Deps{Auth: svc, Registry: prometheus.NewRegistry(), Limits: l})
	if err != nil {
		b.Fatal(err)
	}
	h := gw.Handler()
	serve := func() int {
		req := httptest.NewRequest("POST", "/v1/auth/login", strings.NewReader(`{"username":"flood-target","password":"not the password"}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	serve() // spends the one request of the hour
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if code := serve(); code != http.StatusTooManyRequests {
			b.Fatalf("status %d, want 429", code)
		}
	}
}
