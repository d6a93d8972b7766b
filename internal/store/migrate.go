package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// Migration is one versioned schema change.
type Migration struct {
	Version   int
	Name      string
	SQL       string
	AppliedAt time.Time // zero when pending
}

// Migrations lists the embedded migrations of a dialect ("sqlite" or
// "postgres") in version order.
func Migrations(dialect string) ([]Migration, error) {
	dir := "migrations/" + dialect
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: no migrations for %q", dialect)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration file %s is not named NNNN_name.sql", e.Name())
		}
		body, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("store: migration versions must run 1,2,3... without gaps; found %d at position %d", out[i].Version, i+1)
		}
	}
	return out, nil
}

const createVersionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

// Migrate applies the pending migrations, each in its own transaction, and
// returns how many it applied. Concurrent callers (nodes starting together)
// apply each migration once.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	all, err := Migrations(s.dn)
	if err != nil {
		return 0, err
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	unlock, err := s.d.lock(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("store: migration lock: %w", err)
	}
	defer unlock()
	if _, err := conn.ExecContext(ctx, createVersionTable); err != nil {
		return 0, fmt.Errorf("store: create schema_migrations: %w", err)
	}
	applied := 0
	for _, m := range all {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return applied, err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version=$1`, m.Version).Scan(&n); err != nil {
			_ = tx.Rollback()
			return applied, err
		}
		if n > 0 {
			_ = tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			_ = tx.Rollback()
			return applied, fmt.Errorf("store: migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1,$2,$3)`,
			m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			_ = tx.Rollback()
			return applied, err
		}
		if err := tx.Commit(); err != nil {
			return applied, err
		}
		applied++
	}
	return applied, nil
}

// MigrationStatus lists every embedded migration with its applied time, and
// any version applied in the database that this binary does not know (a
// newer binary migrated it).
func (s *Store) MigrationStatus(ctx context.Context) (all []Migration, unknown []int, err error) {
	all, err = Migrations(s.dn)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		if strings.Contains(err.Error(), "schema_migrations") {
			return all, nil, nil // nothing applied yet
		}
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var at string
		if err := rows.Scan(&v, &at); err != nil {
			return nil, nil, err
		}
		if v >= 1 && v <= len(all) {
			all[v-1].AppliedAt, _ = time.Parse(time.RFC3339Nano, at)
		} else {
			unknown = append(unknown, v)
		}
	}
	return all, unknown, rows.Err()
}

// Current reports whether every embedded migration is applied.
func (s *Store) Current(ctx context.Context) (bool, error) {
	all, _, err := s.MigrationStatus(ctx)
	if err != nil {
		return false, err
	}
	for _, m := range all {
		if m.AppliedAt.IsZero() {
			return false, nil
		}
	}
	return true, nil
}
