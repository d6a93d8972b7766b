package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// Run is the conformance suite. Every engine the store supports must pass
// it unchanged. Stores seal personal data, as on a node.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, *store.Store)
	}{
		{"MigrateIsIdempotent", testMigrateIdempotent},
		{"AccountRoundTrip", testAccountRoundTrip},
		{"AccountLookups", testAccountLookups},
		{"AccountConflicts", testAccountConflicts},
		{"UpdateAccount", testUpdateAccount},
		{"ListAccounts", testListAccounts},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshConsumeRace", testRefreshConsumeRace},
		{"RevokeFamilies", testRevokeFamilies},
		{"Revocations", testRevocations},
		{"Prune", testPrune},
		{"Audit", testAudit},
		{"AuditChain", testAuditChain},
		{"AuditChainChanged", testAuditChainChanged},
		{"AuditChainDeleted", testAuditChainDeleted},
		{"AuditChainSwapped", testAuditChainSwapped},
		{"AuditChainLogins", testAuditChainLogins},
		{"RekeyDevices", testRekeyDevices},
		{"WriteLogins", testWriteLogins},
		{"WriteLoginsAtomic", testWriteLoginsAtomic},
		{"WriteLoginsBanned", testWriteLoginsBanned},
		{"AccountByDeviceIDs", testAccountByDeviceIDs},
		{"Identities", testIdentities},
		{"DeleteAccount", testDeleteAccount},
		{"PersonalSealed", testPersonalSealed},
		{"PersonalClear", testPersonalClear},
		{"MatchLifecycle", testMatchLifecycle},
		{"ApplyIdempotent", testApplyIdempotent},
		{"ConcurrentApply", testConcurrentApply},
		{"StartAfterEnd", testStartAfterEnd},
		{"StatsAndRating", testStatsAndRating},
		{"LeaderboardOperators", testLeaderboardOperators},
		{"LeaderboardPeriods", testLeaderboardPeriods},
		{"LeaderboardRanking", testLeaderboardRanking},
		{"PlayerMatches", testPlayerMatches},
		{"DerivedEqualsRecompute", testDerivedEqualsRecompute},
		{"MatchEvents", testMatchEvents},
		{"PersonalMatchEvents", testPersonalMatchEvents},
		{"PruneProcessed", testPruneProcessed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			if tc.name != "PersonalClear" { // it starts from rows written in clear
				Protect(t, s) // as every node that writes accounts runs
			}
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// t0 has microsecond precision, the finest both engines keep.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

func newAccount(name string) store.Account {
	return store.Account{
		ID: ID("acc"), Username: name, Email: name + "@example.com", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		Roles: []string{"player"}, CreatedAt: t0, UpdatedAt: t0,
	}
}

func mustCreate(t *testing.T, s *store.Store, a store.Account, device string) {
	t.Helper()
	if err := s.CreateAccount(ctx, a, device); err != nil {
		t.Fatalf("CreateAccount(%s): %v", a.Username, err)
	}
}

func testMigrateIdempotent(t *testing.T, s *store.Store) {
	n, err := s.Migrate(ctx)
	if err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
	}
	cur, err := s.Current(ctx)
	if err != nil || !cur {
		t.Fatalf("Current = %v, %v; want true", cur, err)
	}
	all, unknown, err := s.MigrationStatus(ctx)
	if err != nil || len(unknown) != 0 || len(all) == 0 {
		t.Fatalf("MigrationStatus = %v, %v, %v", all, unknown, err)
	}
	for _, m := range all {
		if m.AppliedAt.IsZero() {
			t.Errorf("migration %d not applied", m.Version)
		}
	}
}

func testAccountRoundTrip(t *testing.T, s *store.Store) {
	a := newAccount("Alice")
	a.Roles = []string{"player", "admin"}
	a.BannedAt = t0.Add(time.Hour)
	a.BanReason = "cheating"
	a.RevokedBefore = t0.Add(2 * time.Hour)
	mustCreate(t, s, a, "device-alice-1")
	got, err := s.AccountByID(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.Devices = []string{"device-alice-1"}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("AccountByID:\n got %+v\nwant %+v", got, a)
	}
	if !got.Banned() {
		t.Fatal("Banned() = false, want true")
	}
	// A guest: no email, no password.
	g := store.Account{ID: ID("acc"), Username: "guest-1", Roles: []string{"player"}, CreatedAt: t0, UpdatedAt: t0}
	mustCreate(t, s, g, "device-guest-1")
	got, _, err = s.AccountByDeviceIDs(ctx, "device-guest-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "" || got.PasswordHash != "" || got.Banned() || !got.RevokedBefore.IsZero() {
		t.Fatalf("guest round trip: got %+v", got)
	}
}

func testAccountLookups(t *testing.T, s *store.Store) {
	a := newAccount("BobTheBuilder")
	mustCreate(t, s, a, "")
	for name, lookup := range map[string]func() (store.Account, error){
		"username exact":  func() (store.Account, error) { return s.AccountByUsername(ctx, "BobTheBuilder") },
		"username folded": func() (store.Account, error) { return s.AccountByUsername(ctx, "bobthebuilder") },
		"email":           func() (store.Account, error) { return s.AccountByEmail(ctx, "BobTheBuilder@example.com") },
	} {
		got, err := lookup()
		if err != nil || got.ID != a.ID {
			t.Errorf("%s: got %q, %v; want %q", name, got.ID, err, a.ID)
		}
	}
	for name, lookup := range map[string]func() (store.Account, error){
		"id":       func() (store.Account, error) { return s.AccountByID(ctx, "nope") },
		"username": func() (store.Account, error) { return s.AccountByUsername(ctx, "nobody") },
		"email":    func() (store.Account, error) { return s.AccountByEmail(ctx, "nobody@example.com") },
		"device": func() (store.Account, error) {
			a, _, err := s.AccountByDeviceIDs(ctx, "no-device")
			return a, err
		},
	} {
		if _, err := lookup(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing %s: err = %v, want ErrNotFound", name, err)
		}
	}
}

func wantConflict(t *testing.T, err error, field string) {
	t.Helper()
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Field != field {
		t.Fatalf("err = %v, want conflict on %s", err, field)
	}
}

func testAccountConflicts(t *testing.T, s *store.Store) {
	a := newAccount("carol")
	mustCreate(t, s, a, "dev-carol")
	b := newAccount("CAROL")
	b.Email = "other@example.com"
	wantConflict(t, s.CreateAccount(ctx, b, ""), "username")
	c := newAccount("carol2")
	c.Email = a.Email
	wantConflict(t, s.CreateAccount(ctx, c, ""), "email")
	d := newAccount("carol3")
	wantConflict(t, s.CreateAccount(ctx, d, "dev-carol"), "device_id")
	// The failed insert with a taken device left no account behind.
	if _, err := s.AccountByUsername(ctx, "carol3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account of failed create: err = %v, want ErrNotFound", err)
	}
	// Several accounts without email do not collide.
	for i := 0; i < 3; i++ {
		g := store.Account{ID: ID("acc"), Username: fmt.Sprintf("noemail%d", i), Roles: []string{"player"}, CreatedAt: t0, UpdatedAt: t0}
		mustCreate(t, s, g, "")
	}
}

func testUpdateAccount(t *testing.T, s *store.Store) {
	a := newAccount("dave")
	mustCreate(t, s, a, "")
	other := newAccount("erin")
	mustCreate(t, s, other, "")

	a.Username = "Dave2"
	a.Email = ""
	a.PasswordHash = "new-hash"
	a.Roles = []string{"admin"}
	a.BannedAt = t0.Add(time.Minute)
	a.BanReason = "spam"
	a.RevokedBefore = t0.Add(time.Minute)
	a.UpdatedAt = t0.Add(time.Minute)
	if err := s.UpdateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.AccountByID(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("after update:\n got %+v\nwant %+v", got, a)
	}
	a.Email = other.Email
	wantConflict(t, s.UpdateAccount(ctx, a), "email")
	missing := newAccount("ghost")
	if err := s.UpdateAccount(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: err = %v, want ErrNotFound", err)
	}
}

func testListAccounts(t *testing.T, s *store.Store) {
	var ids []string
	for i := 0; i < 7; i++ {
		a := newAccount(fmt.Sprintf("lister%d", i))
		mustCreate(t, s, a, "")
		ids = append(ids, a.ID)
	}
	odd := newAccount("percent_100%")
	mustCreate(t, s, odd, "")

	var seen []string
	after := ""
	for pages := 0; pages < 10; pages++ {
		page, err := s.ListAccounts(ctx, store.AccountQuery{Search: "LISTER", After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			seen = append(seen, a.ID)
		}
		after = page[len(page)-1].ID
	}
	if len(seen) != 7 {
		t.Fatalf("paged search found %d accounts, want 7", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i-1] >= seen[i] {
			t.Fatalf("pages not ordered by id: %v", seen)
		}
	}
	// LIKE wildcards in the search are literal.
	got, err := s.ListAccounts(ctx, store.AccountQuery{Search: "percent_100%"})
	if err != nil || len(got) != 1 || got[0].ID != odd.ID {
		t.Fatalf("literal wildcard search = %v, %v", got, err)
	}
	got, err = s.ListAccounts(ctx, store.AccountQuery{Search: "%"})
	if err != nil || len(got) != 0 {
		t.Fatalf("search %% matched %d accounts, want 0", len(got))
	}
}

func newFamily(t *testing.T, s *store.Store) (store.Account, store.RefreshFamily, store.RefreshToken) {
	a := newAccount(ID("fam"))
	mustCreate(t, s, a, "")
	f := store.RefreshFamily{ID: ID("fam"), AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	tok := store.RefreshToken{Hash: ID("hash"), FamilyID: f.ID, AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := s.WriteLogins(ctx, []store.LoginWrite{{Family: f, Token: tok}}); err != nil {
		t.Fatal(err)
	}
	return a, f, tok
}

func testRefreshRotation(t *testing.T, s *store.Store) {
	_, f, first := newFamily(t, s)
	got, fam, err := s.ConsumeRefreshToken(ctx, first.Hash, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.FamilyID != f.ID || !got.UsedAt.IsZero() || !got.ExpiresAt.Equal(first.ExpiresAt) {
		t.Fatalf("consumed token = %+v", got)
	}
	if fam.ID != f.ID || fam.Revoked() || !fam.ExpiresAt.Equal(f.ExpiresAt) {
		t.Fatalf("family = %+v", fam)
	}
	next := store.RefreshToken{Hash: ID("hash"), FamilyID: f.ID, AccountID: f.AccountID, CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(25 * time.Hour)}
	if err := s.AddRefreshToken(ctx, next); err != nil {
		t.Fatal(err)
	}
	// Reuse of the first token is reported with its family.
	got, fam, err = s.ConsumeRefreshToken(ctx, first.Hash, t0.Add(2*time.Minute))
	if !errors.Is(err, store.ErrTokenUsed) || fam.ID != f.ID || !got.UsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("reuse: token %+v family %+v err %v; want ErrTokenUsed with family", got, fam, err)
	}
	if _, _, err := s.ConsumeRefreshToken(ctx, "unknown", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: err = %v, want ErrNotFound", err)
	}
	if _, _, err := s.ConsumeRefreshToken(ctx, next.Hash, t0.Add(3*time.Minute)); err != nil {
		t.Fatalf("next token: %v", err)
	}
	if err := s.AddRefreshToken(ctx, next); err == nil {
		t.Fatal("inserting a duplicate token hash succeeded")
	}
}

func testRefreshConsumeRace(t *testing.T, s *store.Store) {
	_, _, tok := newFamily(t, s)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.ConsumeRefreshToken(ctx, tok.Hash, t0.Add(time.Minute))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok, used := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrTokenUsed):
			used++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || used != n-1 {
		t.Fatalf("%d concurrent uses: %d succeeded, %d saw reuse; want 1 and %d", n, ok, used, n-1)
	}
}

func testRevokeFamilies(t *testing.T, s *store.Store) {
	a, f1, _ := newFamily(t, s)
	f2 := store.RefreshFamily{ID: ID("fam"), AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	f3 := store.RefreshFamily{ID: ID("fam"), AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	for _, f := range []store.RefreshFamily{f2, f3} {
		tok := store.RefreshToken{Hash: ID("hash"), FamilyID: f.ID, AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := s.WriteLogins(ctx, []store.LoginWrite{{Family: f, Token: tok}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeFamily(ctx, f1.ID, "logout", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// A second revocation keeps the first reason.
	if err := s.RevokeFamily(ctx, f1.ID, "other", t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := s.RefreshFamily(ctx, f1.ID)
	if err != nil || got.RevokeReason != "logout" || !got.RevokedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("family after revoke = %+v, %v", got, err)
	}
	n, err := s.RevokeAccountFamilies(ctx, a.ID, f3.ID, "password_change", t0.Add(3*time.Second))
	if err != nil || n != 1 {
		t.Fatalf("RevokeAccountFamilies = %d, %v; want 1 (f2 only)", n, err)
	}
	if got, _ := s.RefreshFamily(ctx, f2.ID); !got.Revoked() || got.RevokeReason != "password_change" {
		t.Fatalf("f2 = %+v, want revoked", got)
	}
	if got, _ := s.RefreshFamily(ctx, f3.ID); got.Revoked() {
		t.Fatalf("f3 = %+v, want live (kept)", got)
	}
	if _, err := s.RefreshFamily(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing family: %v", err)
	}
}

func testRevocations(t *testing.T, s *store.Store) {
	rs := []store.Revocation{
		{Kind: store.RevokeToken, Subject: "jti-old", Cutoff: t0, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)},
		{Kind: store.RevokeToken, Subject: "jti-live", Cutoff: t0, CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour)},
		{Kind: store.RevokeAccount, Subject: "acc-1", Cutoff: t0.Add(2 * time.Second), CreatedAt: t0.Add(2 * time.Second), ExpiresAt: t0.Add(time.Hour)},
	}
	for _, r := range rs {
		if err := s.AddRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Revocations(ctx, t0, t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Subject != "jti-live" || got[1].Subject != "acc-1" || got[0].Seq >= got[1].Seq {
		t.Fatalf("in force at t0+2m: %+v; want jti-live, acc-1 in order", got)
	}
	if !got[1].Cutoff.Equal(t0.Add(2*time.Second)) || got[1].Kind != store.RevokeAccount {
		t.Fatalf("account revocation = %+v", got[1])
	}
	got, err = s.Revocations(ctx, t0.Add(2*time.Second), t0)
	if err != nil || len(got) != 1 || got[0].Subject != "acc-1" {
		t.Fatalf("created since t0+2s: %+v, %v; want acc-1 only", got, err)
	}
}

func testPrune(t *testing.T, s *store.Store) {
	a, f, tok := newFamily(t, s)
	_ = a
	if err := s.AddRevocation(ctx, store.Revocation{Kind: store.RevokeToken, Subject: "x", Cutoff: t0, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, t0.Add(time.Second))
	if err != nil || n != 0 {
		t.Fatalf("early prune = %d, %v; want 0", n, err)
	}
	// Past the token's expiry: the token and the revocation go, the family
	// (30 days) stays.
	n, err = s.Prune(ctx, t0.Add(48*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("prune at +48h = %d, %v; want 2", n, err)
	}
	if _, _, err := s.ConsumeRefreshToken(ctx, tok.Hash, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pruned token: %v", err)
	}
	if _, err := s.RefreshFamily(ctx, f.ID); err != nil {
		t.Fatalf("family pruned early: %v", err)
	}
}

func testAudit(t *testing.T, s *store.Store) {
	acc := ID("acc")
	for i := 0; i < 5; i++ {
		kind := "login_fail"
		if i%2 == 0 {
			kind = "login_ok"
		}
		e := store.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), Kind: kind, AccountID: acc, IP: "192.0.2.1", Detail: fmt.Sprintf(`{"i":%d}`, i)}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAudit(ctx, store.AuditEvent{At: t0, Kind: "ban", AccountID: "other", ActorID: acc}); err != nil {
		t.Fatal(err)
	}
	page1, err := s.Audit(ctx, store.AuditQuery{AccountID: acc, Limit: 3})
	if err != nil || len(page1) != 3 {
		t.Fatalf("page 1: %d events, %v", len(page1), err)
	}
	if page1[0].Detail != `{"i":4}` || !page1[0].At.Equal(t0.Add(4*time.Second)) || page1[0].IP != "192.0.2.1" {
		t.Fatalf("newest first: got %+v", page1[0])
	}
	page2, err := s.Audit(ctx, store.AuditQuery{AccountID: acc, Limit: 3, Before: page1[2].ID})
	if err != nil || len(page2) != 2 || page2[1].Detail != `{"i":0}` {
		t.Fatalf("page 2: %+v, %v", page2, err)
	}
	fails, err := s.Audit(ctx, store.AuditQuery{AccountID: acc, Kind: "login_fail"})
	if err != nil || len(fails) != 2 {
		t.Fatalf("login_fail filter: %d, %v; want 2", len(fails), err)
	}
	bans, err := s.Audit(ctx, store.AuditQuery{Kind: "ban"})
	if err != nil || len(bans) != 1 || bans[0].ActorID != acc || bans[0].AccountID != "other" {
		t.Fatalf("ban: %+v, %v", bans, err)
	}
}
