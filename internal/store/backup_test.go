package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// A backup taken while accounts are being written holds every account
// committed before it began, opens as a migrated database, and is 0600.
func TestSQLiteBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	s := storetest.SQLite(t)
	create := func(name string) {
		t.Helper()
		if err := s.CreateAccount(ctx, store.Account{ID: storetest.UUIDv7(), Username: name, Roles: []string{"player"}}, ""); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		create(storetest.ID("before"))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // writes go on during the backup
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			create(storetest.ID("during"))
		}
	}()
	path := filepath.Join(t.TempDir(), "copy.db")
	err := s.BackupTo(ctx, path)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.BackupTo(ctx, path); err == nil {
		t.Error("a backup over an existing file: no error")
	}
	c, err := store.Open(ctx, store.Options{URL: "sqlite://" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cur, err := c.Current(ctx); err != nil || !cur {
		t.Fatalf("the copy is not migrated: %v %v", cur, err)
	}
	want, _ := s.SchemaVersion(ctx)
	if got, err := c.SchemaVersion(ctx); err != nil || got != want || got == 0 {
		t.Fatalf("schema version of the copy %d (%v), want %d", got, err, want)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE username LIKE 'before%'`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("the copy has %d of the 50 accounts written before (%v)", n, err)
	}
}
