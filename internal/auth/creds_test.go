package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// Hardening issue, finding 7: weak passwords were accepted. A password on
// the common list is refused at registration, link and change, naming the
// field; a long uncommon one is taken.
func TestCommonPasswordsRefused(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk)
	for _, pw := range []string{"password", "Password1", "iloveyou", "12345678", "qwertyuiop", "trustno1"} {
		_, err := s.Register(ctx, auth.RegisterRequest{Username: "weak", Password: pw}, meta)
		if e := wantCode(t, err, errcode.Invalid); e.Field != "password" || !strings.Contains(e.Message, "common") {
			t.Fatalf("register with %q: %+v, want a refusal of field password naming why", pw, e)
		}
	}
	_, err := s.Register(ctx, auth.RegisterRequest{Username: "short", Password: "x7#k"}, meta)
	if e := wantCode(t, err, errcode.Invalid); !strings.Contains(e.Message, "at least 8") {
		t.Fatalf("short password: %+v", e)
	}
	reg, err := s.Register(ctx, auth.RegisterRequest{Username: "strong", Password: "mauve-ferret-quarry"}, meta)
	if err != nil {
		t.Fatalf("uncommon password refused: %v", err)
	}
	p, _ := s.Authenticate(reg.AccessToken)
	_, err = s.ChangePassword(ctx, p, "mauve-ferret-quarry", "football", meta)
	if e := wantCode(t, err, errcode.Invalid); e.Field != "new_password" {
		t.Fatalf("change to a common password: %+v", e)
	}
	guest, err := s.Device(ctx, "device-weak-000001", meta)
	if err != nil {
		t.Fatal(err)
	}
	gp, _ := s.Authenticate(guest.AccessToken)
	_, err = s.Link(ctx, gp, auth.LinkRequest{Password: "sunshine"}, meta)
	if e := wantCode(t, err, errcode.Invalid); e.Field != "password" {
		t.Fatalf("link with a common password: %+v", e)
	}
}

// Finding 4: device ids are credentials. They are stored as keyed hashes
// (never the id), the profile shows only how many there are, and the secret
// sits beside the signing keys, shared by nodes that share the directory.
func TestDeviceIDsStoredAsKeyedHashes(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	keys := sealedKeys(t)
	a := newServiceIn(t, st, clk, keys)
	const dev = "device-secret-0123456789"
	first, err := a.Device(ctx, dev, meta)
	if err != nil || !first.Created {
		t.Fatalf("first device login: %+v, %v", first, err)
	}
	acct, err := st.AccountByID(ctx, first.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if len(acct.Devices) != 1 || acct.Devices[0] == dev || !strings.HasPrefix(acct.Devices[0], auth.DeviceHashPrefix) || strings.Contains(acct.Devices[0], dev) {
		t.Fatalf("stored devices %q: want one keyed hash, not the id", acct.Devices)
	}
	if _, _, err := st.AccountByDeviceIDs(ctx, dev); err == nil {
		t.Fatal("the device id in clear finds the account in the store")
	}
	// The stored value is no credential: it is not even a valid device id.
	_, err = a.Device(ctx, acct.Devices[0], meta)
	wantCode(t, err, errcode.Invalid)

	prof, err := a.Profile(ctx, first.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(prof)
	if prof.DeviceCount != 1 || strings.Contains(string(js), dev) || strings.Contains(string(js), acct.Devices[0]) {
		t.Fatalf("profile %s: want device_count 1 and neither the id nor its hash", js)
	}

	fi, err := os.Stat(filepath.Join(keys.Path, "device-id.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("device-id.key: %v, %v; want mode 0600", fi, err)
	}
	// A second node on the same keys directory finds the same account.
	b := newServiceIn(t, st, clk, keys)
	again, err := b.Device(ctx, dev, meta)
	if err != nil || again.Created || again.AccountID != first.AccountID {
		t.Fatalf("device login on a second node: %+v, %v", again, err)
	}
}

// A database written before device ids were hashed keeps working: a
// device login converts its row; Run converts every other row at start.
// On SQLite and PostgreSQL.
func TestClearDeviceIDsMigrate(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.Store{"sqlite": storetest.SQLite, "postgres": storetest.Postgres} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			st := open(t)
			old := func(user, dev string) store.Account {
				a := store.Account{ID: "acc-" + user, Username: user, Roles: []string{auth.RolePlayer}, CreatedAt: clk.Now(), UpdatedAt: clk.Now()}
				if err := st.CreateAccount(ctx, a, dev); err != nil { // as the previous version stored it
					t.Fatal(err)
				}
				return a
			}
			ann, bob := old("guest-ann", "legacy-device-ann-1"), old("guest-bob", "legacy-device-bob-1")
			s := newService(t, st, clk)

			p, err := s.Device(ctx, "legacy-device-ann-1", meta)
			if err != nil || p.Created || p.AccountID != ann.ID {
				t.Fatalf("legacy device login: %+v, %v; want account %s", p, err, ann.ID)
			}
			got, _ := st.AccountByID(ctx, ann.ID)
			if len(got.Devices) != 1 || !strings.HasPrefix(got.Devices[0], auth.DeviceHashPrefix) {
				t.Fatalf("after login, stored %q: want the keyed hash", got.Devices)
			}

			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- s.Run(runCtx) }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				left, err := st.ClearDevices(ctx, auth.DeviceHashPrefix, "", 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("device ids still in clear after Run: %q", left)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			p, err = s.Device(ctx, "legacy-device-bob-1", meta)
			if err != nil || p.Created || p.AccountID != bob.ID {
				t.Fatalf("device login after the sweep: %+v, %v; want account %s", p, err, bob.ID)
			}
		})
	}
}

// Finding 4: once an IP's sign-up limit was spent, wrong device ids got 429
// but a right one still logged in, about 1,000 guesses a second. Now
// device_ip_failures misses refuse every device login from that IP, a
// right id's too; other addresses are unaffected; one audit row.
func TestDeviceGuessingThrottledPerIP(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk, func(c *auth.Config) { c.SignupIPLimit = 1 })
	guesser := auth.Meta{IP: "192.0.2.44"}
	victim, err := s.Device(ctx, "device-victim-000001", auth.Meta{IP: "198.51.100.9"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Device(ctx, "device-guesser-own01", guesser); err != nil { // spends the sign-up limit
		t.Fatal(err)
	}
	limit := auth.DefaultConfig().DeviceIPFailures
	for i := range limit + 20 {
		_, err := s.Device(ctx, fmt.Sprintf("device-guess-%06d", i), guesser)
		wantCode(t, err, errcode.RateLimited)
	}
	_, err = s.Device(ctx, "device-victim-000001", guesser)
	if e := wantCode(t, err, errcode.RateLimited); e.RetryAfter <= 0 || e.RetryAfter > auth.DefaultConfig().FailureWindow {
		t.Fatalf("right id after %d misses: %+v", limit, e)
	}
	if p, err := s.Device(ctx, "device-victim-000001", auth.Meta{IP: "198.51.100.9"}); err != nil || p.AccountID != victim.AccountID {
		t.Fatalf("owner's device from its own address: %+v, %v", p, err)
	}
	rows, err := s.Audit(ctx, store.AuditQuery{Kind: auth.AuditThrottled, Limit: 100})
	if err != nil || len(rows) != 1 || rows[0].IP != guesser.IP || !strings.Contains(rows[0].Detail, auth.ScopeDeviceIP) {
		t.Fatalf("throttled audit rows %+v, %v: want one for the guesser", rows, err)
	}
	clk.Advance(auth.DefaultConfig().FailureWindow + time.Second)
	if _, err := s.Device(ctx, "device-guesser-own01", guesser); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// Finding 7: after account_failures failures from other IPs the owner could
// not log in from a new IP. Brute force from many addresses is throttled
// (an address gets one try once the account is under attack), and the
// owner still logs in from an address never seen before.
func TestOwnerNotLockedOut(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk)
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "olga", Password: "olgas-own-password"}, meta); err != nil {
		t.Fatal(err)
	}
	cfg := auth.DefaultConfig()
	attackers := cfg.AccountFailures / cfg.AccountIPFailures
	for i := range attackers {
		ip := auth.Meta{IP: fmt.Sprintf("192.0.2.%d", 10+i)}
		for j := range cfg.AccountIPFailures {
			_, err := s.Login(ctx, auth.LoginRequest{Username: "olga", Password: fmt.Sprintf("guess-%d-%d", i, j)}, ip)
			wantCode(t, err, errcode.Unauthenticated)
		}
		_, err := s.Login(ctx, auth.LoginRequest{Username: "olga", Password: "one-more-guess"}, ip)
		wantCode(t, err, errcode.RateLimited)
	}
	// Under attack, a new attacking address gets one guess, then 429.
	fresh := auth.Meta{IP: "192.0.2.250"}
	_, err := s.Login(ctx, auth.LoginRequest{Username: "olga", Password: "fresh-guess"}, fresh)
	wantCode(t, err, errcode.Unauthenticated)
	_, err = s.Login(ctx, auth.LoginRequest{Username: "olga", Password: "olgas-own-password"}, fresh)
	wantCode(t, err, errcode.RateLimited)
	// The owner, from an address never seen, logs in.
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "olga", Password: "olgas-own-password"}, auth.Meta{IP: "203.0.113.200"}); err != nil {
		t.Fatalf("owner locked out after %d failures from %d other addresses: %v", cfg.AccountFailures, attackers, err)
	}
	// One throttled audit row per (account, address) and window: the
	// attackers' refusals and the fresh address's.
	rows, err := s.Audit(ctx, store.AuditQuery{Kind: auth.AuditThrottled, Limit: 500})
	if err != nil || len(rows) != attackers+1 {
		t.Fatalf("throttled audit rows: %d, %v; want %d", len(rows), err, attackers+1)
	}
	for _, r := range rows {
		if r.AccountID == "" {
			t.Fatalf("throttled audit row without the account: %+v", r)
		}
	}
}

// A malformed device-id.key is refused, not replaced.
func TestDeviceKeyMalformed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "device-id.key"), []byte("not base64 at all!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := auth.New(ctx, testConfig(), auth.KeysDir{Path: dir}, auth.Deps{Store: storetest.SQLite(t), KV: memKV(t, time.Now)})
	if err == nil || !strings.Contains(err.Error(), "device-id.key") {
		t.Fatalf("New with a malformed device key: %v", err)
	}
}
