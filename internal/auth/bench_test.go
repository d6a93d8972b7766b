package auth_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// Results and commands: docs/benchmarks.md.

func benchService(b *testing.B, defaults bool) (*auth.Service, *clock) {
	s, clk, _ := benchServiceStore(b, defaults)
	return s, clk
}

// benchServiceStore is benchService with its store (a verifier reads the
// same database).
func benchServiceStore(b *testing.B, defaults bool) (*auth.Service, *clock, auth.Store) {
	b.Helper()
	clk := newClock()
	cfg := auth.DefaultConfig()
	if !defaults {
		cfg = testConfig()
	}
	cfg.LoginIPLimit, cfg.AccountIPFailures, cfg.AccountFailures, cfg.SignupIPLimit = 1<<30, 1<<30, 1<<30, 1<<30
	st := storetest.SQLite(b)
	s, err := auth.New(ctx, cfg, b.TempDir(), auth.Deps{Store: st, KV: memKV(b, clk.Now), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	return s, clk, st
}

// BenchmarkVerifyFirstSeen verifies tokens the node has not seen before: a
// full Ed25519 signature check each time.
func BenchmarkVerifyFirstSeen(b *testing.B) {
	s, _ := benchService(b, false)
	pair, err := s.Register(ctx, auth.RegisterRequest{Username: "bench", Password: "bench-password"}, meta)
	if err != nil {
		b.Fatal(err)
	}
	// Distinct tokens, issued ahead of time; the cache is bypassed by
	// using a service whose cache never sees them twice.
	const n = 4096
	tokens := make([]string, n)
	for i := range tokens {
		p, err := s.Refresh(ctx, pair.RefreshToken, meta)
		if err != nil {
			b.Fatal(err)
		}
		pair.RefreshToken = p.RefreshToken
		tokens[i] = p.AccessToken
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Tokens().VerifyUncached(tokens[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRepeat verifies a token the node has verified before:
// served from the bounded cache, with expiry and the deny list still
// checked on every call.
func BenchmarkVerifyRepeat(b *testing.B) {
	s, _ := benchService(b, false)
	const users = 64
	tokens := make([]string, users)
	for i := range tokens {
		pair, err := s.Register(ctx, auth.RegisterRequest{Username: fmt.Sprint("bench", i), Password: "bench-password"}, meta)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = pair.AccessToken
		if _, err := s.Authenticate(pair.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1))
		for pb.Next() {
			if _, err := s.Authenticate(tokens[i%users]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkArgon2idDefault is the raw hash time with the default
// parameters (m=19 MiB, t=2, p=1), one at a time.
func BenchmarkArgon2idDefault(b *testing.B) {
	d := auth.DefaultConfig()
	salt := []byte("0123456789abcdef")
	for i := 0; i < b.N; i++ {
		argon2.IDKey([]byte("correct horse battery"), salt, d.Argon2Iterations, d.Argon2MemoryKiB, d.Argon2Parallelism, 32)
	}
}

// BenchmarkLogin is the whole login (throttle, lookup, argon2id verify,
// session row, audit row, token signing) with the default parameters, run
// from as many goroutines as -cpu says.
func BenchmarkLogin(b *testing.B) {
	s, _ := benchService(b, true)
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "bench", Password: "bench-password"}, meta); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Login(ctx, auth.LoginRequest{Username: "bench", Password: "bench-password"}, meta); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkArgon2idDefaultParallel runs raw hashes from -cpu goroutines:
// what the hardware gives when every core hashes (memory bandwidth is
// shared, so this is slower per hash than one at a time).
func BenchmarkArgon2idDefaultParallel(b *testing.B) {
	d := auth.DefaultConfig()
	salt := []byte("0123456789abcdef")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			argon2.IDKey([]byte("correct horse battery"), salt, d.Argon2Iterations, d.Argon2MemoryKiB, d.Argon2Parallelism, 32)
		}
	})
}
