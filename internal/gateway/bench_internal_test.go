package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// BenchmarkEdgeAuth is the per-request cost of authentication at the edge:
// the edge middleware (request id, metrics, access log to a discarding
// logger) and the Bearer check in front of a handler that does nothing.
// "repeat" sends one token again and again (the token cache answers);
// "first-seen" sends a token the node has never verified (a full Ed25519
// check). Results: docs/benchmarks.md.
func BenchmarkEdgeAuth(b *testing.B) {
	st := storetest.SQLite(b)
	acfg := auth.DefaultConfig()
	acfg.Argon2MemoryKiB, acfg.Argon2Iterations = 64, 1
	acfg.LoginIPLimit, acfg.SignupIPLimit = 1<<30, 1<<30
	svc, err := auth.New(context.Background(), acfg, auth.KeysDir{Path: b.TempDir()}, auth.Deps{Store: st, KV: kv.NewMemory(kv.MemoryOptions{})})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(DefaultConfig(), Deps{Auth: svc, Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	h := s.edge(s.authenticated(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	pair, err := svc.Register(context.Background(), auth.RegisterRequest{Username: "bench", Password: "bench-password"}, auth.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	serve := func(b *testing.B, token string) {
		req := httptest.NewRequest("GET", "/bench", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d", rec.Code)
		}
	}
	b.Run("repeat", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serve(b, pair.AccessToken)
			}
		})
	})
	b.Run("first-seen", func(b *testing.B) {
		tokens := make([]string, 0, 2048)
		for len(tokens) < cap(tokens) {
			p, err := svc.Refresh(context.Background(), pair.RefreshToken, auth.Meta{})
			if err != nil {
				b.Fatal(err)
			}
			pair.RefreshToken = p.RefreshToken
			tokens = append(tokens, p.AccessToken)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// Past the pre-issued tokens every one is a cache hit, so
			// keep b.N within them: -benchtime=2000x.
			serve(b, tokens[i%len(tokens)])
		}
	})
}
