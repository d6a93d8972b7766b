package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Options configures Open.
type Options struct {
	// URL selects the engine: empty or sqlite://PATH (or file:PATH) for
	// SQLite, postgres:// or postgresql:// for PostgreSQL.
	URL string
	// DataDir holds the SQLite file when URL is empty.
	DataDir string
	// MaxOpenConns bounds the PostgreSQL pool and the SQLite read pool.
	MaxOpenConns int
	// BusyTimeout is how long a SQLite writer waits for the lock.
	BusyTimeout time.Duration
}

// Open connects to the database named by o. It does not migrate; call
// Migrate.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 10
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	u := o.URL
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return openPostgres(ctx, u, o)
	case u == "":
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: data dir: %w", err)
		}
		return openSQLite(ctx, filepath.Join(o.DataDir, "multijuego.db"), o)
	case strings.HasPrefix(u, "sqlite://"):
		return openSQLite(ctx, strings.TrimPrefix(u, "sqlite://"), o)
	case strings.HasPrefix(u, "file:"):
		return openSQLite(ctx, strings.TrimPrefix(u, "file:"), o)
	}
	return nil, fmt.Errorf("store: unsupported database URL scheme in %q (use postgres://, sqlite:// or leave it empty)", redact(u))
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = url.User(p.User.Username())
	return p.String()
}

func openPostgres(ctx context.Context, u string, o Options) (*Store, error) {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL at %s: %w", redact(u), err)
	}
	return &Store{d: postgres{}, w: db, r: db, dn: "postgres"}, nil
}

func openSQLite(ctx context.Context, path string, o Options) (*Store, error) {
	if path == "" || strings.Contains(path, "?") {
		return nil, fmt.Errorf("store: bad SQLite path %q", path)
	}
	if err := ownerOnly(path); err != nil {
		return nil, fmt.Errorf("store: SQLite file %s: %w", path, err)
	}
	// temp_store(MEMORY): the statement journal SQLite keeps to undo one
	// failing multi-row INSERT inside a transaction stays in memory; in a
	// temporary file its page writes were 7 % of a login storm's CPU.
	// journal_size_limit: the writer truncates a rewound WAL
	// (checkpoint.go) to walSizeLimit.
	pragmas := fmt.Sprintf("_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)&_pragma=journal_size_limit(%d)",
		o.BusyTimeout.Milliseconds(), walSizeLimit)
	// One writer connection, transactions take the write lock up front
	// (BEGIN IMMEDIATE), so writers queue on the Go side instead of failing
	// with SQLITE_BUSY in the middle of a transaction. It never
	// checkpoints: a connection of its own does, on a timer (checkpoint.go).
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open SQLite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	r.SetMaxOpenConns(o.MaxOpenConns)
	r.SetMaxIdleConns(o.MaxOpenConns)
	ck, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	s := &Store{d: sqliteDialect{}, w: w, r: r, dn: "sqlite", file: path}
	s.stopCheckpoints = startCheckpoints(ck, &s.rewind)
	return s, nil
}

// ownerOnly makes the database file readable by its owner only (0600):
// created so if it does not exist, tightened if it is open to others.
// SQLite gives its -wal and -shm files the database file's mode.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return f.Chmod(0o600)
	}
	return nil
}

// dialect confines what differs between the engines.
type dialect interface {
	time(t time.Time) any
	nullTime(t time.Time) any
	conflict(err error) error // maps unique violations to *ConflictError
	lock(ctx context.Context, conn *sql.Conn) (unlock func(), err error)
	// applyLock serialises the writers of match results and derived data
	// for the rest of tx (ratings are read, computed in Go and written).
	applyLock(ctx context.Context, tx *sql.Tx) error
	// chainLock tries to take, for the rest of tx, the right to extend the
	// audit chain; false when another chainer holds it.
	chainLock(ctx context.Context, tx *sql.Tx) (bool, error)
	// readTx are the options of a read transaction that sees one snapshot.
	readTx() *sql.TxOptions
	// numberedParams tells whether generated parameter lists use $N (true)
	// or ? (false).
	numberedParams() bool
	// jsonRows tells whether many rows can travel as one JSON parameter
	// (PostgreSQL's json_to_recordset).
	jsonRows() bool
}

type sqliteDialect struct{}

func (sqliteDialect) time(t time.Time) any { return t.UnixMicro() }
func (d sqliteDialect) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.time(t)
}
func (sqliteDialect) lock(context.Context, *sql.Conn) (func(), error) {
	// The single writer connection and BEGIN IMMEDIATE serialise migrators.
	return func() {}, nil
}
func (sqliteDialect) applyLock(context.Context, *sql.Tx) error {
	return nil // one writer connection, BEGIN IMMEDIATE: tx already excludes other writers
}
func (sqliteDialect) chainLock(context.Context, *sql.Tx) (bool, error) {
	return true, nil // one writer connection, BEGIN IMMEDIATE: one chainer at a time
}
func (sqliteDialect) readTx() *sql.TxOptions {
	return nil // a deferred read transaction in WAL mode reads one snapshot
}
func (sqliteDialect) numberedParams() bool {
	return false // $N is a named parameter in SQLite: fine for a few, O(n²) to bind thousands
}
func (sqliteDialect) jsonRows() bool {
	return false // bound values cost little in-process
}
func (sqliteDialect) conflict(err error) error {
	var se *sqlite.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	if se.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE && se.Code() != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return err
	}
	return &ConflictError{Field: conflictField(se.Error())}
}

type postgres struct{}

func (postgres) time(t time.Time) any { return t.UTC() }
func (d postgres) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.time(t)
}
func (postgres) lock(ctx context.Context, conn *sql.Conn) (func(), error) {
	// Nodes starting together migrate once: a session advisory lock keyed
	// by the schema, so tests in separate schemas do not wait on each other.
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext(current_schema()))`); err != nil {
		return nil, err
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(hashtext(current_schema()))`)
	}, nil
}
func (postgres) applyLock(ctx context.Context, tx *sql.Tx) error {
	// A transaction advisory lock keyed by the schema (two-key form: a key
	// space apart from the migration lock), released at commit or rollback.
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema()), hashtext('match_results'))`)
	return err
}
func (postgres) chainLock(ctx context.Context, tx *sql.Tx) (bool, error) {
	// A transaction advisory lock keyed by the schema, tried not waited
	// for: a node that does not get it leaves the rows to the one that did.
	var ok bool
	err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), hashtext('audit_chain'))`).Scan(&ok)
	return ok, err
}
func (postgres) readTx() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}
func (postgres) numberedParams() bool { return true }
func (postgres) jsonRows() bool       { return true }
func (postgres) conflict(err error) error {
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) || pe.Code != "23505" {
		return err
	}
	return &ConflictError{Field: conflictField(pe.ConstraintName)}
}

// conflictField maps a constraint or index name (or SQLite's message) to the
// user-facing field.
func conflictField(s string) string {
	switch {
	case strings.Contains(s, "accounts_username_key"):
		return "username"
	case strings.Contains(s, "accounts_email_key"), strings.Contains(s, "accounts_email_index"), strings.Contains(s, "accounts.email"):
		return "email"
	case strings.Contains(s, "account_devices"), strings.Contains(s, "device_id"):
		return "device_id"
	case strings.Contains(s, "account_identities"):
		return "identity"
	}
	return "id"
}

// dbTime scans a time column from either engine: SQLite stores INTEGER
// microseconds, PostgreSQL TIMESTAMPTZ. NULL scans as the zero time.
type dbTime struct {
	T     time.Time
	Valid bool
}

func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = dbTime{}
	case int64:
		*t = dbTime{T: time.UnixMicro(v).UTC(), Valid: true}
	case time.Time:
		*t = dbTime{T: v.UTC(), Valid: true}
	default:
		return fmt.Errorf("store: cannot scan %T as a time", src)
	}
	return nil
}
