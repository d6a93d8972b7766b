// Package sealtest is the conformance suite every seal.Provider passes.
package sealtest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/multijuego/multijuego/internal/seal"
)

// Setup makes a fresh provider for one subtest, and a function that
// rotates its key-encryption key (as `multijuego keys rotate` would).
type Setup func(t *testing.T) (p seal.Provider, rotate func())

// Provider runs the conformance suite against the providers setup makes.
func Provider(t *testing.T, setup Setup) {
	t.Run("WrapUnwrap", func(t *testing.T) { wrapUnwrap(t, setup) })
	t.Run("Tampered", func(t *testing.T) { tampered(t, setup) })
	t.Run("Rotation", func(t *testing.T) { rotation(t, setup) })
	t.Run("Concurrent", func(t *testing.T) { concurrent(t, setup) })
	t.Run("Sealer", func(t *testing.T) { sealer(t, setup) })
}

func key(b byte) []byte { return bytes.Repeat([]byte{b}, seal.KeySize) }

func wrapUnwrap(t *testing.T, setup Setup) {
	ctx := context.Background()
	p, _ := setup(t)
	w1, err := p.Wrap(ctx, key(7), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	w2, err := p.Wrap(ctx, key(7), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(w1, w2) {
		t.Error("two wraps of one key are equal: no fresh nonce")
	}
	if bytes.Contains(w1, key(7)) {
		t.Error("the wrapped key contains the plain key")
	}
	got, err := p.Unwrap(ctx, w1, []byte("aad"))
	if err != nil || !bytes.Equal(got, key(7)) {
		t.Fatalf("Unwrap = %x, %v; want the key back", got, err)
	}
	if _, err := p.Unwrap(ctx, w1, []byte("other")); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("Unwrap with another aad: %v, want ErrOpen", err)
	}
	v, err := p.Version(w1)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := p.Current(ctx); err != nil || cur != v {
		t.Errorf("Version = %q, Current = %q, %v; want equal", v, cur, err)
	}
}

func tampered(t *testing.T, setup Setup) {
	ctx := context.Background()
	p, _ := setup(t)
	w, err := p.Wrap(ctx, key(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w {
		bad := bytes.Clone(w)
		bad[i] ^= 0x40
		if got, err := p.Unwrap(ctx, bad, nil); err == nil {
			t.Fatalf("byte %d flipped: Unwrap = %x, want an error", i, got)
		}
	}
	for _, bad := range [][]byte{nil, {}, w[:len(w)-1], w[:3], []byte("not a wrapped key at all, just text")} {
		if _, err := p.Unwrap(ctx, bad, nil); err == nil {
			t.Errorf("Unwrap(%q) succeeded", bad)
		}
	}
}

func rotation(t *testing.T, setup Setup) {
	ctx := context.Background()
	p, rotate := setup(t)
	old, err := p.Wrap(ctx, key(2), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := p.Current(ctx)
	rotate()
	v2, err := p.Current(ctx)
	if err != nil || v2 == v1 {
		t.Fatalf("Current after rotate = %q, %v; before %q", v2, err, v1)
	}
	if got, err := p.Unwrap(ctx, old, []byte("a")); err != nil || !bytes.Equal(got, key(2)) {
		t.Fatalf("a key wrapped before the rotation: %x, %v", got, err)
	}
	w, err := p.Wrap(ctx, key(3), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := p.Version(w); v != v2 {
		t.Errorf("a key wrapped after the rotation is under %q, want %q", v, v2)
	}
}

func concurrent(t *testing.T, setup Setup) {
	ctx := context.Background()
	p, _ := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for range 20 {
				w, err := p.Wrap(ctx, key(byte(g)), []byte{byte(g)})
				if err == nil {
					var got []byte
					got, err = p.Unwrap(ctx, w, []byte{byte(g)})
					if err == nil && !bytes.Equal(got, key(byte(g))) {
						err = errors.New("unwrapped another key")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func sealer(t *testing.T, setup Setup) {
	ctx := context.Background()
	p, rotate := setup(t)
	s := seal.New(p, 16)
	k, err := s.NewKey(ctx, "acct-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := s.Seal(ctx, k, "acct-1", "email", []byte("ana@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("ana@")) {
		t.Fatal("the sealed value contains the plaintext")
	}
	fresh := seal.New(p, 16) // another node: nothing cached, unwraps through the provider
	if got, err := fresh.Open(ctx, k, "acct-1", "email", ct); err != nil || string(got) != "ana@example.com" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, err := s.NewKey(ctx, "acct-2", 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, try := range map[string]func() ([]byte, error){
		"other record":      func() ([]byte, error) { return fresh.Open(ctx, k, "acct-2", "email", ct) },
		"other field":       func() ([]byte, error) { return fresh.Open(ctx, k, "acct-1", "ip", ct) },
		"other owner's key": func() ([]byte, error) { return fresh.Open(ctx, other, "acct-1", "email", ct) },
		"key moved to owner": func() ([]byte, error) {
			return seal.New(p, 1).Open(ctx, seal.Key{Owner: "acct-2", ID: 1, Wrapped: k.Wrapped}, "acct-1", "email", ct)
		},
	} {
		if got, err := try(); err == nil {
			t.Errorf("%s: Open = %q, want an error", name, got)
		}
	}
	if _, changed, err := s.Rewrap(ctx, k); err != nil || changed {
		t.Errorf("Rewrap of a key under the current KEK: changed=%v, %v", changed, err)
	}
	rotate()
	k2, changed, err := s.Rewrap(ctx, k)
	if err != nil || !changed || bytes.Equal(k2.Wrapped, k.Wrapped) {
		t.Fatalf("Rewrap after a rotation: changed=%v, %v", changed, err)
	}
	if got, err := seal.New(p, 1).Open(ctx, k2, "acct-1", "email", ct); err != nil || string(got) != "ana@example.com" {
		t.Fatalf("Open with the rewrapped key = %q, %v", got, err)
	}
}
