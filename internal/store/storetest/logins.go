package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

func loginWrite(a store.Account, newAccount bool, device string) store.LoginWrite {
	f := store.RefreshFamily{ID: ID("fam"), AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	w := store.LoginWrite{
		Family: f,
		Token:  store.RefreshToken{Hash: ID("hash"), FamilyID: f.ID, AccountID: a.ID, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)},
		Audit:  []store.AuditEvent{{At: t0, Kind: "device_login", AccountID: a.ID, IP: "192.0.2.1", Detail: `{"n":1}`}},
	}
	if newAccount {
		w.Account, w.Device = a, device
		w.Audit = append([]store.AuditEvent{{At: t0, Kind: "register", AccountID: a.ID, IP: "192.0.2.1"}}, w.Audit...)
	}
	return w
}

// testWriteLogins: one call writes many logins' accounts, devices,
// sessions and audit rows, every one readable afterwards; the sessions
// rotate and detect reuse like any other.
func testWriteLogins(t *testing.T, s *store.Store) {
	old := newAccount(ID("old"))
	mustCreate(t, s, old, "")
	var ws []store.LoginWrite
	for range 3 {
		ws = append(ws, loginWrite(old, false, ""))
	}
	for range 40 {
		a := newAccount(ID("new"))
		a.Email, a.PasswordHash = "", ""
		ws = append(ws, loginWrite(a, true, ID("dev")))
	}
	ws = append(ws, store.LoginWrite{Audit: []store.AuditEvent{{At: t0, Kind: "login_fail", IP: "192.0.2.9"}}})
	if err := s.WriteLogins(ctx, ws); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws[3 : len(ws)-1] {
		a, id, err := s.AccountByDeviceIDs(ctx, w.Device)
		if err != nil || a.ID != w.Account.ID || id != w.Device {
			t.Fatalf("AccountByDeviceIDs(%s) = %s, %s, %v; want %s", w.Device, a.ID, id, err, w.Account.ID)
		}
		ev, err := s.Audit(ctx, store.AuditQuery{AccountID: a.ID})
		if err != nil || len(ev) != 2 || ev[0].Kind != "device_login" || ev[1].Kind != "register" {
			t.Fatalf("audit of %s = %+v, %v; want register then device_login", a.ID, ev, err)
		}
	}
	for _, w := range ws[:len(ws)-1] {
		if f, err := s.RefreshFamily(ctx, w.Family.ID); err != nil || f.AccountID != w.Family.AccountID {
			t.Fatalf("family %s = %+v, %v", w.Family.ID, f, err)
		}
	}
	if ev, err := s.Audit(ctx, store.AuditQuery{Kind: "login_fail"}); err != nil || len(ev) != 1 || ev[0].IP != "192.0.2.9" {
		t.Fatalf("login_fail audit = %+v, %v", ev, err)
	}
	tok := ws[0].Token
	if _, _, err := s.ConsumeRefreshToken(ctx, tok.Hash, t0.Add(time.Minute)); err != nil {
		t.Fatalf("consume a batch-written token: %v", err)
	}
	if _, f, err := s.ConsumeRefreshToken(ctx, tok.Hash, t0.Add(2*time.Minute)); !errors.Is(err, store.ErrTokenUsed) || f.ID != ws[0].Family.ID {
		t.Fatalf("reuse of a batch-written token: family %s, err %v; want ErrTokenUsed with family %s", f.ID, err, ws[0].Family.ID)
	}
	if err := s.WriteLogins(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

// testWriteLoginsAtomic: a batch with one bad row (a device already
// linked) fails as a whole with a conflict and writes nothing; the others'
// rows, written again without it, all land. That is the rule the auth
// service's group commit relies on: a failed batch is retried login by
// login, so one login's error is its own.
func testWriteLoginsAtomic(t *testing.T, s *store.Store) {
	taken := newAccount(ID("taken"))
	mustCreate(t, s, taken, "taken-device")
	good := newAccount(ID("good"))
	bad := newAccount(ID("bad"))
	old := newAccount(ID("old"))
	mustCreate(t, s, old, "")
	ws := []store.LoginWrite{loginWrite(good, true, ID("dev")), loginWrite(bad, true, "taken-device"), loginWrite(old, false, "")}
	var ce *store.ConflictError
	if err := s.WriteLogins(ctx, ws); !errors.As(err, &ce) || ce.Field != "device_id" {
		t.Fatalf("batch with a taken device: err = %v, want a device_id conflict", err)
	}
	for _, w := range ws {
		if _, err := s.RefreshFamily(ctx, w.Family.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("family %s of a failed batch: err = %v, want ErrNotFound", w.Family.ID, err)
		}
	}
	if _, err := s.AccountByID(ctx, good.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account of a failed batch: err = %v, want ErrNotFound", err)
	}
	if err := s.WriteLogins(ctx, []store.LoginWrite{ws[0], ws[2]}); err != nil {
		t.Fatalf("the batch without the bad row: %v", err)
	}
	for _, w := range []store.LoginWrite{ws[0], ws[2]} {
		if _, err := s.RefreshFamily(ctx, w.Family.ID); err != nil {
			t.Fatalf("family %s: %v", w.Family.ID, err)
		}
	}
	if err := s.WriteLogins(ctx, ws[1:2]); !errors.As(err, &ce) || ce.Field != "device_id" {
		t.Fatalf("the bad row alone: err = %v, want a device_id conflict", err)
	}
}

// testAccountByDeviceIDs: the first stored id of the list wins; none
// stored is ErrNotFound.
func testAccountByDeviceIDs(t *testing.T, s *store.Store) {
	a, b := newAccount(ID("dev-a")), newAccount(ID("dev-b"))
	mustCreate(t, s, a, "d1$hashed-a")
	mustCreate(t, s, b, "clear-device-b")
	for _, tc := range []struct {
		ids        []string
		wantAcc    string
		wantStored string
	}{
		{[]string{"d1$hashed-a", "clear-device-a"}, a.ID, "d1$hashed-a"},
		{[]string{"d1$hashed-b", "clear-device-b"}, b.ID, "clear-device-b"},
		{[]string{"clear-device-b", "d1$hashed-a"}, b.ID, "clear-device-b"},
	} {
		got, stored, err := s.AccountByDeviceIDs(ctx, tc.ids...)
		if err != nil || got.ID != tc.wantAcc || stored != tc.wantStored || got.Username != map[string]string{a.ID: a.Username, b.ID: b.Username}[got.ID] {
			t.Fatalf("AccountByDeviceIDs(%v) = %s (%s), %s, %v; want %s, %s", tc.ids, got.ID, got.Username, stored, err, tc.wantAcc, tc.wantStored)
		}
	}
	if _, _, err := s.AccountByDeviceIDs(ctx, "d1$nobody", "nobody-clear"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown devices: err = %v, want ErrNotFound", err)
	}
}

// testWriteLoginsBanned: a session of an existing account that is banned
// by the time the batch commits is not written, nor is anything of its
// batch (ErrBanned); written alone, the other logins go in.
func testWriteLoginsBanned(t *testing.T, s *store.Store) {
	ok := newAccount(ID("ok"))
	mustCreate(t, s, ok, "")
	banned := newAccount(ID("banned"))
	mustCreate(t, s, banned, "")
	banned.BannedAt, banned.BanReason = t0, "cheating"
	if err := s.UpdateAccount(ctx, banned); err != nil {
		t.Fatal(err)
	}
	fresh := newAccount(ID("fresh"))
	fresh.Email, fresh.PasswordHash = "", ""
	ws := []store.LoginWrite{loginWrite(ok, false, ""), loginWrite(banned, false, ""), loginWrite(fresh, true, ID("dev"))}
	if err := s.WriteLogins(ctx, ws); !errors.Is(err, store.ErrBanned) {
		t.Fatalf("batch with a banned account's login: %v, want ErrBanned", err)
	}
	for _, w := range ws {
		if _, err := s.RefreshFamily(ctx, w.Family.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("family %s of a refused batch: %v, want ErrNotFound", w.Family.ID, err)
		}
	}
	for i, want := range []error{nil, store.ErrBanned, nil} {
		if err := s.WriteLogins(ctx, ws[i:i+1]); !errors.Is(err, want) {
			t.Fatalf("login %d alone: %v, want %v", i, err, want)
		}
	}
	if _, err := s.RefreshFamily(ctx, ws[1].Family.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the banned account's session was written: %v", err)
	}
}
