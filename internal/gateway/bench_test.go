package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
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
	svc, err := auth.New(context.Background(), acfg, b.TempDir(), auth.Deps{Store: st, KV: newKV(b)})
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
