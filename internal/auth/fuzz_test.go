package auth_test

import (
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// FuzzVerify feeds the token parser arbitrary strings, seeded with a valid
// token and pieces of it. Only the exact token we issued may verify, and
// every refusal is a plain "unauthenticated" domain error.
func FuzzVerify(f *testing.F) {
	clk := newClock()
	cfg := testConfig()
	cfg.TokenCache = 0 // exercise the parser on every input
	s, err := auth.New(ctx, cfg, auth.KeysDir{Path: f.TempDir()}, auth.Deps{Store: storetest.SQLite(f), KV: memKV(f, clk.Now), Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	pair, err := s.Register(ctx, auth.RegisterRequest{Username: "fuzzer", Password: "fuzzer-password"}, meta)
	if err != nil {
		f.Fatal(err)
	}
	valid := pair.AccessToken
	parts := strings.Split(valid, ".")
	f.Add(valid)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add(valid[:len(valid)-1] + "A")
	f.Add(pair.RefreshToken)
	f.Add("")
	f.Add("....")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := s.Authenticate(token)
		if err == nil {
			if token != valid || p.AccountID != pair.AccountID {
				t.Fatalf("accepted a token we did not issue: %q", token)
			}
			return
		}
		if e := errcode.As(err); e == nil || e.Code != errcode.Unauthenticated {
			t.Fatalf("Authenticate(%q) = %v; want an unauthenticated domain error", token, err)
		}
	})
}
