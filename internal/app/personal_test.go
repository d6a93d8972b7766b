package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/seal"
	"github.com/multijuego/multijuego/internal/store"
)

// sealedStore opens the embedded default's database file at path as a node
// of cfg would: with its keyring, its vault and its blind index key.
func sealedStore(t *testing.T, cfg app.Config, path string) (*store.Store, *seal.Fields) {
	t.Helper()
	ctx := context.Background()
	p, err := seal.OpenLocal(cfg.KeyringFile())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := auth.BlindIndexKey(auth.KeysDir{Path: cfg.KeysDir(), Seal: p})
	if err != nil {
		t.Fatal(err)
	}
	v, err := store.OpenVault(ctx, store.Options{URL: cfg.VaultURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	s, err := store.Open(ctx, store.Options{URL: "sqlite://" + path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := seal.NewFields(p, v, idx, true, 10)
	s.SetProtector(f)
	return s, f
}

// backupSQLite copies the running server's database with VACUUM INTO (a
// consistent online copy) and returns the copy's path.
func backupSQLite(t *testing.T, cfg app.Config) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, "multijuego.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := filepath.Join(t.TempDir(), "backup.db")
	if _, err := db.Exec(`VACUUM INTO '` + out + `'`); err != nil {
		t.Fatal(err)
	}
	return out
}

// An account's email and addresses are stored sealed on the embedded
// default; erasing the account destroys its data key, so a backup taken
// before the erasure, restored afterwards, no longer reveals them.
func TestErasureReachesBackups(t *testing.T) {
	cfg := testConfig(t)
	m, stopMain := startMain(t, cfg)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopMain()
		}
	}
	defer stop()
	const email, password = "erase.me@example.com", "right-horse-battery"
	call := func(method, path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, m.URL()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	code, tok := call("POST", "/v1/auth/register", "", `{"username":"eraseme","email":"`+email+`","password":"`+password+`"}`)
	if code != 201 {
		t.Fatalf("register: %d %v", code, tok)
	}
	access := tok["access_token"].(string)
	if code, _ := call("POST", "/v1/auth/login", "", `{"email":"ERASE.me@example.com","password":"`+password+`"}`); code != 200 {
		t.Fatalf("login by email: %d", code)
	}
	_, me := call("GET", "/v1/account", access, "")
	id, _ := me["id"].(string)
	if id == "" || me["email"] != email {
		t.Fatalf("account: %v", me)
	}

	backup := backupSQLite(t, cfg)
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{email, "erase.me", "127.0.0.1"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("the database file holds %q in clear", clear)
		}
	}
	// Before the erasure, the backup reads with the node's keys.
	s, _ := sealedStore(t, cfg, backup)
	if a, err := s.AccountByEmail(context.Background(), email); err != nil || a.ID != id || a.Email != email {
		t.Fatalf("backup before the erasure: %+v, %v", a, err)
	}
	if ev, err := s.Audit(context.Background(), store.AuditQuery{AccountID: id}); err != nil || len(ev) == 0 || ev[0].IP != "127.0.0.1" {
		t.Fatalf("audit in the backup: %+v, %v", ev, err)
	}

	if code, out := call("DELETE", "/v1/account", access, `{"current_password":"`+password+`"}`); code != 204 {
		t.Fatalf("delete: %d %v", code, out)
	}
	// The restored backup still has the row, but nothing personal in it
	// opens: the key is gone from the vault.
	s, f := sealedStore(t, cfg, backup)
	a, err := s.AccountByID(context.Background(), id)
	if err != nil || a.Email != "" {
		t.Errorf("backup after the erasure: %+v, %v; want the email unreadable", a, err)
	}
	if ev, err := s.Audit(context.Background(), store.AuditQuery{AccountID: id}); err != nil || len(ev) == 0 || ev[0].IP != "" {
		t.Errorf("audit in the backup after the erasure: %+v, %v; want addresses unreadable", ev, err)
	}
	var sealedEmail string
	db, err := sql.Open("sqlite", "file:"+backup)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT email FROM accounts WHERE id=?`, id).Scan(&sealedEmail); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Open(context.Background(), id, "account:"+id, "email", sealedEmail); !errors.Is(err, seal.ErrErased) {
		t.Errorf("opening the backup's email: %v, want erased", err)
	}

	// Restored in place of the database, then `accounts reapply-erasures`:
	// the erased row goes again, the rest of the backup stays.
	stop()
	db.Close()
	dbPath := filepath.Join(cfg.DataDir, "multijuego.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(dbPath + suffix)
	}
	if err := os.WriteFile(dbPath, mustRead(t, backup), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	args := []string{"accounts", "reapply-erasures", "--data-dir", cfg.DataDir}
	if code := app.Run(context.Background(), args, &out, &errb, nil); code != 0 {
		t.Fatalf("reapply-erasures: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "1 were back in the database") {
		t.Errorf("reapply-erasures said: %s", out.String())
	}
	s, _ = sealedStore(t, cfg, dbPath)
	if _, err := s.AccountByID(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("erased account after reapply-erasures: %v, want not found", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
