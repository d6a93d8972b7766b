package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// testDeleteAccount: an erased account's row, devices, identities and
// sessions are gone, its username, email and device are free again, and
// another account is untouched.
func testDeleteAccount(t *testing.T, s *store.Store) {
	dev := ID("d1$erase")
	a := newAccount(ID("erase"))
	mustCreate(t, s, a, dev)
	f := store.RefreshFamily{ID: ID("fam"), AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	tok := store.RefreshToken{Hash: ID("hash"), FamilyID: f.ID, AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.WriteLogins(ctx, []store.LoginWrite{{Family: f, Token: tok}}); err != nil {
		t.Fatal(err)
	}
	other := newAccount(ID("keep"))
	mustCreate(t, s, other, ID("d1$keep"))
	if err := s.LinkIdentity(ctx, store.Identity{Issuer: "https://issuer.example", Subject: a.ID, AccountID: a.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccountByID(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("account after delete: %v, want not found", err)
	}
	if _, err := s.AccountByIdentity(ctx, "https://issuer.example", a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("identity after delete: %v, want not found", err)
	}
	if _, _, err := s.ConsumeRefreshToken(ctx, tok.Hash, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh token after delete: %v, want not found", err)
	}
	if err := s.DeleteAccount(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v, want not found", err)
	}
	if _, _, err := s.AccountByDeviceIDs(ctx, dev); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("device after delete: %v, want not found", err)
	}
	// The name, email and device are free for a new account.
	again := a
	again.ID = ID("acc")
	mustCreate(t, s, again, dev)
	if got, err := s.AccountByID(ctx, other.ID); err != nil || len(got.Devices) != 1 {
		t.Errorf("the other account: %+v, %v", got, err)
	}
}
