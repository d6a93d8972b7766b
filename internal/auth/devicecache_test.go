package auth_test

import (
	"slices"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// A known device's login reads its account from the caches (device hash to
// account id, then the profile), and everything that changes what a login
// may get invalidates them or sends the login to the store: a ban, a role
// change (here or by another process), the account's deletion.
func TestDeviceLoginCache(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	mem := cache.NewMemory(cache.MemoryOptions{Now: clk.Now})
	t.Cleanup(func() { mem.Close() })
	profiles := cache.NewTyped[auth.Profile](mem, "account", 1, cache.TypedOptions{})
	keys := auth.KeysDir{Path: t.TempDir()}
	s, err := auth.New(ctx, testConfig(), keys, auth.Deps{Store: st, KV: memKV(t, clk.Now), Now: clk.Now,
		Profiles: profiles, ProfileTTL: time.Minute, Devices: cache.NewTyped[string](mem, "device", 1, cache.TypedOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	const dev = "cached-device-0001"
	first, err := s.Device(ctx, dev, meta)
	if err != nil || !first.Created {
		t.Fatalf("first login: %+v, %v", first, err)
	}
	login := func() *auth.Principal {
		t.Helper()
		clk.Advance(time.Second) // tokens of different seconds
		p, err := s.Device(ctx, dev, meta)
		if err != nil || p.Created || p.AccountID != first.AccountID {
			t.Fatalf("login: %+v, %v (account %s)", p, err, first.AccountID)
		}
		pr, err := s.Authenticate(p.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	// Served from the cache: a change behind the service's back is not seen.
	a, _ := st.AccountByID(ctx, first.AccountID)
	name := a.Username
	login()
	a.Username = "changed-directly"
	if err := st.UpdateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if p := login(); p.Username != name {
		t.Fatalf("username %q, want the cached %q", p.Username, name)
	}

	// A role change through the service shows in the next login's token.
	if _, err := s.SetRoles(ctx, nil, first.AccountID, []string{auth.RolePlayer, auth.RoleAdmin}, meta); err != nil {
		t.Fatal(err)
	}
	if p := login(); !slices.Contains(p.Roles, auth.RoleAdmin) || p.Username != "changed-directly" {
		t.Fatalf("after the role change: %+v", p)
	}
	// A role removed by another process (the command line: no caches)
	// reaches the next login once the deny list has synced its revocation,
	// though the profile cached here is not invalidated.
	cli, err := auth.New(ctx, testConfig(), keys, auth.Deps{Store: st, KV: memKV(t, clk.Now), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := cli.SetRoles(ctx, nil, first.AccountID, []string{auth.RolePlayer}, meta); err != nil {
		t.Fatal(err)
	}
	if err := s.Denylist().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if p := login(); slices.Contains(p.Roles, auth.RoleAdmin) {
		t.Fatalf("after the role removal elsewhere: %+v", p)
	}
	// A ban refuses the next login at once, even with a profile from before
	// the ban in the cache (a load that raced the invalidation); lifting it
	// lets it in again.
	stale, _ := s.Profile(ctx, first.AccountID)
	if _, err := s.Ban(ctx, nil, first.AccountID, "test", meta); err != nil {
		t.Fatal(err)
	}
	if err := profiles.Set(ctx, first.AccountID, stale, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err = s.Device(ctx, dev, meta)
	wantCode(t, err, errcode.Banned)
	if _, err := s.Unban(ctx, nil, first.AccountID, meta); err != nil {
		t.Fatal(err)
	}
	login()
	// A deleted account's device is free: its next login makes a new account.
	if err := s.AdminDeleteAccount(ctx, nil, first.AccountID, meta); err != nil {
		t.Fatal(err)
	}
	again, err := s.Device(ctx, dev, meta)
	if err != nil || !again.Created || again.AccountID == first.AccountID {
		t.Fatalf("after deletion: %+v, %v", again, err)
	}
	clk.Advance(time.Second)
	if p, err := s.Device(ctx, dev, meta); err != nil || p.AccountID != again.AccountID {
		t.Fatalf("the new account's next login: %+v, %v", p, err)
	}
}

// A ban made on another node reaches this node's device logins before its
// deny list syncs it, though its cached profile says "not banned": the
// login's own commit reads the ban and writes no session, so no token
// comes out of the window.
func TestDeviceLoginBannedElsewhere(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	mem := cache.NewMemory(cache.MemoryOptions{Now: clk.Now})
	t.Cleanup(func() { mem.Close() })
	keys := auth.KeysDir{Path: t.TempDir()}
	s, err := auth.New(ctx, testConfig(), keys, auth.Deps{Store: st, KV: memKV(t, clk.Now), Now: clk.Now,
		Profiles: cache.NewTyped[auth.Profile](mem, "account", 1, cache.TypedOptions{}), ProfileTTL: time.Minute,
		Devices: cache.NewTyped[string](mem, "device", 1, cache.TypedOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.New(ctx, testConfig(), keys, auth.Deps{Store: st, KV: memKV(t, clk.Now), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	const dev = "banned-elsewhere-0001"
	first, err := s.Device(ctx, dev, meta)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := s.Device(ctx, dev, meta); err != nil { // the caches hold the device and its profile
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := other.Ban(ctx, nil, first.AccountID, "elsewhere", meta); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	_, err = s.Device(ctx, dev, meta)
	wantCode(t, err, errcode.Banned)
}
