package store

import (
	"context"
	"database/sql"
	"time"
)

// SQLite checkpoints. In WAL mode a commit appends pages to the -wal file;
// a checkpoint copies them into the database file and, under synchronous
// NORMAL, is when the WAL is synced to disk. By default the committing
// connection runs a checkpoint itself every 1,000 WAL pages, inside its
// commit: on the one writer, every writer then waits for it (a storm of
// logins spent about a fifth of the writer's time there), and on a quiet
// database nothing is synced until 1,000 pages have been written. Here the
// writer never checkpoints (wal_autocheckpoint(0)); a connection of its own
// runs a PASSIVE checkpoint, which neither waits for nor blocks the writer
// or the readers, every checkpointEvery. A checkpoint that fails (the
// database busy or closing) is simply the next tick's work.
const checkpointEvery = 200 * time.Millisecond

// startCheckpoints runs the checkpoints on ck until the returned stop is
// called; stop waits for the goroutine to end and closes ck. Calling stop
// again does nothing more.
func startCheckpoints(ck *sql.DB) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, _ = ck.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
			}
		}
	}()
	return func() error {
		cancel()
		<-done
		return ck.Close()
	}
}
