package auth_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/store"
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
	return benchServiceOn(b, storetest.SQLite, defaults)
}

// benchServiceOn is benchServiceStore on the store open returns.
func benchServiceOn(b *testing.B, open func(testing.TB) *store.Store, defaults bool) (*auth.Service, *clock, auth.Store) {
	b.Helper()
	clk := newClock()
	cfg := auth.DefaultConfig()
	if !defaults {
		cfg = testConfig()
	}
	cfg.LoginIPLimit, cfg.AccountIPFailures, cfg.AccountFailures, cfg.SignupIPLimit = 1<<30, 1<<30, 1<<30, 1<<30
	st := open(b)
	s, err := auth.New(ctx, cfg, sealedKeys(b), auth.Deps{Store: st, KV: memKV(b, clk.Now), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	return s, clk, st
}

// distinctTokens registers an account with s and returns n access tokens
// of it, each from a refresh: none equal to another.
func distinctTokens(b *testing.B, s *auth.Service, n int) []string {
	b.Helper()
	pair, err := s.Register(ctx, auth.RegisterRequest{Username: "bench", Password: "bench-password"}, meta)
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, n)
	for i := range tokens {
		p, err := s.Refresh(ctx, pair.RefreshToken, meta)
		if err != nil {
			b.Fatal(err)
		}
		pair.RefreshToken = p.RefreshToken
		tokens[i] = p.AccessToken
	}
	return tokens
}

// BenchmarkVerifyFirstSeen verifies tokens the node has not seen before: a
// full Ed25519 signature check each time.
func BenchmarkVerifyFirstSeen(b *testing.B) {
	s, _ := benchService(b, false)
	// Distinct tokens, issued ahead of time; the cache is bypassed by
	// using a service whose cache never sees them twice.
	const n = 4096
	tokens := distinctTokens(b, s, n)
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

var benchEngines = []struct {
	name string
	open func(testing.TB) *store.Store
}{{"sqlite", storetest.SQLite}, {"sqlite-sealed", sealed(storetest.SQLite)},
	{"postgres", storetest.Postgres}, {"postgres-sealed", sealed(storetest.Postgres)}}

// sealed opens stores that seal personal data, as nodes do (seal.personal_data):
// the "-sealed" variants against the plain ones, same run, are the cost of
// sealing the audit rows' addresses (and making data keys for new accounts).
func sealed(open func(testing.TB) *store.Store) func(testing.TB) *store.Store {
	return func(tb testing.TB) *store.Store {
		s := open(tb)
		storetest.Protect(tb, s)
		return s
	}
}

// parallel50 makes RunParallel use about 50 goroutines, the load tool's
// default concurrency, whatever GOMAXPROCS is.
func parallel50(b *testing.B) { b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0))) }

// reportBatches reports the group commit's mean batch over the timed part.
func reportBatches(b *testing.B, s *auth.Service, before auth.LoginCommitStats) {
	after := s.LoginCommits()
	if n := after.Batches - before.Batches; n > 0 {
		b.ReportMetric(float64(after.Logins-before.Logins)/float64(n), "logins/commit")
	}
}

// BenchmarkDeviceLogin is the device login of an existing device (throttle
// check, device lookup, session and audit rows committed by the group
// commit, token signing), from about 50 goroutines, on SQLite and
// PostgreSQL. Compare with the load tool: multijuego bots --mode auth.
//
// Its "chaining" variants run the service (Run) meanwhile, so the audit
// chainer updates the rows the logins write (auditchain.go): compare
// logins/s with and without, same run.
func BenchmarkDeviceLogin(b *testing.B) {
	for _, e := range benchEngines {
		for _, chaining := range []bool{false, true} {
			name := e.name
			if chaining {
				name += "-chaining"
			}
			b.Run(name, func(b *testing.B) { benchDeviceLogin(b, e.open, chaining) })
		}
	}
}

func benchDeviceLogin(b *testing.B, open func(testing.TB) *store.Store, chaining bool) {
	s, _, _ := benchServiceOn(b, open, true)
	if chaining {
		runCtx, cancel := context.WithCancel(ctx)
		stopped := make(chan error, 1)
		go func() { stopped <- s.Run(runCtx) }()
		defer func() { cancel(); <-stopped }()
	}
	const devices = 1000
	for i := range devices {
		if _, err := s.Device(ctx, fmt.Sprintf("bench-device-%04d", i), meta); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	parallel50(b)
	before := s.LoginCommits()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Device(ctx, fmt.Sprintf("bench-device-%04d", next.Add(1)%devices), meta); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportBatches(b, s, before)
}

// BenchmarkDeviceSignup is a device's first login (a guest account, its
// device, session and audit rows), from about 50 goroutines, on SQLite and
// PostgreSQL.
func BenchmarkDeviceSignup(b *testing.B) {
	for _, e := range benchEngines {
		b.Run(e.name, func(b *testing.B) {
			s, _, _ := benchServiceOn(b, e.open, true)
			var next atomic.Int64
			parallel50(b)
			before := s.LoginCommits()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, err := s.Device(ctx, fmt.Sprintf("bench-new-device-%09d", next.Add(1)), meta)
					if err != nil || !p.Created {
						b.Errorf("first login: created %v, err %v", p.Created, err)
						return
					}
				}
			})
			b.StopTimer()
			reportBatches(b, s, before)
		})
	}
}
