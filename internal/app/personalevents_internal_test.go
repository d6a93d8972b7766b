package app

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/logtest"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/match"
)

// A game node or gateway run without the auth role gets the vault only
// from an explicit seal.vault_url (its default, vault.db in its own keys
// dir, is not the auth nodes'): without it, nothing is opened and a
// warning names the settings; other roles open nothing.
func TestOpenPersonal(t *testing.T) {
	ctx := context.Background()
	for _, roles := range [][]string{{RoleGame}, {RoleGateway}} {
		var logs logtest.Buffer
		m := &Main{Config: DefaultConfig(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		m.Config.DataDir = t.TempDir()
		if err := openPersonal(ctx, m, roles); err != nil || m.personal != nil || m.vault != nil {
			t.Fatalf("%v without seal.vault_url: %v, personal %v", roles, err, m.personal)
		}
		if !strings.Contains(logs.String(), "seal.vault_url") {
			t.Errorf("%v: no warning naming seal.vault_url: %s", roles, logs.String())
		}
	}
	m := &Main{Config: DefaultConfig(), Logger: slog.New(slog.DiscardHandler)}
	m.Config.DataDir = t.TempDir()
	m.Config.Seal.VaultURL = "sqlite://" + filepath.Join(t.TempDir(), "vault.db")
	if err := openPersonal(ctx, m, []string{RolePersistence}); err != nil || m.personal != nil {
		t.Fatalf("persistence role: %v, %v; want nothing opened", err, m.personal)
	}
	if err := openPersonal(ctx, m, []string{RoleGame}); err != nil || m.personal == nil || m.vault == nil {
		t.Fatalf("game role with seal.vault_url: %v, %v", err, m.personal)
	}
	defer m.Close()
	s, err := m.personal.Seal(ctx, "acc-1", "event:m:e", "data", `{"a":1}`)
	if err != nil || !seal.IsSealed(s) {
		t.Fatalf("Seal: %q, %v", s, err)
	}
}

type fakeSealer struct {
	err   error
	block chan struct{}
	calls atomic.Int64
}

func (f *fakeSealer) Seal(context.Context, string, string, string, string) (string, error) {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	return "", f.err
}

// A personal event that cannot be sealed (the vault fails, the owner was
// erased) or finds the queue full is dropped and counted, never published
// in clear; after close, enqueue drops at once.
func TestPersonalEventsDrop(t *testing.T) {
	ev := match.Event{MatchID: "m", Name: "chat", Owner: "acc-1", Data: []byte(`{"a":1}`), Created: time.Now()}
	for _, err := range []error{errors.New("vault down"), seal.ErrErased} {
		f := &fakeSealer{err: err}
		p := newPersonalEvents(f, nil, "node", slog.New(slog.DiscardHandler)) // nil publisher: must never be reached
		p.enqueue(ev)
		if err := p.close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if p.Dropped.Load() != 1 || f.calls.Load() != 1 {
			t.Errorf("%v: dropped %d, sealed %d times; want 1, 1", err, p.Dropped.Load(), f.calls.Load())
		}
		p.enqueue(ev)
		if p.Dropped.Load() != 2 {
			t.Errorf("enqueue after close: dropped %d, want 2", p.Dropped.Load())
		}
	}
	f := &fakeSealer{err: errors.New("no"), block: make(chan struct{})}
	p := newPersonalEvents(f, nil, "node", slog.New(slog.DiscardHandler))
	for i := 0; i < personalQueue+10; i++ {
		p.enqueue(ev) // one is being sealed, personalQueue wait
	}
	if n := p.Dropped.Load(); n < 9 {
		t.Errorf("queue full: dropped %d, want at least 9", n)
	}
	close(f.block)
	if err := p.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := p.Dropped.Load(); n != personalQueue+10 {
		t.Errorf("dropped %d in all, want %d", n, personalQueue+10)
	}
}
