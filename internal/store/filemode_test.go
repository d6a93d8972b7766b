//go:build unix

package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/multijuego/multijuego/internal/store"
)

// The SQLite file and its WAL are readable by their owner only: a new
// file is made so, and an existing one open to others is tightened.
func TestSQLiteFileIsOwnerOnly(t *testing.T) {
	ctx := context.Background()
	check := func(path string) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want -rw-------", filepath.Base(path), st.Mode().Perm())
		}
	}
	open := func(url string) *store.Store {
		t.Helper()
		s, err := store.Open(ctx, store.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(ctx); err != nil { // writes: the WAL exists after
			t.Fatal(err)
		}
		return s
	}
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	open("sqlite://" + fresh)
	check(fresh)
	check(fresh + "-wal")

	old := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	open("sqlite://" + old)
	check(old)
}
