package store

import (
	"context"
	"database/sql"
	"sync/atomic"
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
//
// A PASSIVE checkpoint alone never lets the WAL start over: SQLite rewinds
// the -wal file only when a write transaction begins with every frame
// copied back and no reader still reading from the WAL, and under a steady
// load the writer has always committed again before a checkpoint on
// another connection ends. The WAL then only grew (4.6 GB in a 40 s login
// storm), and so did the WAL index every page read searches: logins/s fell
// by a quarter over the storm. So when a tick's checkpoint leaves more than
// walRewindFrames frames in the WAL, it asks the writer to rewind it: the
// writer's next transaction (Store.tx) first runs a PASSIVE checkpoint
// itself, which copies back the frames committed since the tick's (no
// other writer can add any meanwhile), and then begins, which rewinds the
// WAL and truncates its file to walSizeLimit. Neither waits: with a reader
// still on the WAL (a long read, such as a backup), the checkpoint stops
// short or the rewind is skipped, and the next tick asks again. The
// writer's checkpoint holds the writes back for some 10-40 ms, so the bound
// is set high enough (128 MiB) that a storm meets it once every few
// seconds, and the WAL index stays small enough not to slow reads.
const checkpointEvery = 200 * time.Millisecond

// The WAL's bounds (variables for the tests).
var (
	walRewindFrames       = 32768 // 128 MiB of 4 KiB pages
	walSizeLimit    int64 = 128 << 20
)

// startCheckpoints runs the checkpoints on ck until the returned stop is
// called, setting rewind when the writer should rewind the WAL; stop waits
// for the goroutine to end and closes ck. Calling stop again does nothing
// more.
func startCheckpoints(ck *sql.DB, rewind *atomic.Bool) (stop func() error) {
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
				var busy, frames, copied int
				err := ck.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
				if err == nil && frames > walRewindFrames {
					rewind.Store(true)
				}
			}
		}
	}()
	return func() error {
		cancel()
		<-done
		return ck.Close()
	}
}

// rewindWAL is run by the writer, outside a transaction, when the
// checkpoints asked (startCheckpoints): a PASSIVE checkpoint on the writer
// connection, so that the transaction it begins next rewinds the WAL. A
// checkpoint that fails (another running, the database closing) is the
// next ask's work.
func (s *Store) rewindWAL(ctx context.Context) {
	if s.rewind.CompareAndSwap(true, false) {
		_, _ = s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
	}
}
