//go:build cgo

package hsm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/multijuego/multijuego/internal/logtest"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/seal/hsm"
	"github.com/multijuego/multijuego/internal/seal/hsm/softhsmtest"
)

func withLog(opts hsm.Options) (hsm.Options, *logtest.Buffer) {
	l := &logtest.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(l, nil))
	return opts, l
}

func roundTrip(t *testing.T, p *hsm.Provider, b byte) {
	t.Helper()
	ctx := context.Background()
	w, err := p.Wrap(ctx, bytes.Repeat([]byte{b}, seal.KeySize), []byte("aad"))
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	got, err := p.Unwrap(ctx, w, []byte("aad"))
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{b}, seal.KeySize)) {
		t.Fatalf("Unwrap = %x, %v; want the key back", got, err)
	}
}

// C_CloseAllSessions on the token's slot (what the library does to the
// process's sessions when the HSM restarts) invalidates every session of
// the provider: the next operations reopen once, log it, and succeed, on
// keys wrapped before too.
func TestReopenAfterSessionsClosed(t *testing.T) {
	ctx := context.Background()
	opts, log := withLog(softhsmtest.Token(t))
	p := open(t, opts)
	before, err := p.Wrap(ctx, bytes.Repeat([]byte{1}, seal.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, slot := softhsmtest.Library(t, opts.Module, opts.Token)
	if err := c.CloseAllSessions(slot); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Unwrap(ctx, before, nil); err != nil || got[0] != 1 {
		t.Fatalf("Unwrap after the sessions closed = %x, %v; want the key back", got, err)
	}
	for i := range 8 { // every session of the pool, replaced as taken
		roundTrip(t, p, byte(i))
	}
	if cur, err := p.Current(ctx); err != nil || cur != "pkcs11:1" {
		t.Errorf("Current = %q, %v; want pkcs11:1", cur, err)
	}
	if n := p.Reopens(); n != 1 {
		t.Errorf("Reopens = %d, want 1", n)
	}
	if got := log.String(); strings.Count(got, "reopened") != 1 || !strings.Contains(got, "CKR_SESSION_HANDLE_INVALID") {
		t.Errorf("log: %q; want one reopen, caused by CKR_SESSION_HANDLE_INVALID", got)
	}
	if v, err := p.Rotate(ctx); err != nil || v != "pkcs11:2" {
		t.Errorf("Rotate after the reopen = %q, %v", v, err)
	}
}

// Many callers find the sessions gone at once: one reopens, the others
// wait for it and use its sessions.
func TestReopenOnceUnderConcurrency(t *testing.T) {
	opts, log := withLog(softhsmtest.Token(t))
	opts.Sessions = 4
	p := open(t, opts)
	roundTrip(t, p, 1)
	c, slot := softhsmtest.Library(t, opts.Module, opts.Token)
	for round := range 3 {
		if err := c.CloseAllSessions(slot); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			wg.Go(func() {
				w, err := p.Wrap(context.Background(), bytes.Repeat([]byte{byte(i)}, seal.KeySize), nil)
				if err == nil {
					_, err = p.Unwrap(context.Background(), w, nil)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if n := p.Reopens(); n != uint64(round+1) {
			t.Fatalf("after %d closings: Reopens = %d, want %d (one reopen each)\n%s", round+1, n, round+1, log)
		}
	}
}

// Another user of the library logs the process out of the token: the
// sessions are still there, so the provider logs in again on the same
// session and goes on.
func TestLoginAgainAfterLogout(t *testing.T) {
	opts, log := withLog(softhsmtest.Token(t))
	p := open(t, opts)
	roundTrip(t, p, 1)
	c, slot := softhsmtest.Library(t, opts.Module, opts.Token)
	s, err := c.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseSession(s)
	if err := c.Logout(s); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p, 2)
	if n := p.Reopens(); n != 1 {
		t.Errorf("Reopens = %d, want 1", n)
	}
	if !strings.Contains(log.String(), "logged in again") {
		t.Errorf("log: %q; want a login again", log)
	}
}

// Another user of the library finalizes it (all its state goes, as when
// a network HSM's client library resets): the provider initializes it
// again, finds the token and its keys (under new handles) and goes on.
func TestReopenAfterFinalize(t *testing.T) {
	ctx := context.Background()
	opts, _ := withLog(softhsmtest.Token(t))
	p := open(t, opts)
	before, err := p.Wrap(ctx, bytes.Repeat([]byte{1}, seal.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := softhsmtest.Library(t, opts.Module, opts.Token)
	if err := c.Finalize(); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Unwrap(ctx, before, nil); err != nil || got[0] != 1 {
		t.Fatalf("Unwrap after the library was finalized = %x, %v; want the key back", got, err)
	}
	roundTrip(t, p, 2)
	if n := p.Reopens(); n != 1 {
		t.Errorf("Reopens = %d, want 1", n)
	}
}

// The token is really gone (the library finalized and the token's files
// removed, so initializing again finds no token with that label): every
// operation fails at once with an error that says so; Close still works.
func TestTokenGone(t *testing.T) {
	ctx := context.Background()
	opts := softhsmtest.Token(t)
	p, err := hsm.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	before, err := p.Wrap(ctx, bytes.Repeat([]byte{1}, seal.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := softhsmtest.Library(t, opts.Module, opts.Token)
	if err := c.Finalize(); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(filepath.Dir(os.Getenv("SOFTHSM2_CONF")), "tokens")
	entries, err := os.ReadDir(tokens)
	if err != nil || len(entries) == 0 {
		t.Fatalf("the token's directory in %s: %v, %v", tokens, entries, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tokens, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2 { // and again: a failed reopen leaves nothing half-open
			_, err := p.Wrap(ctx, bytes.Repeat([]byte{2}, seal.KeySize), nil)
			if i == 0 {
				t.Logf("Wrap's error: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), `token "multijuego-test" went away`) ||
				!strings.Contains(err.Error(), `no token labelled "multijuego-test"`) {
				t.Errorf("Wrap with the token gone: %v; want it to say the token went away and is not there", err)
			}
			_, err = p.Unwrap(ctx, before, nil)
			if i == 0 {
				t.Logf("Unwrap's error: %v", err)
			}
			if err == nil || errors.Is(err, seal.ErrOpen) || !strings.Contains(err.Error(), "went away") {
				t.Errorf("Unwrap with the token gone: %v; want the token gone, not ErrOpen", err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("operations with the token gone did not return in 20s")
	}
	if n := p.Reopens(); n != 0 {
		t.Errorf("Reopens = %d, want 0 (none succeeded)", n)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close with the token gone: %v", err)
	}
}
