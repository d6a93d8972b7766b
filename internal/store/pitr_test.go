//go:build unix

package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store/storetest"
)

// The point-in-time recovery drill of docs/operations.md ("PostgreSQL:
// continuous archiving and point-in-time recovery"), run: a cluster that
// archives its WAL, a base backup, rows written, a time noted, more rows
// written; then the base backup recovered into a new data directory to
// that time with the archive, started with pg_ctl: the rows before the
// time are there, those after are not.
func TestPostgresPointInTimeRecovery(t *testing.T) {
	pg := storetest.StartPrivatePostgres(t, storetest.PrivateOptions{
		// archive_command is set below, once the archive directory is
		// made; until then segments wait (the server retries).
		Conf: []string{"wal_level = replica", "archive_mode = on", "archive_command = '/bin/false'"},
		HBA:  []string{"host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"},
	})
	archive := filepath.Join(pg.Base, "archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		t.Fatal(err)
	}
	pg.Chown(t, archive)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := pgConn(t, pg.Port)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(fmt.Sprintf(`ALTER SYSTEM SET archive_command = 'test ! -f %[1]s/%%f && cp %%p %[1]s/%%f'`, archive))
	exec(`SELECT pg_reload_conf()`)
	exec(`CREATE TABLE drill (id int PRIMARY KEY, phase text NOT NULL)`)
	exec(`INSERT INTO drill SELECT g, 'base' FROM generate_series(1, 10) g`)

	backup := filepath.Join(pg.Base, "basebackup")
	run(t, pg, "pg_basebackup", "-h", "127.0.0.1", "-p", fmt.Sprint(pg.Port), "-U", "postgres", "-D", backup, "-X", "none", "--checkpoint=fast", "--no-sync")

	exec(`INSERT INTO drill SELECT g, 'before' FROM generate_series(11, 20) g`)
	var target time.Time
	if err := db.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the next commit is clearly after the target
	exec(`INSERT INTO drill SELECT g, 'after' FROM generate_series(21, 30) g`)
	// Close the segment holding both and wait for it in the archive.
	var segment string
	if err := db.QueryRowContext(ctx, `SELECT pg_walfile_name(pg_switch_wal())`).Scan(&segment); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(archive, segment)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s not archived after 30s", segment)
		}
	}

	rec := recoverTo(ctx, t, pg, backup, archive, target)
	got := map[string]int{}
	rows, err := rec.QueryContext(ctx, `SELECT phase, count(*) FROM drill GROUP BY phase`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var phase string
		var n int
		if err := rows.Scan(&phase, &n); err != nil {
			t.Fatal(err)
		}
		got[phase] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got["base"] != 10 || got["before"] != 10 || got["after"] != 0 {
		t.Fatalf("recovered to %s: rows by phase %v, want base 10, before 10, after 0", target.UTC().Format(time.RFC3339Nano), got)
	}
}

// recoverTo recovers the base backup in backup (its own directory, made
// the new data directory) to target with the WAL in archive, starts it with
// pg_ctl and waits until it is promoted.
func recoverTo(ctx context.Context, t *testing.T, pg *storetest.PrivatePostgres, backup, archive string, target time.Time) *sql.DB {
	t.Helper()
	port := storetest.FreePort(t)
	appendTo(t, filepath.Join(backup, "postgresql.auto.conf"),
		fmt.Sprintf("port = %d", port),
		fmt.Sprintf("restore_command = 'cp %s/%%f %%p'", archive),
		fmt.Sprintf("recovery_target_time = '%s'", target.UTC().Format("2006-01-02 15:04:05.999999+00")),
		"recovery_target_action = 'promote'",
		"archive_mode = off")
	signal := filepath.Join(backup, "recovery.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pg.Chown(t, signal)
	pg.Chown(t, filepath.Join(backup, "postgresql.auto.conf"))
	if out, err := pg.Command("pg_ctl", "-D", backup, "-l", filepath.Join(pg.Base, "recovered.log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.Base, "recovered.log"))
		t.Fatalf("pg_ctl start on the recovered copy: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() { _ = pg.Command("pg_ctl", "-D", backup, "-m", "immediate", "-w", "stop").Run() })

	rec := pgConn(t, port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var inRecovery bool
		if err := rec.QueryRowContext(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err == nil && !inRecovery {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(pg.Base, "recovered.log"))
			t.Fatalf("still recovering after 30s\n%s", log)
		}
	}
	return rec
}

func pgConn(t *testing.T, port int) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func run(t *testing.T, pg *storetest.PrivatePostgres, name string, args ...string) {
	t.Helper()
	if out, err := pg.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func appendTo(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}
