package storetest

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store"
)

// Protect makes s seal personal data as a node does: a local keyring in a
// temporary directory, a vault of the store's engine (a SQLite file, or a
// PostgreSQL schema of its own), sealing on. It returns the Fields, so a
// test can open what it reads raw.
func Protect(t testing.TB, s *store.Store) *seal.Fields {
	t.Helper()
	p, err := seal.OpenLocal(filepath.Join(t.TempDir(), "keyring.kek"))
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	url := ""
	if s.Dialect() == "postgres" {
		url = PostgresURL(t)
	}
	v := Vault(t, url)
	f := seal.NewFields(p, v, []byte(strings.Repeat("i", seal.KeySize)), true, 1000)
	s.SetProtector(f)
	return f
}

// rawColumn reads one text column of one row as the database holds it.
func rawColumn(t *testing.T, s *store.Store, query string, arg any) string {
	t.Helper()
	var v string
	if err := Raw(t, s).QueryRowContext(ctx, query, arg).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// testPersonalSealed: with a protector, an email and an audit address are
// stored sealed (the plaintext appears nowhere in the row), found by email
// through the blind index, read back in clear; once the account is erased,
// a copy of the sealed values taken before (what a backup holds) no longer
// opens.
func testPersonalSealed(t *testing.T, s *store.Store) {
	f := Protect(t, s)
	a := newAccount(ID("pii"))
	mustCreate(t, s, a, "")
	ev := store.AuditEvent{At: t0, Kind: "login_ok", AccountID: a.ID, IP: "198.51.100.77"}
	if err := s.WriteLogins(ctx, []store.LoginWrite{{Audit: []store.AuditEvent{ev}}}); err != nil {
		t.Fatal(err)
	}
	email := rawColumn(t, s, `SELECT email FROM accounts WHERE id=$1`, a.ID)
	index := rawColumn(t, s, `SELECT email_index FROM accounts WHERE id=$1`, a.ID)
	ip := rawColumn(t, s, `SELECT ip FROM audit_log WHERE account_id=$1`, a.ID)
	for name, v := range map[string]string{"email": email, "email_index": index, "ip": ip} {
		if strings.Contains(v, a.Email) || strings.Contains(v, "198.51.100") || strings.Contains(v, a.Username) {
			t.Errorf("%s stored with its plaintext: %q", name, v)
		}
	}
	if !seal.IsSealed(email) || !seal.IsSealed(ip) {
		t.Errorf("email %q, ip %q: not sealed", email, ip)
	}
	if got, err := s.AccountByEmail(ctx, a.Email); err != nil || got.ID != a.ID || got.Email != a.Email {
		t.Errorf("by email: %+v, %v", got, err)
	}
	if got, err := s.ListAccounts(ctx, store.AccountQuery{Search: strings.ToUpper(a.Email)}); err != nil || len(got) != 1 || got[0].Email != a.Email {
		t.Errorf("search by whole email: %+v, %v", got, err)
	}
	if got, err := s.Audit(ctx, store.AuditQuery{AccountID: a.ID}); err != nil || len(got) != 1 || got[0].IP != ev.IP {
		t.Errorf("audit: %+v, %v", got, err)
	}
	// The same email on another account is refused through the index.
	b := newAccount(ID("pii2"))
	b.Email = a.Email
	var ce *store.ConflictError
	if err := s.CreateAccount(ctx, b, ""); !errors.As(err, &ce) || ce.Field != "email" {
		t.Errorf("same email: %v, want email conflict", err)
	}

	if err := s.DeleteAccount(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Open(ctx, a.ID, "account:"+a.ID, "email", email); !errors.Is(err, seal.ErrErased) {
		t.Errorf("email from before the erasure: %v, want erased", err)
	}
	if got, err := s.Audit(ctx, store.AuditQuery{AccountID: a.ID}); err != nil || len(got) != 1 || got[0].IP != "" {
		t.Errorf("audit after erasure: %+v, %v (want the row, its address unreadable)", got, err)
	}
	// Putting the old row back (restoring a backup) brings no email back.
	raw := Raw(t, s)
	if _, err := raw.ExecContext(ctx, `INSERT INTO accounts (id, username, email, roles, created_at, updated_at) VALUES ($1,$2,$3,'player',$4,$4)`,
		a.ID, a.Username, email, timeValue(s, t0)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AccountByID(ctx, a.ID); err != nil || got.Email != "" {
		t.Errorf("restored row: %+v, %v; want its email unreadable", got, err)
	}
}

// testPersonalClear: rows written in clear (before sealing was on) are
// found and read, SealClear converts emails and unchained audit rows,
// ResealAudit the chained ones (the chain still verifies, and says so in
// an audit_resealed event); lookups go on working throughout.
func testPersonalClear(t *testing.T, s *store.Store) {
	a := newAccount(ID("clear"))
	mustCreate(t, s, a, "")
	chained := store.AuditEvent{At: t0, Kind: "login_ok", AccountID: a.ID, IP: "203.0.113.5"}
	late := store.AuditEvent{At: t0.Add(time.Second), Kind: "login_fail", IP: "203.0.113.6"}
	if err := s.AppendAudit(ctx, chained); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.ChainAudit(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, late); err != nil {
		t.Fatal(err)
	}
	if v := rawColumn(t, s, `SELECT email FROM accounts WHERE id=$1`, a.ID); v != a.Email {
		t.Fatalf("without a protector the email is stored as %q", v)
	}
	Protect(t, s)
	if got, err := s.AccountByEmail(ctx, a.Email); err != nil || got.ID != a.ID {
		t.Fatalf("clear row by email: %+v, %v", got, err)
	}
	total := 0
	for {
		n, err := s.SealClear(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 2 {
		t.Errorf("SealClear converted %d rows, want 2 (the email, the unchained address)", total)
	}
	if n, err := s.ResealAudit(ctx, 1); err != nil || n != 1 {
		t.Errorf("ResealAudit: %d, %v; want the chained row", n, err)
	}
	if n, err := s.ResealAudit(ctx, 1); err != nil || n != 0 {
		t.Errorf("ResealAudit again: %d, %v; want nothing left", n, err)
	}
	var clear int
	if err := Raw(t, s).QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE ip LIKE '203.%'`).Scan(&clear); err != nil || clear != 0 {
		t.Errorf("addresses left in clear: %d, %v", clear, err)
	}
	if v := rawColumn(t, s, `SELECT email FROM accounts WHERE id=$1`, a.ID); !seal.IsSealed(v) {
		t.Errorf("email after SealClear: %q", v)
	}
	if got, err := s.AccountByEmail(ctx, a.Email); err != nil || got.ID != a.ID || got.Email != a.Email {
		t.Errorf("by email after SealClear: %+v, %v", got, err)
	}
	if got, err := s.Audit(ctx, store.AuditQuery{AccountID: a.ID}); err != nil || len(got) != 1 || got[0].IP != chained.IP {
		t.Errorf("audit after sealing: %+v, %v", got, err)
	}
	if _, _, _, err := s.ChainAudit(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.VerifyAudit(ctx, store.AuditHead{}); err != nil || !rep.OK() || rep.Chained != 3 {
		t.Errorf("chain after sealing: %+v, %v", rep, err)
	}
	if got, err := s.Audit(ctx, store.AuditQuery{Kind: store.AuditResealed}); err != nil || len(got) != 1 || !strings.Contains(got[0].Detail, `"from_seq":1`) {
		t.Errorf("audit_resealed event: %+v, %v", got, err)
	}
}

// timeValue is how s's engine stores t (SQLite: Unix µs).
func timeValue(s *store.Store, t time.Time) any {
	if s.Dialect() == "sqlite" {
		return t.UnixMicro()
	}
	return t
}

// RunVault is the vault's conformance suite.
func RunVault(t *testing.T, open func(t testing.TB) *store.Vault) {
	v := open(t)
	k1 := seal.Key{Owner: ID("own"), ID: 1, Wrapped: []byte("wrapped-1\x00\xff")}
	k2 := seal.Key{Owner: ID("own"), ID: 1, Wrapped: []byte("wrapped-2")}
	if n, err := v.AddKeys(ctx, []seal.Key{k1, k2}); err != nil || n != 2 {
		t.Fatalf("AddKeys: %d, %v", n, err)
	}
	// A second key for an owner that has one is dropped: the first stays.
	if n, err := v.AddKeys(ctx, []seal.Key{{Owner: k1.Owner, ID: 1, Wrapped: []byte("other")}}); err != nil || n != 0 {
		t.Fatalf("AddKeys again: %d, %v", n, err)
	}
	got, err := v.Keys(ctx, []string{k1.Owner, k2.Owner, "nobody"})
	if err != nil || len(got) != 2 || string(got[k1.Owner].Wrapped) != string(k1.Wrapped) || string(got[k2.Owner].Wrapped) != string(k2.Wrapped) {
		t.Fatalf("keys: %+v, %v", got, err)
	}
	if err := v.DeleteKey(ctx, k1.Owner); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Keys(ctx, []string{k1.Owner}); err != nil || len(got) != 1 || got[k1.Owner].Wrapped != nil {
		t.Errorf("after delete: %+v, %v; want a tombstone", got, err)
	}
	// No key is made again for an erased owner.
	if n, err := v.AddKeys(ctx, []seal.Key{{Owner: k1.Owner, ID: 1, Wrapped: []byte("again")}}); err != nil || n != 0 {
		t.Fatalf("AddKeys after the erasure: %d, %v", n, err)
	}
	if got, err := v.Keys(ctx, []string{k1.Owner}); err != nil || got[k1.Owner].Wrapped != nil {
		t.Errorf("a key added after the erasure: %+v, %v", got, err)
	}
	if err := v.DeleteKey(ctx, ID("never-had-one")); err != nil {
		t.Errorf("erasing an owner without a key: %v", err)
	}
	// Rewrap walks every key in pages and resumes where it stopped.
	many := make([]seal.Key, 7)
	for i := range many {
		many[i] = seal.Key{Owner: ID("page"), ID: 1, Wrapped: []byte("old")}
	}
	if _, err := v.AddKeys(ctx, many); err != nil {
		t.Fatal(err)
	}
	changed, after := 0, ""
	for {
		next, n, err := v.Rewrap(ctx, after, 3, func(k seal.Key) (seal.Key, bool, error) {
			if string(k.Wrapped) != "old" {
				return k, false, nil
			}
			k.Wrapped = []byte("new")
			return k, true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		changed += n
		if next == "" {
			break
		}
		after = next
	}
	owners := make([]string, len(many))
	for i, k := range many {
		owners[i] = k.Owner
	}
	got, err = v.Keys(ctx, owners)
	if err != nil || len(got) != len(many) {
		t.Fatalf("keys after rewrap: %d, %v", len(got), err)
	}
	for _, k := range got {
		if string(k.Wrapped) != "new" {
			t.Errorf("%s not rewrapped", k.Owner)
		}
	}
	if changed != len(many) {
		t.Errorf("rewrap changed %d, want %d", changed, len(many))
	}
}

// Vault opens a vault at url, or in a SQLite file in a temporary
// directory when url is empty; closed when the test ends.
func Vault(t testing.TB, url string) *store.Vault {
	t.Helper()
	if url == "" {
		url = "sqlite://" + filepath.Join(t.TempDir(), "vault.db")
	}
	v, err := store.OpenVault(context.Background(), store.Options{URL: url})
	if err != nil {
		t.Fatalf("vault: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
