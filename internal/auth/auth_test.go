package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// clock is a hand-stepped clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testConfig is the default configuration with cheap hashing.
func testConfig() auth.Config {
	c := auth.DefaultConfig()
	c.Argon2MemoryKiB = 64
	c.Argon2Iterations = 1
	return c
}

var ctx = context.Background()

func newService(t *testing.T, st auth.Store, clk *clock, mutate ...func(*auth.Config)) *auth.Service {
	t.Helper()
	return newServiceIn(t, st, clk, sealedKeys(t), mutate...)
}

func newServiceIn(t *testing.T, st auth.Store, clk *clock, keysDir auth.KeysDir, mutate ...func(*auth.Config)) *auth.Service {
	t.Helper()
	cfg := testConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := auth.New(ctx, cfg, keysDir, auth.Deps{Store: st, KV: memKV(t, clk.Now), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// memKV is an in-process key-value store on the test's clock, closed when
// the test ends.
func memKV(t testing.TB, now func() time.Time) *kv.Memory {
	m := kv.NewMemory(kv.MemoryOptions{Now: now})
	t.Cleanup(func() { m.Close() })
	return m
}

func wantCode(t *testing.T, err error, code errcode.Code) *errcode.Error {
	t.Helper()
	e := errcode.As(err)
	if e == nil || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	return e
}

var meta = auth.Meta{IP: "203.0.113.7", UserAgent: "test"}

func TestPasswordHasher(t *testing.T) {
	p := auth.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	h := auth.NewHasher(p, 2, 4)
	enc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("PHC string = %q", enc)
	}
	for _, tc := range []struct {
		name, enc, pw string
		ok, rehash    bool
	}{
		{"right", enc, "correct horse", true, false},
		{"wrong", enc, "correct horsf", false, false},
		{"empty hash (unknown user)", "", "correct horse", false, false},
		{"corrupt hash", "$argon2id$v=19$m=64,t=1,p=1$!!$!!", "x", false, false},
		{"bcrypt hash", "$2a$10$abcdefghijklmnopqrstuv", "x", false, false},
	} {
		ok, rehash, err := h.Verify(ctx, tc.enc, tc.pw)
		if err != nil || ok != tc.ok || rehash != tc.rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want %v, %v", tc.name, ok, rehash, err, tc.ok, tc.rehash)
		}
	}
	stronger := auth.NewHasher(auth.Argon2Params{MemoryKiB: 128, Iterations: 1, Parallelism: 1}, 1, 1)
	if ok, rehash, _ := stronger.Verify(ctx, enc, "correct horse"); !ok || !rehash {
		t.Errorf("older parameters: ok=%v rehash=%v, want true true", ok, rehash)
	}
	a, _ := h.Hash(ctx, "same")
	b, _ := h.Hash(ctx, "same")
	if a == b {
		t.Error("two hashes of one password are equal: salt is not random")
	}
}

func TestHasherOverflowIsBusy(t *testing.T) {
	// One slot, no waiting room: while a hash runs, the next caller gets
	// ErrBusy at once instead of queueing without bound.
	h := auth.NewHasher(auth.Argon2Params{MemoryKiB: 64 * 1024, Iterations: 3, Parallelism: 1}, 1, 0)
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		close(started)
		_, _ = h.Hash(ctx, "slow password")
		close(done)
	}()
	<-started
	deadline := time.Now().Add(5 * time.Second)
	for h.Running() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_, err := h.Hash(ctx, "second")
	wantCode(t, err, errcode.Unavailable)
	<-done
	// A waiter whose context ends gets ErrBusy too.
	h2 := auth.NewHasher(auth.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, 10)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h2.Hash(cctx, "x"); err != nil {
		t.Fatalf("free slot with cancelled ctx: %v (a free slot is taken without waiting)", err)
	}
}

func TestRegisterLoginRefreshLogout(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	s := newService(t, st, clk)

	reg, err := s.Register(ctx, auth.RegisterRequest{Username: "Alice", Email: "Alice@Example.com", Password: "s3cret-pass"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if reg.ExpiresIn != 900 || !strings.HasPrefix(reg.RefreshToken, "mjr_") {
		t.Fatalf("register pair = %+v", reg)
	}
	p, err := s.Authenticate(reg.AccessToken)
	if err != nil || p.AccountID != reg.AccountID || !p.HasRole(auth.RolePlayer) || p.HasRole(auth.RoleAdmin) || p.Username != "Alice" {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	a, err := s.Account(ctx, p.AccountID)
	if err != nil || a.Email != "alice@example.com" || a.Username != "Alice" {
		t.Fatalf("account = %+v, %v", a, err)
	}

	// Log in by username (any case) and by email.
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "alice", Password: "s3cret-pass"}, meta); err != nil {
		t.Fatal(err)
	}
	login, err := s.Login(ctx, auth.LoginRequest{Email: "ALICE@example.com", Password: "s3cret-pass"}, meta)
	if err != nil {
		t.Fatal(err)
	}

	// Refresh rotates.
	clk.Advance(time.Minute)
	r1, err := s.Refresh(ctx, login.RefreshToken, meta)
	if err != nil {
		t.Fatal(err)
	}
	if r1.RefreshToken == login.RefreshToken || r1.AccessToken == login.AccessToken {
		t.Fatal("refresh did not rotate the pair")
	}
	p1, err := s.Authenticate(r1.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	// Reusing the old refresh token revokes the whole family: the new
	// refresh token and the access tokens of the family stop working.
	_, err = s.Refresh(ctx, login.RefreshToken, meta)
	wantCode(t, err, errcode.Unauthenticated)
	_, err = s.Refresh(ctx, r1.RefreshToken, meta)
	wantCode(t, err, errcode.Unauthenticated)
	_, err = s.Authenticate(r1.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)
	events, err := st.Audit(ctx, store.AuditQuery{AccountID: p1.AccountID, Kind: auth.AuditTokenReuse})
	if err != nil || len(events) != 1 {
		t.Fatalf("token_reuse audit events = %d, %v; want 1", len(events), err)
	}
	// The registration session is a different family and still works.
	if _, err := s.Authenticate(reg.AccessToken); err != nil {
		t.Fatalf("other session revoked too: %v", err)
	}

	// Logout: the access token is refused, the refresh token too.
	if err := s.Logout(ctx, p, meta); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(reg.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)
	_, err = s.Refresh(ctx, reg.RefreshToken, meta)
	wantCode(t, err, errcode.Unauthenticated)

	// Access tokens expire.
	l2, _ := s.Login(ctx, auth.LoginRequest{Username: "alice", Password: "s3cret-pass"}, meta)
	clk.Advance(16 * time.Minute)
	e := wantCode(t, func() error { _, err := s.Authenticate(l2.AccessToken); return err }(), errcode.Unauthenticated)
	if !strings.Contains(e.Message, "expired") {
		t.Fatalf("expired token message = %q", e.Message)
	}
	// Refresh tokens expire with the session.
	clk.Advance(8 * 24 * time.Hour)
	_, err = s.Refresh(ctx, l2.RefreshToken, meta)
	wantCode(t, err, errcode.Unauthenticated)
}

func TestLoginErrorsAreUniform(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	s := newService(t, st, clk)
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "bob", Password: "bobs-password"}, meta); err != nil {
		t.Fatal(err)
	}
	_, errWrong := s.Login(ctx, auth.LoginRequest{Username: "bob", Password: "wrong-password"}, meta)
	_, errUnknown := s.Login(ctx, auth.LoginRequest{Username: "nobody", Password: "wrong-password"}, meta)
	ew, eu := wantCode(t, errWrong, errcode.Unauthenticated), wantCode(t, errUnknown, errcode.Unauthenticated)
	if ew.Message != eu.Message || ew.Field != eu.Field {
		t.Fatalf("wrong password %q vs unknown user %q: must be identical", ew.Message, eu.Message)
	}
	fails, _ := st.Audit(ctx, store.AuditQuery{Kind: auth.AuditLoginFail})
	if len(fails) != 2 {
		t.Fatalf("login_fail events = %d, want 2", len(fails))
	}
}

func TestValidation(t *testing.T) {
	s := newService(t, storetest.SQLite(t), newClock())
	for _, tc := range []struct {
		req   auth.RegisterRequest
		field string
	}{
		{auth.RegisterRequest{Username: "ab", Password: "long-enough"}, "username"},
		{auth.RegisterRequest{Username: "has space", Password: "long-enough"}, "username"},
		{auth.RegisterRequest{Username: "_lead", Password: "long-enough"}, "username"},
		{auth.RegisterRequest{Username: "guest-abc", Password: "long-enough"}, "username"},
		{auth.RegisterRequest{Username: "ünicode", Password: "long-enough"}, "username"},
		{auth.RegisterRequest{Username: "okname", Email: "not-an-email", Password: "long-enough"}, "email"},
		{auth.RegisterRequest{Username: "okname", Email: "Name <a@b.com>", Password: "long-enough"}, "email"},
		{auth.RegisterRequest{Username: "okname", Password: "short"}, "password"},
		{auth.RegisterRequest{Username: "okname", Password: strings.Repeat("x", 129)}, "password"},
	} {
		_, err := s.Register(ctx, tc.req, meta)
		if e := wantCode(t, err, errcode.Invalid); e.Field != tc.field {
			t.Errorf("%+v: field %q, want %q", tc.req, e.Field, tc.field)
		}
	}
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "taken", Email: "t@example.com", Password: "long-enough"}, meta); err != nil {
		t.Fatal(err)
	}
	_, err := s.Register(ctx, auth.RegisterRequest{Username: "TAKEN", Password: "long-enough"}, meta)
	if e := wantCode(t, err, errcode.Conflict); e.Field != "username" {
		t.Errorf("duplicate username: field %q", e.Field)
	}
	_, err = s.Register(ctx, auth.RegisterRequest{Username: "other", Email: "T@example.com", Password: "long-enough"}, meta)
	if e := wantCode(t, err, errcode.Conflict); e.Field != "email" {
		t.Errorf("duplicate email: field %q", e.Field)
	}
	_, err = s.Login(ctx, auth.LoginRequest{Username: "a", Email: "b@c.de", Password: "x"}, meta)
	wantCode(t, err, errcode.Invalid)
	_, err = s.Login(ctx, auth.LoginRequest{Password: "x"}, meta)
	wantCode(t, err, errcode.Invalid)
	_, err = s.Device(ctx, "short", meta)
	wantCode(t, err, errcode.Invalid)
	_, err = s.Device(ctx, "bad/device/id/slashes", meta)
	wantCode(t, err, errcode.Invalid)
	for _, tok := range []string{"", "garbage", "mjr_" + strings.Repeat("A", 200)} {
		_, err = s.Refresh(ctx, tok, meta)
		wantCode(t, err, errcode.Unauthenticated)
	}
}

func TestDeviceGuestAndLink(t *testing.T) {
	s := newService(t, storetest.SQLite(t), newClock())
	first, err := s.Device(ctx, "device-0123456789", meta)
	if err != nil || !first.Created {
		t.Fatalf("first device login = %+v, %v; want created", first, err)
	}
	again, err := s.Device(ctx, "device-0123456789", meta)
	if err != nil || again.Created || again.AccountID != first.AccountID {
		t.Fatalf("second device login = %+v, %v; want same account", again, err)
	}
	p, _ := s.Authenticate(again.AccessToken)
	a, _ := s.Account(ctx, p.AccountID)
	if !strings.HasPrefix(a.Username, "guest-") || a.PasswordHash != "" || len(a.Devices) != 1 {
		t.Fatalf("guest = %+v", a)
	}
	linked, err := s.Link(ctx, p, auth.LinkRequest{Username: "carol", Email: "carol@example.com", Password: "carols-password"}, meta)
	if err != nil || linked.Username != "carol" {
		t.Fatalf("link = %+v, %v", linked, err)
	}
	if _, err := s.Login(ctx, auth.LoginRequest{Email: "carol@example.com", Password: "carols-password"}, meta); err != nil {
		t.Fatalf("login after link: %v", err)
	}
	_, err = s.Link(ctx, p, auth.LinkRequest{Password: "another-password"}, meta)
	wantCode(t, err, errcode.Conflict)

	// Concurrent first logins of one device make one account.
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pair, err := s.Device(ctx, "device-race-000000", meta)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = pair.AccountID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent device logins made different accounts: %v", ids)
		}
	}
}

func TestChangePassword(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk)
	reg, _ := s.Register(ctx, auth.RegisterRequest{Username: "dave", Password: "old-password"}, meta)
	other, _ := s.Login(ctx, auth.LoginRequest{Username: "dave", Password: "old-password"}, meta)
	clk.Advance(2 * time.Second)
	p, _ := s.Authenticate(reg.AccessToken)
	_, err := s.ChangePassword(ctx, p, "wrong-password", "new-password", meta)
	wantCode(t, err, errcode.Unauthenticated)
	fresh, err := s.ChangePassword(ctx, p, "old-password", "new-password", meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(fresh.AccessToken); err != nil {
		t.Fatalf("fresh token after password change: %v", err)
	}
	for name, tok := range map[string]string{"caller's old token": reg.AccessToken, "other session": other.AccessToken} {
		_, err := s.Authenticate(tok)
		wantCode(t, err, errcode.Unauthenticated)
		_ = name
	}
	_, err = s.Refresh(ctx, other.RefreshToken, meta)
	wantCode(t, err, errcode.Unauthenticated)
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "dave", Password: "new-password"}, meta); err != nil {
		t.Fatal(err)
	}
}

// Wrong current passwords are failed logins: past account_ip_failures the
// change-password route answers 429 (the right password too) until the
// failure window ends, and the login route is throttled with it.
func TestChangePasswordThrottled(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk)
	reg, _ := s.Register(ctx, auth.RegisterRequest{Username: "Erin", Password: "erins-password"}, meta)
	p, _ := s.Authenticate(reg.AccessToken)
	for i := range auth.DefaultConfig().AccountIPFailures {
		_, err := s.ChangePassword(ctx, p, fmt.Sprintf("guess-%d-password", i), "new-password", meta)
		wantCode(t, err, errcode.Unauthenticated)
	}
	_, err := s.ChangePassword(ctx, p, "erins-password", "new-password", meta)
	if e := wantCode(t, err, errcode.RateLimited); e.RetryAfter <= 0 {
		t.Fatalf("RetryAfter = %s", e.RetryAfter)
	}
	_, err = s.Login(ctx, auth.LoginRequest{Username: "erin", Password: "erins-password"}, meta)
	wantCode(t, err, errcode.RateLimited)
	clk.Advance(auth.DefaultConfig().FailureWindow + time.Second)
	if _, err := s.ChangePassword(ctx, p, "erins-password", "new-password", meta); err != nil {
		t.Fatalf("after the failure window: %v", err)
	}
}

func TestBanAndRoles(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk)
	admin, _ := s.Register(ctx, auth.RegisterRequest{Username: "admin1", Password: "admin-password"}, meta)
	pa, _ := s.Authenticate(admin.AccessToken)
	if _, err := s.SetRoles(ctx, nil, pa.AccountID, []string{"player", "admin"}, meta); err != nil {
		t.Fatal(err)
	}
	_, err := s.SetRoles(ctx, nil, pa.AccountID, []string{"root"}, meta)
	wantCode(t, err, errcode.Invalid)
	// Roles reach tokens at the next refresh.
	admin, err = s.Refresh(ctx, admin.RefreshToken, meta)
	if err != nil {
		t.Fatal(err)
	}
	pa, _ = s.Authenticate(admin.AccessToken)
	if !pa.HasRole(auth.RoleAdmin) {
		t.Fatalf("roles after refresh = %v", pa.Roles)
	}

	eve, _ := s.Register(ctx, auth.RegisterRequest{Username: "eve", Password: "eves-password"}, meta)
	clk.Advance(time.Second)
	pe, _ := s.Authenticate(eve.AccessToken)
	if _, err := s.Ban(ctx, pa, pe.AccountID, "cheating", meta); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(eve.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)
	_, err = s.Refresh(ctx, eve.RefreshToken, meta)
	wantCode(t, err, errcode.Unauthenticated)
	_, err = s.Login(ctx, auth.LoginRequest{Username: "eve", Password: "eves-password"}, meta)
	wantCode(t, err, errcode.Banned)
	// The wrong password still says only "invalid credentials".
	_, err = s.Login(ctx, auth.LoginRequest{Username: "eve", Password: "not-her-password"}, meta)
	wantCode(t, err, errcode.Unauthenticated)
	_, err = s.Ban(ctx, pa, pa.AccountID, "", meta)
	wantCode(t, err, errcode.Conflict)
	_, err = s.Ban(ctx, pa, "no-such-account", "", meta)
	wantCode(t, err, errcode.NotFound)

	clk.Advance(time.Second)
	if _, err := s.Unban(ctx, pa, pe.AccountID, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "eve", Password: "eves-password"}, meta); err != nil {
		t.Fatalf("login after unban: %v", err)
	}

	// Demotion revokes at once.
	clk.Advance(time.Second)
	if _, err := s.SetRoles(ctx, nil, pa.AccountID, []string{"player"}, meta); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(admin.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)
}

func TestLoginThrottle(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk, func(c *auth.Config) {
		c.AccountIPFailures = 3
		c.AccountFailures = 6
		c.LoginIPLimit = 1000
	})
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "frank", Password: "franks-password"}, meta); err != nil {
		t.Fatal(err)
	}
	owner := auth.Meta{IP: "198.51.100.1"}
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "frank", Password: "franks-password"}, owner); err != nil {
		t.Fatal(err)
	}
	attacker := auth.Meta{IP: "192.0.2.66"}
	for i := 0; i < 3; i++ {
		_, err := s.Login(ctx, auth.LoginRequest{Username: "frank", Password: "guess-" + fmt.Sprint(i)}, attacker)
		wantCode(t, err, errcode.Unauthenticated)
	}
	// The attacker's address is throttled, even with the right password...
	_, err := s.Login(ctx, auth.LoginRequest{Username: "frank", Password: "franks-password"}, attacker)
	if e := wantCode(t, err, errcode.RateLimited); e.RetryAfter <= 0 || e.RetryAfter > 15*time.Minute {
		t.Fatalf("RetryAfter = %s", e.RetryAfter)
	}
	// ...the owner is not.
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "frank", Password: "franks-password"}, owner); err != nil {
		t.Fatalf("owner locked out: %v", err)
	}
	// A distributed attack (many addresses) trips the account limit: an
	// address that failed once is refused at once, but the owner's known
	// address is not (TestOwnerNotLockedOut covers a new address).
	for i := 0; i < 6; i++ {
		_, _ = s.Login(ctx, auth.LoginRequest{Username: "frank", Password: "guess"}, auth.Meta{IP: fmt.Sprintf("192.0.2.%d", 100+i)})
	}
	_, err = s.Login(ctx, auth.LoginRequest{Username: "frank", Password: "franks-password"}, auth.Meta{IP: "192.0.2.100"})
	wantCode(t, err, errcode.RateLimited)
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "frank", Password: "franks-password"}, owner); err != nil {
		t.Fatalf("owner locked out by a distributed attack: %v", err)
	}
	// Windows pass.
	clk.Advance(16 * time.Minute)
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "frank", Password: "franks-password"}, attacker); err != nil {
		t.Fatalf("after the window: %v", err)
	}

	// Per-IP attempt limit.
	s2 := newService(t, storetest.SQLite(t), clk, func(c *auth.Config) { c.LoginIPLimit = 2 })
	for i := 0; i < 2; i++ {
		_, _ = s2.Login(ctx, auth.LoginRequest{Username: fmt.Sprint("user", i), Password: "whatever1"}, attacker)
	}
	_, err = s2.Login(ctx, auth.LoginRequest{Username: "user9", Password: "whatever1"}, attacker)
	wantCode(t, err, errcode.RateLimited)

	// Refused attempts are counted, and audited once per subject and
	// window: a flood cannot fill the audit log.
	before := s2.Throttle().Refused.Load()
	for range 50 {
		_, err = s2.Login(ctx, auth.LoginRequest{Username: "user9", Password: "whatever1"}, attacker)
		wantCode(t, err, errcode.RateLimited)
	}
	if n := s2.Throttle().Refused.Load() - before; n != 50 {
		t.Errorf("Refused grew by %d, want 50", n)
	}
	rows, err := s2.Audit(ctx, store.AuditQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Kind != auth.AuditThrottled && rows[2].Kind != auth.AuditThrottled {
		t.Errorf("audit rows after 2 failures and 51 refused attempts: %+v, want the 2 failures and one %q", rows, auth.AuditThrottled)
	}
}

// Two nodes share one PostgreSQL: a logout on node A is refused on node B
// after B's next deny-list sync, though B had the token cached.
func TestRevocationAcrossNodes(t *testing.T) {
	st := storetest.Postgres(t)
	clk := newClock()
	keys := sealedKeys(t)
	a := newServiceIn(t, st, clk, keys)
	b := newServiceIn(t, st, clk, keys)
	pair, err := a.Register(ctx, auth.RegisterRequest{Username: "gina", Password: "ginas-password"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.Authenticate(pair.AccessToken) // verified and cached on B
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Logout(ctx, pb, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(pair.AccessToken); err == nil {
		t.Fatal("node A accepts a token it revoked")
	}
	if err := b.Denylist().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = b.Authenticate(pair.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)
	// A node started later loads the revocation at start.
	c := newServiceIn(t, st, clk, keys)
	_, err = c.Authenticate(pair.AccessToken)
	wantCode(t, err, errcode.Unauthenticated)
}

func TestSignupLimitPerIP(t *testing.T) {
	clk := newClock()
	s := newService(t, storetest.SQLite(t), clk, func(c *auth.Config) { c.SignupIPLimit = 2 })
	from := auth.Meta{IP: "192.0.2.9"}
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "kim1", Password: "kims-password"}, from); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Device(ctx, "device-kim-0000001", from); err != nil {
		t.Fatal(err)
	}
	_, err := s.Device(ctx, "device-kim-0000002", from)
	if e := wantCode(t, err, errcode.RateLimited); e.RetryAfter <= 0 || !strings.Contains(e.Message, "auth.signup_ip_limit") || !strings.Contains(e.Message, "--auth-signup-ip-limit") {
		t.Fatalf("refusal %q, RetryAfter %s: want the setting named", e.Message, e.RetryAfter)
	}
	_, err = s.Register(ctx, auth.RegisterRequest{Username: "kim2", Password: "kims-password"}, from)
	wantCode(t, err, errcode.RateLimited)
	// An existing device still logs in, and other addresses are unaffected.
	if _, err := s.Device(ctx, "device-kim-0000001", from); err != nil {
		t.Fatalf("existing device: %v", err)
	}
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "lee1", Password: "lees-password"}, auth.Meta{IP: "192.0.2.10"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "kim2", Password: "kims-password"}, from); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// A developer's own server (Deps.LoopbackSignups) does not limit sign-ups
// from loopback addresses; other addresses keep the limit.
func TestLoopbackSignupsOnADevServer(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.SignupIPLimit = 1
	s, err := auth.New(ctx, cfg, auth.KeysDir{Path: t.TempDir()}, auth.Deps{Store: storetest.SQLite(t), KV: memKV(t, clk.Now), Now: clk.Now, LoopbackSignups: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, ip := range []string{"127.0.0.1", "127.0.0.1", "::1", "127.0.0.7", "::1"} {
		if _, err := s.Device(ctx, fmt.Sprintf("device-dev-%08d", i), auth.Meta{IP: ip}); err != nil {
			t.Fatalf("sign-up %d from %s: %v", i, ip, err)
		}
	}
	far := auth.Meta{IP: "198.51.100.4"}
	if _, err := s.Device(ctx, "device-far-00000001", far); err != nil {
		t.Fatal(err)
	}
	_, err = s.Device(ctx, "device-far-00000002", far)
	wantCode(t, err, errcode.RateLimited)
}

// Profiles go through the cache; every write of the account invalidates.
func TestProfileCache(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	mem := cache.NewMemory(cache.MemoryOptions{Now: clk.Now})
	t.Cleanup(func() { mem.Close() })
	profiles := cache.NewTyped[auth.Profile](mem, "account", 1, cache.TypedOptions{})
	s, err := auth.New(ctx, testConfig(), auth.KeysDir{Path: t.TempDir()}, auth.Deps{Store: st, KV: memKV(t, clk.Now), Now: clk.Now, Profiles: profiles, ProfileTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pair, _ := s.Register(ctx, auth.RegisterRequest{Username: "mona", Password: "monas-password"}, meta)
	p1, err := s.Profile(ctx, pair.AccountID)
	if err != nil || p1.Username != "mona" || p1.Guest {
		t.Fatalf("profile = %+v, %v", p1, err)
	}
	// A change behind the service's back is not seen: the profile is cached.
	a, _ := st.AccountByID(ctx, pair.AccountID)
	a.Username = "changed-directly"
	if err := st.UpdateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Profile(ctx, pair.AccountID); p.Username != "mona" {
		t.Fatalf("profile not cached: %q", p.Username)
	}
	// A write through the service invalidates.
	if _, err := s.Ban(ctx, nil, pair.AccountID, "test", meta); err != nil {
		t.Fatal(err)
	}
	p2, _ := s.Profile(ctx, pair.AccountID)
	if !p2.Banned || p2.Username != "changed-directly" {
		t.Fatalf("after ban: %+v", p2)
	}
	if _, err := s.Profile(ctx, "missing"); !errcode.Is(err, errcode.NotFound) {
		t.Fatalf("missing profile: %v", err)
	}
}

// Refresh tokens carry the time they were made, so their stored keys come
// in time order, and a token made before that (the id alone, stored by its
// hash alone) still refreshes once, as every token does.
func TestRefreshTokenForms(t *testing.T) {
	clk := newClock()
	st := storetest.SQLite(t)
	s := newService(t, st, clk)
	first, err := s.Device(ctx, "device-0123456789", meta)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Millisecond)
	second, err := s.Device(ctx, "device-0123456789", meta)
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(tok string) string {
		if len(tok) != 59 || !strings.HasPrefix(tok, "mjr_") {
			t.Fatalf("refresh token %q: want mjr_, 12 hex digits, 43 base64url", tok)
		}
		return tok[4:16]
	}
	if want := fmt.Sprintf("%012x", clk.Now().Add(-time.Millisecond).UnixMilli()); stamp(first.RefreshToken) != want {
		t.Errorf("first token's time %s, want %s", stamp(first.RefreshToken), want)
	}
	if stamp(first.RefreshToken) >= stamp(second.RefreshToken) {
		t.Errorf("token times out of order: %s then %s", stamp(first.RefreshToken), stamp(second.RefreshToken))
	}

	// A token of the earlier form, in the second login's session.
	p, err := s.Authenticate(second.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	legacy := "mjr_" + strings.Repeat("L", 43)
	sum := sha256.Sum256([]byte(legacy))
	if err := st.AddRefreshToken(ctx, store.RefreshToken{Hash: hex.EncodeToString(sum[:]), FamilyID: p.SID, AccountID: p.AccountID,
		CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Refresh(ctx, legacy, meta)
	if err != nil {
		t.Fatalf("refresh with a token of the earlier form: %v", err)
	}
	if stamp(r.RefreshToken); r.AccountID != p.AccountID {
		t.Fatalf("refreshed into account %s, want %s", r.AccountID, p.AccountID)
	}
	if _, err := s.Refresh(ctx, first.RefreshToken, meta); err != nil {
		t.Fatalf("refresh with the first session's token: %v", err)
	}
	// Used again: reuse, the session is revoked.
	_, err = s.Refresh(ctx, legacy, meta)
	wantCode(t, err, errcode.Unauthenticated)
	_, err = s.Refresh(ctx, r.RefreshToken, meta)
	wantCode(t, err, errcode.Unauthenticated)
}
