package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// testIdentities: an (issuer, subject) links to one account at most, an
// account may hold several, links come with a login's rows or alone, and
// an unlink removes only the caller's own link.
func testIdentities(t *testing.T, s *store.Store) {
	const iss = "https://issuer.example/pool"
	a, b := newAccount(ID("ida")), newAccount(ID("idb"))
	mustCreate(t, s, a, "")
	mustCreate(t, s, b, "")
	if err := s.LinkIdentity(ctx, store.Identity{Issuer: iss, Subject: "sub-1", AccountID: a.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkIdentity(ctx, store.Identity{Issuer: "https://other.example", Subject: "sub-1", AccountID: a.ID, CreatedAt: t0.Add(time.Second)}); err != nil {
		t.Fatalf("same subject at another issuer: %v", err)
	}
	var ce *store.ConflictError
	if err := s.LinkIdentity(ctx, store.Identity{Issuer: iss, Subject: "sub-1", AccountID: b.ID, CreatedAt: t0}); !errors.As(err, &ce) || ce.Field != "identity" {
		t.Fatalf("identity linked twice: %v, want a conflict on identity", err)
	}
	got, err := s.AccountByIdentity(ctx, iss, "sub-1")
	if err != nil || got.ID != a.ID || got.Username != a.Username {
		t.Fatalf("AccountByIdentity = %+v, %v; want %s", got, err, a.ID)
	}
	if _, err := s.AccountByIdentity(ctx, iss, "SUB-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("subjects compare exactly: %v, want not found", err)
	}
	ids, err := s.Identities(ctx, a.ID)
	if err != nil || len(ids) != 2 || ids[0].Issuer != iss || !ids[0].CreatedAt.Equal(t0) || ids[1].Issuer != "https://other.example" {
		t.Fatalf("Identities = %+v, %v", ids, err)
	}
	if err := s.UnlinkIdentity(ctx, b.ID, iss, "sub-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unlink of another account's identity: %v, want not found", err)
	}
	if err := s.UnlinkIdentity(ctx, a.ID, iss, "sub-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccountByIdentity(ctx, iss, "sub-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after unlink: %v, want not found", err)
	}

	// A first sign-in: account, identity, session and audit in one write;
	// the same identity in a second write conflicts and writes nothing.
	c := newAccount(ID("idc"))
	c.Email, c.PasswordHash = "", ""
	w := loginWrite(c, true, "")
	w.Identity = store.Identity{Issuer: iss, Subject: "sub-2", AccountID: c.ID, CreatedAt: t0}
	if err := s.WriteLogins(ctx, []store.LoginWrite{w}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AccountByIdentity(ctx, iss, "sub-2"); err != nil || got.ID != c.ID {
		t.Fatalf("identity written with a login: %s, %v; want %s", got.ID, err, c.ID)
	}
	d := newAccount(ID("idd"))
	d.Email, d.PasswordHash = "", ""
	w2 := loginWrite(d, true, "")
	w2.Identity = store.Identity{Issuer: iss, Subject: "sub-2", AccountID: d.ID, CreatedAt: t0}
	if err := s.WriteLogins(ctx, []store.LoginWrite{w2}); !errors.As(err, &ce) || ce.Field != "identity" {
		t.Fatalf("racing first sign-in: %v, want a conflict on identity", err)
	}
	if _, err := s.AccountByID(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the losing sign-in's account was written: %v", err)
	}
}
