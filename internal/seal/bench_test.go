package seal_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/multijuego/multijuego/internal/seal"
)

// benchProvider measures what a provider costs the Sealer: Seal+Open of a
// field with the data key cached (no provider call), NewKey (one Wrap)
// and Unwrap (what an uncached Open pays once per owner).
func benchProvider(b *testing.B, p seal.Provider) {
	ctx := context.Background()
	s := seal.New(p, 1024)
	k, err := s.NewKey(ctx, "acct-1", 1)
	if err != nil {
		b.Fatal(err)
	}
	field := []byte("ana.maria@example.com")
	b.Run("SealOpen", func(b *testing.B) {
		for b.Loop() {
			ct, err := s.Seal(ctx, k, "acct-1", "email", field)
			if err == nil {
				_, err = s.Open(ctx, k, "acct-1", "email", ct)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("NewKey", func(b *testing.B) {
		fresh := seal.New(p, 1)
		i := 0
		for b.Loop() {
			i++
			if _, err := fresh.NewKey(ctx, "acct-"+strconv.Itoa(i), 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unwrap", func(b *testing.B) {
		aad := []byte("mj-seal-owner-v1|acct-1")
		for b.Loop() {
			if _, err := p.Unwrap(ctx, k.Wrapped, aad); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLocal(b *testing.B) {
	p, err := seal.OpenLocal(filepath.Join(b.TempDir(), "keyring"))
	if err != nil {
		b.Fatal(err)
	}
	benchProvider(b, p)
}
