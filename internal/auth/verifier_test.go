package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// jwksServer serves an auth service's JWKS the way the auth role does,
// counting requests; broken makes it answer 500.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int64
	broken atomic.Bool
}

func serveJWKS(t testing.TB, s *auth.Service) *jwksServer {
	j := &jwksServer{}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.hits.Add(1)
		if j.broken.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(s.Keys().JWKS())
	}))
	t.Cleanup(j.Close)
	return j
}

func newVerifier(t testing.TB, st auth.AccountReader, url string, clk *clock) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(ctx, testConfig(), auth.VerifierDeps{JWKSURL: url, Store: st, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A gateway without the auth role: tokens verified with the auth role's
// JWKS, revocations read from the shared database, rotated keys fetched on
// the first token that needs them, foreign tokens refused.
func TestVerifierWithoutAuthRole(t *testing.T) {
	st := storetest.Postgres(t)
	clk := newClock()
	dir := sealedKeys(t)
	a := newServiceIn(t, st, clk, dir)
	j := serveJWKS(t, a)
	v := newVerifier(t, st, j.URL, clk)

	pair, err := a.Register(ctx, auth.RegisterRequest{Username: "ivy", Password: "ivys-password"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Authenticate(pair.AccessToken)
	if err != nil || p.AccountID != pair.AccountID {
		t.Fatalf("verify on the gateway: %+v %v", p, err)
	}
	if prof, err := v.Profile(ctx, p.AccountID); err != nil || prof.Username != "ivy" {
		t.Fatalf("profile: %+v %v", prof, err)
	}

	// A key rotated on the auth role: the first token signed with it makes
	// the verifier fetch the set again.
	if _, err := auth.RotateKeys(dir, time.Hour, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Keys().Reload(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second) // past the once-a-second bound on re-fetches
	fresh, err := a.Login(ctx, auth.LoginRequest{Username: "ivy", Password: "ivys-password"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Authenticate(fresh.AccessToken); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if v.Keys().Len() != 2 {
		t.Fatalf("keys held: %d, want 2", v.Keys().Len())
	}

	// A token of another deployment (another keyring) is refused, and a
	// flood of unknown kids fetches the set at most once a second.
	other := newService(t, storetest.SQLite(t), clk)
	foreign, err := other.Register(ctx, auth.RegisterRequest{Username: "mallory", Password: "mallorys-password"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	before := j.hits.Load()
	for range 100 {
		_, err := v.Authenticate(foreign.AccessToken)
		wantCode(t, err, errcode.Unauthenticated)
	}
	if n := j.hits.Load() - before; n > 1 {
		t.Fatalf("100 unknown kids in the same second fetched the JWKS %d times, want at most 1", n)
	}

	// Logout on the auth role reaches the gateway at its next sync.
	if err := a.Logout(ctx, p, meta); err != nil {
		t.Fatal(err)
	}
	if err := v.Denylist().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = v.Authenticate(pair.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)
	if !v.Revoked(p) {
		t.Fatal("Revoked says no for a logged-out token")
	}

	// The auth role is down: keys already held keep verifying.
	j.broken.Store(true)
	clk.Advance(2 * time.Second)
	if err := v.Keys().Refresh(ctx); err == nil {
		t.Fatal("a failed JWKS fetch reported no error")
	}
	if _, err := v.Authenticate(fresh.AccessToken); err != nil {
		t.Fatalf("verify while the auth role is down: %v", err)
	}
	// A verifier cannot start without the key set.
	if _, err := auth.NewVerifier(ctx, testConfig(), auth.VerifierDeps{JWKSURL: j.URL, Store: st, Now: clk.Now}); err == nil {
		t.Fatal("a verifier started without its JWKS")
	}
}

func TestParseJWKS(t *testing.T) {
	x := "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" // 32 bytes, base64url
	for _, tc := range []struct {
		name, doc string
		keys      int
		ok        bool
	}{
		{"one key", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"k1","alg":"EdDSA","use":"sig"}]}`, 1, true},
		{"no alg or use", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"k1"}]}`, 1, true},
		{"empty set", `{"keys":[]}`, 0, true},
		{"other key types skipped", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"},{"kty":"OKP","crv":"X25519","x":"` + x + `","kid":"x"}]}`, 0, true},
		{"encryption key skipped", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"k1","use":"enc"}]}`, 0, true},
		{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"k1"}]}`, 0, false},
		{"padded x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `=","kid":"k1"}]}`, 0, false},
		{"no kid", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}]}`, 0, false},
		{"no keys member", `{}`, 0, false},
		{"not JSON", `<html>`, 0, false},
	} {
		keys, err := auth.ParseJWKS([]byte(tc.doc))
		if (err == nil) != tc.ok || len(keys) != tc.keys {
			t.Errorf("%s: got %d keys, err %v; want %d keys, ok %v", tc.name, len(keys), err, tc.keys, tc.ok)
		}
	}
}

// FuzzParseJWKS: any document gives keys of the right size or an error,
// never a panic.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := auth.ParseJWKS(doc)
		if err != nil && keys != nil {
			t.Fatal("keys and an error")
		}
		for kid, k := range keys {
			if kid == "" || len(k) != 32 {
				t.Fatalf("key %q of %d bytes", kid, len(k))
			}
		}
	})
}

// BenchmarkVerifierFirstSeen is the gateway's check of a token it has not
// seen before, keys from the auth role's JWKS: a full Ed25519 signature
// check each time.
func BenchmarkVerifierFirstSeen(b *testing.B) {
	s, clk, st := benchServiceStore(b, false)
	j := serveJWKS(b, s)
	v, err := auth.NewVerifier(ctx, testConfig(), auth.VerifierDeps{JWKSURL: j.URL, Store: st, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	const n = 4096
	tokens := distinctTokens(b, s, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Tokens().VerifyUncached(tokens[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifierRepeat is the gateway's check of tokens seen before
// (the bounded cache; expiry and deny list checked every time).
func BenchmarkVerifierRepeat(b *testing.B) {
	s, clk, st := benchServiceStore(b, false)
	j := serveJWKS(b, s)
	v, err := auth.NewVerifier(ctx, testConfig(), auth.VerifierDeps{JWKSURL: j.URL, Store: st, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	const users = 64
	tokens := make([]string, users)
	for i := range tokens {
		pair, err := s.Register(ctx, auth.RegisterRequest{Username: fmt.Sprint("bench", i), Password: "bench-password"}, meta)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = pair.AccessToken
		if _, err := v.Authenticate(pair.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1))
		for pb.Next() {
			if _, err := v.Authenticate(tokens[i%users]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
