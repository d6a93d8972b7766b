package router

import (
	"context"
	"sync"
	"time"
)

// maxBatch is the size at which a batch is sent without waiting.
const maxBatch = 32 << 10

// batcher gathers messages per subject and publishes each subject's batch
// at most FlushInterval after its first message, or at once past maxBatch.
// Its run loop is the only publisher of timed batches; a full batch is
// published by the goroutine that filled it. Batches are taken and
// published under sendMu, so a subject's batches go out in the order they
// were filled (inputs of one player stay in order). Lock order: sendMu,
// then mu.
type batcher struct {
	every   time.Duration
	publish func(subject string, data []byte)

	sendMu  sync.Mutex
	mu      sync.Mutex
	pending map[string]*batch
	wake    chan struct{} // capacity 1
	pool    sync.Pool
}

// batch is one subject's pending bytes, and on the node side the frame
// being sent to several sockets of one gateway (output.go), not yet
// encoded.
type batch struct {
	buf []byte
	run frameRun
}

func newBatcher(every time.Duration, publish func(string, []byte)) *batcher {
	return &batcher{every: every, publish: publish, pending: map[string]*batch{}, wake: make(chan struct{}, 1)}
}

// with runs fn on subject's batch under the lock; fn appends to it. A batch
// that grows past maxBatch is sent at once.
func (b *batcher) with(subject string, fn func(*batch)) {
	b.mu.Lock()
	bt := b.pending[subject]
	if bt == nil {
		bt, _ = b.pool.Get().(*batch)
		if bt == nil {
			bt = &batch{}
		}
		b.pending[subject] = bt
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	fn(bt)
	full := len(bt.buf) >= maxBatch
	b.mu.Unlock()
	if full {
		b.flushSubject(subject)
	}
}

// flushSubject sends subject's batch now, after any batch being sent.
func (b *batcher) flushSubject(subject string) {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	b.mu.Lock()
	bt := b.pending[subject]
	if bt != nil {
		b.take(subject, bt)
	}
	b.mu.Unlock()
	if bt != nil {
		b.send(subject, bt)
	}
}

// take removes a batch for sending (b.mu held) and seals it.
func (b *batcher) take(subject string, bt *batch) *batch {
	delete(b.pending, subject)
	bt.seal()
	return bt
}

func (b *batcher) send(subject string, bt *batch) {
	b.publish(subject, bt.buf)
	bt.buf = bt.buf[:0]
	if cap(bt.buf) <= 4*maxBatch {
		b.pool.Put(bt)
	}
}

// flush sends every pending batch.
func (b *batcher) flush() {
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	out := make(map[string]*batch, len(b.pending))
	for s, bt := range b.pending {
		out[s] = b.take(s, bt)
	}
	b.mu.Unlock()
	for s, bt := range out {
		b.send(s, bt)
	}
}

// run waits for a first message, lets the interval pass so more join it,
// and flushes; on ctx's end it flushes what is left and returns.
func (b *batcher) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.flush()
			return
		case <-b.wake:
		}
		t.Reset(b.every)
		select {
		case <-ctx.Done():
			t.Stop()
			b.flush()
			return
		case <-t.C:
		}
		b.flush()
	}
}
