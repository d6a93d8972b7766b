package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
)

// BackupTo writes a consistent copy of an SQLite database to path, which
// must not exist, while the database stays in use: VACUUM INTO reads one
// snapshot of the database in a read transaction (in WAL mode writers go
// on meanwhile, in this process and in others) and writes it out as a
// compact database file, made 0600. It runs on a connection of its own:
// the read pool is query-only, which VACUUM INTO refuses. PostgreSQL is
// backed up with its own tools (docs/operations.md, "Backups").
func (s *Store) BackupTo(ctx context.Context, path string) error {
	if s.dn != "sqlite" {
		return errors.New("store: BackupTo backs up SQLite; back PostgreSQL up with pg_basebackup and WAL archiving (docs/operations.md)")
	}
	// Made first, empty and 0600, so the copy is never readable by others:
	// VACUUM INTO writes into an empty file.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	f.Close()
	db, err := sql.Open("sqlite", "file:"+s.file+"?_pragma=busy_timeout(5000)")
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("store: backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("store: backup to %s: %w", path, err)
	}
	return nil
}

// SchemaVersion is the version of the last migration applied to the
// database (0 when none).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	all, unknown, err := s.MigrationStatus(ctx)
	if err != nil {
		return 0, err
	}
	v := 0
	for _, m := range all {
		if !m.AppliedAt.IsZero() {
			v = max(v, m.Version)
		}
	}
	for _, u := range unknown {
		v = max(v, u)
	}
	return v, nil
}
