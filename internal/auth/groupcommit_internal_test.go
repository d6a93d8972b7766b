package auth

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// gatedStore records each WriteLogins call's batch; the first call waits
// for gate, so a test can queue logins behind a flush in progress. A batch
// holding a row whose audit kind is "bad" fails as a whole.
type gatedStore struct {
	gate    chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	calls   [][]string // audit kinds per call
	written []string   // kinds committed
}

func newGatedStore() *gatedStore {
	return &gatedStore{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
}

func (g *gatedStore) WriteLogins(_ context.Context, ws []store.LoginWrite) error {
	g.mu.Lock()
	first := len(g.calls) == 0
	var kinds []string
	for _, w := range ws {
		kinds = append(kinds, w.Audit[0].Kind)
	}
	g.calls = append(g.calls, kinds)
	g.mu.Unlock()
	if first {
		g.entered <- struct{}{}
		<-g.gate
	}
	if slices.Contains(kinds, "bad") {
		return errors.New("bad row")
	}
	g.mu.Lock()
	g.written = append(g.written, kinds...)
	g.mu.Unlock()
	return nil
}

func (g *gatedStore) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int
	for _, c := range g.calls {
		out = append(out, len(c))
	}
	return out
}

func kindWrite(kind string) store.LoginWrite {
	return store.LoginWrite{Audit: []store.AuditEvent{{Kind: kind}}}
}

// queueBehindFlush starts one write that blocks in the store, then the
// others, and waits until they are all queued behind it; it returns their
// results, in the order of kinds, once every write has returned.
func queueBehindFlush(t *testing.T, lw *loginWriter, g *gatedStore, kinds ...string) func() []error {
	t.Helper()
	errs := make([]error, len(kinds)+1)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = lw.write(context.Background(), kindWrite("first")) })
	<-g.entered
	for i, k := range kinds {
		wg.Go(func() { errs[i+1] = lw.write(context.Background(), kindWrite(k)) })
	}
	for deadline := time.Now().Add(5 * time.Second); len(lw.queue) < len(kinds); {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d logins queued", len(lw.queue), len(kinds))
		}
		time.Sleep(time.Millisecond)
	}
	return func() []error {
		close(g.gate)
		wg.Wait()
		return errs
	}
}

// Logins that arrive during a flush form the next batches, of at most
// maxBatch logins; a lone login is its own batch at once.
func TestLoginWriterBatches(t *testing.T) {
	g := newGatedStore()
	lw := newLoginWriter(g, 4, 64)
	start := time.Now()
	wait := queueBehindFlush(t, lw, g, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	// The first flush was held at the gate while the others queued: the
	// flushes' time in the store is some of the test's, not more.
	if busy, elapsed := time.Duration(lw.BusyNanos.Load()), time.Since(start); busy <= 0 || busy > elapsed {
		t.Fatalf("BusyNanos %v, want more than 0 and at most the %v the flushes took", busy, elapsed)
	}
	if got, want := g.sizes(), []int{1, 4, 4, 2}; !slices.Equal(got, want) {
		t.Fatalf("batch sizes %v, want %v", got, want)
	}
	if b, l := lw.Batches.Load(), lw.Logins.Load(); b != 4 || l != 11 {
		t.Fatalf("Batches %d Logins %d, want 4 and 11", b, l)
	}
}

// A batch that fails is written login by login: the login whose row is bad
// gets the error, the others are committed and told so.
func TestLoginWriterFailureIsPerLogin(t *testing.T) {
	g := newGatedStore()
	lw := newLoginWriter(g, 16, 64)
	errs := queueBehindFlush(t, lw, g, "ok1", "bad", "ok2")()
	if errs[0] != nil || errs[1] != nil || errs[2] == nil || errs[3] != nil {
		t.Fatalf("results %v: want only the bad login's to fail", errs)
	}
	slices.Sort(g.written)
	if want := []string{"first", "ok1", "ok2"}; !slices.Equal(g.written, want) {
		t.Fatalf("committed %v, want %v", g.written, want)
	}
	if lw.Retries.Load() != 1 {
		t.Fatalf("Retries %d, want 1", lw.Retries.Load())
	}
}

// Overflow rule: a login that finds the queue full writes alone, at once,
// instead of waiting or being refused.
func TestLoginWriterOverflowWritesAlone(t *testing.T) {
	g := newGatedStore()
	lw := newLoginWriter(g, 16, 1)
	wait := queueBehindFlush(t, lw, g, "queued")
	if err := lw.write(context.Background(), kindWrite("overflow")); err != nil {
		t.Fatalf("overflowing login: %v", err)
	}
	if lw.Overflows.Load() != 1 || !slices.Contains(g.written, "overflow") {
		t.Fatalf("Overflows %d, written %v: want the overflowing login written alone", lw.Overflows.Load(), g.written)
	}
	for i, err := range wait() {
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
}
