package auth

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// Group commit of logins. Every login writes rows the design needs (its
// session, for refresh-reuse detection; its audit events; a device's first
// login also the account), and answers only once they are committed: nothing
// a client was told succeeded is lost in a crash. One transaction per login
// made a storm of logins wait on commits one by one (the SQLite writer is
// one connection; a PostgreSQL commit waits for its WAL flush). Here the
// rows of logins that arrive together are committed together.
//
// The writer has no goroutine of its own, so there is nothing to start or
// stop: the first waiting login that finds no flush running becomes the
// flusher; it takes up to maxBatch queued logins (its own among them, or
// ahead of it), writes them in one transaction and hands each its result.
// Logins that arrive meanwhile queue and form the next batch, flushed by one
// of them when the flush right is released. An idle server adds no wait: a
// lone login flushes itself at once.

const (
	// loginBatch bounds the logins of one transaction (a few hundred rows;
	// the store splits statements by parameter count).
	loginBatch = 256
	// loginQueue bounds the logins waiting for a flush. Overflow rule: a
	// login that finds the queue full writes its rows alone, in its own
	// transaction, as before group commit: slower, never lost or refused.
	loginQueue = 4096
)

// loginStore is what the group commit needs from the store.
type loginStore interface {
	WriteLogins(ctx context.Context, ws []store.LoginWrite) error
}

type loginReq struct {
	w    store.LoginWrite
	done chan error // capacity 1: the flusher never blocks on it
}

// loginWriter commits concurrent logins' rows together.
type loginWriter struct {
	st    loginStore
	queue chan *loginReq
	// flushing is held (a value in it) by the login that is flushing.
	flushing chan struct{}
	batch    []*loginReq        // the flusher's; reused
	rows     []store.LoginWrite // the flusher's; reused

	// Batches and Logins count transactions and the logins they carried
	// (Logins/Batches is the mean batch); Overflows the logins written
	// alone because the queue was full; Retries the batches that failed
	// and were written login by login; BusyNanos the time flushes spent
	// in the store (its rate is the share of time the one flush is
	// running: near 1, the store's write path is what logins wait on).
	Batches, Logins, Overflows, Retries, BusyNanos atomic.Int64
}

func newLoginWriter(st loginStore, maxBatch, maxQueue int) *loginWriter {
	return &loginWriter{st: st, queue: make(chan *loginReq, maxQueue), flushing: make(chan struct{}, 1),
		batch: make([]*loginReq, 0, maxBatch), rows: make([]store.LoginWrite, 0, maxBatch)}
}

// write commits w with whatever other logins are waiting and returns once it
// is committed (nil) or has failed. A caller that gives up (ctx done) gets
// ctx's error; its rows may still be committed by the next flush, which
// only leaves a session nobody holds the token of.
func (lw *loginWriter) write(ctx context.Context, w store.LoginWrite) error {
	r := &loginReq{w: w, done: make(chan error, 1)}
	select {
	case lw.queue <- r:
	default:
		lw.Overflows.Add(1)
		return lw.st.WriteLogins(ctx, []store.LoginWrite{w})
	}
	for {
		select {
		case err := <-r.done:
			return err
		case lw.flushing <- struct{}{}:
			lw.flush(ctx)
			<-lw.flushing
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// flush writes up to cap(lw.batch) queued logins in one transaction. The
// caller holds lw.flushing.
func (lw *loginWriter) flush(ctx context.Context) {
	batch, rows := lw.batch[:0], lw.rows[:0]
drain:
	for len(batch) < cap(batch) {
		select {
		case r := <-lw.queue:
			batch, rows = append(batch, r), append(rows, r.w)
		default:
			break drain
		}
	}
	if len(batch) == 0 {
		return
	}
	// The transaction is every queued login's, not only the flusher's:
	// the flusher giving up must not abort it.
	wctx := context.WithoutCancel(ctx)
	lw.Batches.Add(1)
	lw.Logins.Add(int64(len(batch)))
	start := time.Now()
	defer func() { lw.BusyNanos.Add(int64(time.Since(start))) }()
	err := lw.st.WriteLogins(wctx, rows)
	if err != nil && len(batch) > 1 {
		// The batch failed together (the store writes all or nothing):
		// one login's row may be the cause (a device a racing first login
		// linked meanwhile). Each login is written alone, so each gets its
		// own result and no login fails for another's row.
		lw.Retries.Add(1)
		for i, r := range batch {
			r.done <- lw.st.WriteLogins(wctx, rows[i:i+1])
		}
	} else {
		for _, r := range batch {
			r.done <- err
		}
	}
	clear(batch)
	clear(rows)
}

// LoginCommitStats counts the group commit's work since start (for
// metrics): Logins/Batches is the mean batch, Busy/Batches the mean
// commit.
type LoginCommitStats struct {
	Batches, Logins, Overflows, Retries int64
	Busy                                time.Duration
}

// LoginCommits returns the group commit's counters.
func (s *Service) LoginCommits() LoginCommitStats {
	lw := s.logins
	return LoginCommitStats{Batches: lw.Batches.Load(), Logins: lw.Logins.Load(), Overflows: lw.Overflows.Load(), Retries: lw.Retries.Load(),
		Busy: time.Duration(lw.BusyNanos.Load())}
}
