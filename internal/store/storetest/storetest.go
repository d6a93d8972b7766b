// Package storetest holds the store conformance suite that SQLite and
// PostgreSQL both pass, and helpers that open a fresh store of either kind
// for tests in any package.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// DefaultPostgresURL is this machine's PostgreSQL (trust auth, database
// test). MULTIJUEGO_TEST_DATABASE_URL overrides it.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Opener opens an empty, migrated store for one test.
type Opener func(t testing.TB) *store.Store

// SQLite opens a migrated SQLite store in a temporary directory.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	dir := t.TempDir()
	s, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	dsns.Store(s, [2]string{"sqlite", "file:" + filepath.Join(dir, "multijuego.db") + "?_pragma=busy_timeout(5000)"})
	t.Cleanup(func() { dsns.Delete(s); s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return s
}

// Postgres opens a migrated store in a schema of its own on the test
// PostgreSQL, dropped when the test ends.
func Postgres(t testing.TB) *store.Store {
	t.Helper()
	u := PostgresURL(t)
	s, err := store.Open(context.Background(), store.Options{URL: u})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	dsns.Store(s, [2]string{"pgx", u})
	t.Cleanup(func() { dsns.Delete(s); s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return s
}

// dsns maps a store opened by SQLite or Postgres to its driver and data
// source, for Raw.
var dsns sync.Map

// Raw opens a second connection to the database of s, which SQLite or
// Postgres opened, for tests that change rows behind the store's back (an
// attacker with database access). It is closed when the test ends.
func Raw(t testing.TB, s *store.Store) *sql.DB {
	t.Helper()
	v, ok := dsns.Load(s)
	if !ok {
		t.Fatal("storetest.Raw: the store was not opened by storetest.SQLite or storetest.Postgres")
	}
	d := v.([2]string)
	db, err := sql.Open(d[0], d[1])
	if err != nil {
		t.Fatalf("open %s: %v", d[0], err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL creates a fresh schema on the test PostgreSQL and returns a URL
// whose search_path selects it. Without PostgreSQL the test is skipped, or
// fails when CI=true: CI must never pass by skipping.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("MULTIJUEGO_TEST_DATABASE_URL")
	if base == "" {
		base = DefaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.PingContext(ctx)
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI but does not answer at %s: %v", base, err)
		}
		t.Skipf("PostgreSQL not available at %s (set CI=true to make this fatal): %v", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// ID returns a random id for test rows.
func ID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s", prefix, hex.EncodeToString(b[:]))
}

// ValuesList returns the placeholders of a multi-row VALUES list of rows
// rows of cols columns: $1, $2, ... when numbered (PostgreSQL), else ?.
// For benchmarks that write raw rows beside the store.
func ValuesList(numbered bool, rows, cols int) string {
	var sb strings.Builder
	p := 1
	for r := 0; r < rows; r++ {
		if r > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				sb.WriteByte(',')
			}
			if numbered {
				fmt.Fprintf(&sb, "$%d", p)
			} else {
				sb.WriteByte('?')
			}
			p++
		}
		sb.WriteByte(')')
	}
	return sb.String()
}
