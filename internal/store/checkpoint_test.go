package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// SQLite's WAL is checkpointed on a timer, off the writer: rows written
// reach the database file within a few checkpoint intervals, though far
// fewer than the 1,000 WAL pages at which SQLite itself would checkpoint
// (and the writer itself no longer does).
func TestSQLiteCheckpointsOnATimer(t *testing.T) {
	ctx := context.Background()
	s, dir := openSQLiteIn(ctx, t)
	defer s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var db string
	for _, f := range files {
		if !strings.HasSuffix(f, "-wal") && !strings.HasSuffix(f, "-shm") {
			db = f
		}
	}
	size := func() int64 {
		st, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	before := size()
	detail := strings.Repeat("x", 400)
	for i := range 400 { // about 40 pages: well under 1,000
		if err := s.AppendAudit(ctx, store.AuditEvent{At: time.Now(), Kind: "test", AccountID: "a", IP: "", Detail: detail + string(rune('a'+i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); size() < before+100<<10; {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, %d before 160 KB of rows: not checkpointed", size(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // closing twice is harmless
		t.Fatal(err)
	}
}

// Under a steady stream of writes, with readers reading all along, the WAL
// is rewound once it passes its bound: the -wal file stays near its size
// limit instead of growing with everything ever written (it grew to
// 4.6 GB in a 40 s login storm before the writer rewound it).
func TestSQLiteWALStaysBoundedUnderSteadyWrites(t *testing.T) {
	restore := store.SetWALBounds(256, 1<<20) // 1 MiB
	defer restore()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, dir := openSQLiteIn(ctx, t)
	defer s.Close()
	wal, _ := filepath.Glob(filepath.Join(dir, "*-wal"))
	if len(wal) != 1 {
		t.Fatalf("want one -wal file in %s, got %v", dir, wal)
	}
	readers, stop := make(chan struct{}), make(chan struct{})
	go func() { // a reader on the WAL all along, as logins' lookups are
		defer close(readers)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Audit(ctx, store.AuditQuery{Limit: 10}); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-readers }()

	// 32 MiB of rows, 32 times the limit, in batches of 128 rows.
	detail := strings.Repeat("x", 2000)
	var maxWAL int64
	for written := 0; written < 32<<20; written += 128 * len(detail) {
		w := store.LoginWrite{}
		for range 128 {
			w.Audit = append(w.Audit, store.AuditEvent{At: time.Now(), Kind: "test", AccountID: "a", Detail: detail})
		}
		if err := s.WriteLogins(ctx, []store.LoginWrite{w}); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(wal[0]); err == nil {
			maxWAL = max(maxWAL, st.Size())
		}
	}
	// Between two checkpoint ticks the writer may add a few MiB more.
	if maxWAL > 12<<20 {
		t.Fatalf("the -wal file reached %d bytes with a 1 MiB bound: not rewound", maxWAL)
	}
	t.Logf("-wal file at most %d bytes", maxWAL)
}

// openSQLiteIn opens and migrates a SQLite store in a directory of its own,
// which it returns with it (for a look at the files).
func openSQLiteIn(ctx context.Context, t *testing.T) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s, dir
}
