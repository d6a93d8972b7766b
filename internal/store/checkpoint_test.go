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
	dir := t.TempDir()
	s, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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
