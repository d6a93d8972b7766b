package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrQueueFull: Publish dropped an event (not a match.ended) because
	// the queue held PublisherConfig.Buffer events.
	ErrQueueFull = errors.New("events: publish queue full; event dropped")
	// ErrClosed: Publish after Close (match.ended events are still spooled).
	ErrClosed = errors.New("events: publisher closed")
	// ErrLost: Close could not publish or spool every event.
	ErrLost = errors.New("events: events lost at close")
)

// PublisherConfig configures a Publisher; zero fields take defaults.
type PublisherConfig struct {
	// Buffer bounds the in-memory queue (default 10,000 events).
	Buffer int
	// SpoolDir holds match.ended events that could not be queued or
	// published (created if missing). Empty: no spool; match.ended events
	// then go over Buffer in memory, and are lost at a crash or at Close
	// with NATS down.
	SpoolDir string
	// MaxRetryBackoff caps the wait between attempts while NATS is
	// unreachable (default 5s; the first wait is 50ms, doubling).
	MaxRetryBackoff time.Duration
	// AckTimeout bounds the wait for a publish acknowledgement (default
	// 5s).
	AckTimeout time.Duration
	// MaxInFlight is the number of publishes awaiting their ack at once
	// (default 256).
	MaxInFlight int
	// Signer signs every event (HeaderSignature) at publish. Nil: the
	// bus's (Config.Signer); with neither, events go unsigned, and a
	// persistence service that checks signatures dead-letters them.
	Signer *Signer
}

func (c *PublisherConfig) defaults() {
	if c.Buffer <= 0 {
		c.Buffer = 10_000
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = 5 * time.Second
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 256
	}
}

const firstBackoff = 50 * time.Millisecond

// item is an encoded event waiting to be published.
type item struct {
	id, typ, matchID string
	data             []byte
	fromSpool        bool // read back from the spool: already on disk
}

// Publisher publishes events to the bus from one background goroutine.
// Publish never blocks on NATS. Overflow rule: when Buffer events wait, a
// match.ended event is appended to the spool (fsync'ed) and any other
// event is dropped, counted and logged. See docs/events.md.
type Publisher struct {
	bus   *Bus
	js    jetstream.JetStream
	cfg   PublisherConfig
	log   *slog.Logger
	spool *spool // nil without SpoolDir

	mu      sync.Mutex
	queue   []item // queue[head:] waits, oldest first
	head    int
	closing bool

	wake      chan struct{} // capacity 1: "there is work"
	closingCh chan struct{} // closed by Close: flush, then exit
	stop      chan struct{} // closed when Close's ctx ends: exit now
	done      chan struct{} // closed when the goroutine has exited

	// Owned by the goroutine (and by Close once done is closed).
	pending      []item       // taken from the queue or the spool, not yet acknowledged
	replay       *spoolReader // the spool being replayed, if any
	replayBroken bool         // a replay failed to read: no more until the next start
	nPending     atomic.Int64 // len(pending), for Buffered
	failSince    time.Time    // start of the current run of failures
	failing      atomic.Bool  // publishing fails: Publish spools match.ended at once
	lastWarn     time.Time    // last "still failing" log
	dropLog      rateLimitedLog

	// Counters, for metrics: events acknowledged by the stream (duplicates
	// included), failed attempts to be retried (per event), events lost
	// (never to reach the stream), match.ended events written to the spool.
	Published, Retried, Dropped, Spooled atomic.Int64
}

// NewPublisher starts a publisher on bus. A spool left by an earlier run is
// replayed as soon as the queue is empty. Close it before the bus.
func NewPublisher(bus *Bus, cfg PublisherConfig, log *slog.Logger) *Publisher {
	cfg.defaults()
	if cfg.Signer == nil {
		cfg.Signer = bus.Signer()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{bus: bus, cfg: cfg, log: log,
		wake: make(chan struct{}, 1), closingCh: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	p.dropLog.log = log
	js, err := jetstream.New(bus.Conn(),
		jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil { // only for a nil connection
		panic(fmt.Sprintf("events: jetstream.New: %v", err))
	}
	p.js = js
	if cfg.SpoolDir != "" {
		s, err := openSpool(cfg.SpoolDir)
		if err != nil {
			log.Error("events: spool unusable; match.ended events over the buffer stay in memory", "dir", cfg.SpoolDir, "err", err)
		} else {
			p.spool = s
		}
	}
	go p.run()
	return p
}

// Buffered is the number of events waiting in memory (queued or awaiting
// their ack); spooled events are not counted.
func (p *Publisher) Buffered() int {
	p.mu.Lock()
	n := len(p.queue) - p.head
	p.mu.Unlock()
	return n + int(p.nPending.Load())
}

// Publish queues ev and returns at once; it never waits for NATS. It fails
// when ev does not encode (ErrInvalid), when the queue is full (ErrQueueFull;
// match.ended events are spooled instead, which costs one fsync'ed append)
// and after Close (ErrClosed, but match.ended events are spooled). Every
// dropped event is counted in Dropped and logged at error level.
func (p *Publisher) Publish(ev Event) error {
	data, err := Encode(ev)
	if err != nil {
		p.drop(item{id: ev.ID, typ: ev.Type, matchID: ev.MatchID}, err.Error())
		return err
	}
	it := item{id: ev.ID, typ: ev.Type, matchID: ev.MatchID, data: data}
	ended := ev.Type == TypeMatchEnded
	p.mu.Lock()
	// The bound counts events in flight too: while NATS is away they sit in
	// the client's reconnect buffer, not yet acknowledged.
	full := len(p.queue)-p.head+int(p.nPending.Load()) >= p.cfg.Buffer
	switch {
	case p.closing:
		p.mu.Unlock()
		if ended && p.spool != nil {
			return p.spoolItems([]item{it}, "publisher closed")
		}
		p.drop(it, "publisher closed")
		return ErrClosed
	case ended && p.spool != nil && p.failing.Load():
		// NATS is failing: a result goes to disk at once rather than wait
		// in memory, where a crash would lose it.
		p.mu.Unlock()
		return p.spoolItems([]item{it}, "publishing failing")
	case full && ended && p.spool != nil:
		p.mu.Unlock()
		return p.spoolItems([]item{it}, "queue full")
	case full && !ended:
		p.mu.Unlock()
		p.drop(it, "queue full")
		return ErrQueueFull
	}
	// A match.ended over the bound without a spool stays in memory.
	if p.head > 0 && p.head >= len(p.queue)/2 {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	p.queue = append(p.queue, it)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Close stops accepting events, keeps publishing until the queue is empty
// or ctx ends, then writes every unpublished match.ended event to the
// spool (published by the next Publisher on the same SpoolDir). It returns
// an error wrapping ErrLost with the number of other events lost.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closing = true
	close(p.closingCh)
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		close(p.stop)
		<-p.done
	}
	p.js.CleanupPublisher()

	p.mu.Lock()
	rest := append(p.pending, p.queue[p.head:]...)
	p.pending, p.queue, p.head = nil, nil, 0
	p.mu.Unlock()
	p.nPending.Store(0)

	var ended, other []item
	for _, it := range rest {
		switch {
		case it.fromSpool: // still in the spool file
		case it.typ == TypeMatchEnded:
			ended = append(ended, it)
		default:
			other = append(other, it)
		}
	}
	endedLost := 0
	if len(ended) > 0 {
		if p.spool == nil {
			for _, it := range ended {
				p.drop(it, "unpublished at close, no spool")
			}
			endedLost = len(ended)
		} else if err := p.spoolItems(ended, "unpublished at close"); err != nil {
			endedLost = len(ended) // dropped and logged by spoolItems
		}
	}
	for _, it := range other {
		p.drop(it, "unpublished at close")
	}
	if lost := endedLost + len(other); lost > 0 {
		p.log.Error("events lost at close", "lost", lost, "match_ended_lost", endedLost)
		return fmt.Errorf("%w: %d events (%d match.ended)", ErrLost, lost, endedLost)
	}
	return nil
}

// spoolItems appends to the spool; on failure the events are dropped.
func (p *Publisher) spoolItems(items []item, why string) error {
	if err := p.spool.append(items); err != nil {
		for _, it := range items {
			p.drop(it, "spool write failed: "+err.Error())
		}
		return fmt.Errorf("events: spool: %w", err)
	}
	p.Spooled.Add(int64(len(items)))
	for _, it := range items {
		p.log.Warn("match.ended event spooled", "reason", why, "match", it.matchID, "event", it.id)
	}
	select { // the goroutine replays the spool when idle
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// drop counts and logs a lost event. A match.ended is logged with its
// content so an operator can recover it.
func (p *Publisher) drop(it item, why string) {
	n := p.Dropped.Add(1)
	attrs := []any{"reason", why, "type", it.typ, "match", it.matchID, "event", it.id, "dropped_total", n}
	if it.typ == TypeMatchEnded {
		p.log.Error("MATCH RESULT LOST", append(attrs, "data", string(it.data))...)
		return
	}
	p.dropLog.error("event dropped", attrs...)
}

// run is the publishing goroutine.
func (p *Publisher) run() {
	defer close(p.done)
	defer func() { p.replay.close() }() // the file stays for the next start
	backoff := firstBackoff
	for {
		if len(p.pending) == 0 && !p.fill() {
			return
		}
		if len(p.pending) == 0 {
			continue
		}
		err := p.publishPending()
		p.nPending.Store(int64(len(p.pending)))
		if err == nil {
			backoff = firstBackoff
			if !p.failSince.IsZero() {
				p.failing.Store(false)
				p.log.Info("publishing events resumed", "after", time.Since(p.failSince).Round(time.Millisecond), "buffered", p.Buffered())
				p.failSince = time.Time{}
			}
			continue
		}
		if errors.Is(err, errStopped) {
			return
		}
		p.Retried.Add(int64(len(p.pending)))
		now := time.Now()
		if p.failSince.IsZero() {
			p.failSince, p.lastWarn = now, now
			p.failing.Store(true)
			p.log.Warn("publishing events failed; retrying", "err", err, "buffered", p.Buffered())
			p.evacuate()
		} else if now.Sub(p.lastWarn) >= 30*time.Second {
			p.lastWarn = now
			p.log.Warn("publishing events still failing", "err", err, "since", now.Sub(p.failSince).Round(time.Second), "buffered", p.Buffered())
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) && p.bus.Conn().IsConnected() {
			// Connected but no stream answers: a server that lost its
			// state. Put the streams back.
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.AckTimeout)
			if err := p.bus.ensureStreams(ctx); err != nil {
				p.log.Warn("events: recreate streams", "err", err)
			}
			cancel()
		}
		t := time.NewTimer(backoff)
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, p.cfg.MaxRetryBackoff)
	}
}

// fill takes the next batch into pending: from the queue, else (unless
// closing) from the spool. It waits when there is nothing, and returns
// false when the goroutine must exit.
func (p *Publisher) fill() bool {
	for {
		p.mu.Lock()
		n := min(len(p.queue)-p.head, p.cfg.MaxInFlight)
		if n > 0 {
			p.pending = append(p.pending[:0], p.queue[p.head:p.head+n]...)
			clear(p.queue[p.head : p.head+n])
			p.head += n
			if p.head == len(p.queue) {
				p.queue, p.head = p.queue[:0], 0
			}
			p.nPending.Store(int64(n))
			p.mu.Unlock()
			return true
		}
		closing := p.closing
		p.mu.Unlock()
		// Spooled results are replayed when the queue is empty, and on
		// Close too (within its context): a graceful stop with NATS up
		// leaves nothing behind.
		if p.spool != nil && !p.replayBroken && p.fillFromSpool() {
			return true
		}
		if closing {
			return false
		}
		select {
		case <-p.wake:
		case <-p.closingCh:
		case <-p.stop:
			return false
		}
	}
}

// fillFromSpool takes the next batch of the spool being replayed, starting
// a replay when the spool has data.
func (p *Publisher) fillFromSpool() bool {
	for {
		if p.replay == nil {
			r, err := p.spool.startReplay()
			if err != nil {
				p.log.Error("events: replay spool; retried at the next start", "dir", p.cfg.SpoolDir, "err", err)
				p.replayBroken = true
				return false
			}
			if r == nil {
				return false
			}
			p.replay = r
			p.log.Info("replaying spooled match.ended events", "file", r.name)
		}
		for len(p.pending) < p.cfg.MaxInFlight {
			line, err := p.replay.next()
			if err == io.EOF {
				break
			}
			if err != nil { // the file stays for the next start
				p.log.Error("events: replay spool; retried at the next start", "err", err)
				p.replay.close()
				p.replay, p.replayBroken = nil, true
				return len(p.pending) > 0
			}
			ev, err := Decode(line)
			if err != nil {
				p.drop(item{typ: TypeMatchEnded, data: line}, "unreadable spool line: "+err.Error())
				continue
			}
			p.pending = append(p.pending, item{id: ev.ID, typ: ev.Type, matchID: ev.MatchID, data: line, fromSpool: true})
		}
		if len(p.pending) > 0 {
			p.nPending.Store(int64(len(p.pending)))
			return true
		}
		// Every line was published: the replayed file goes.
		if err := p.spool.finishReplay(p.replay); err != nil {
			p.log.Error("events: remove replayed spool", "err", err)
		}
		p.replay = nil
	}
}

var errStopped = errors.New("stopped")

// evacuate moves the match.ended events waiting in memory (pending and
// queued) to the spool when publishing starts failing, so that a crash
// during a NATS outage loses no result. They are published again from
// the spool when NATS is back (an event whose ack was lost is then a
// duplicate, dropped by the stream or by the consumer's idempotency).
func (p *Publisher) evacuate() {
	if p.spool == nil {
		return
	}
	var out []item
	ids := map[string]struct{}{}
	for _, it := range p.pending {
		if it.typ == TypeMatchEnded && !it.fromSpool {
			out = append(out, it)
			ids[it.id] = struct{}{}
		}
	}
	p.mu.Lock()
	for _, it := range p.queue[p.head:] {
		if it.typ == TypeMatchEnded {
			out = append(out, it)
			ids[it.id] = struct{}{}
		}
	}
	p.mu.Unlock()
	if len(out) == 0 {
		return
	}
	if err := p.spool.append(out); err != nil {
		p.log.Error("events: spool match.ended events; they stay in memory", "err", err)
		return
	}
	p.Spooled.Add(int64(len(out)))
	p.log.Warn("match.ended events moved to the spool while publishing fails", "events", len(out))
	// Only this goroutine removes from the queue, so every id is still
	// there (Publish only appends).
	p.pending = slices.DeleteFunc(p.pending, func(it item) bool { _, ok := ids[it.id]; return ok && !it.fromSpool })
	p.mu.Lock()
	q := slices.DeleteFunc(p.queue[p.head:], func(it item) bool { _, ok := ids[it.id]; return ok })
	p.queue = p.queue[:p.head+len(q)]
	p.mu.Unlock()
	p.nPending.Store(int64(len(p.pending)))
}

// publishPending publishes every pending event (at most MaxInFlight, so
// PublishMsgAsync never stalls) and waits for the acks. Acknowledged
// events leave pending; the others stay, in order, for the next attempt.
func (p *Publisher) publishPending() error {
	if !p.bus.Conn().IsConnected() {
		return fmt.Errorf("nats %s", p.bus.Conn().Status())
	}
	futs := make([]jetstream.PubAckFuture, 0, len(p.pending))
	var sendErr, firstErr error
	for i := range p.pending {
		it := &p.pending[i]
		m := &nats.Msg{Subject: p.bus.Subject(it.typ), Data: it.data}
		if p.cfg.Signer != nil {
			m.Header = nats.Header{HeaderSignature: []string{p.cfg.Signer.Sign(it.data)}}
		}
		f, err := p.js.PublishMsgAsync(m, jetstream.WithMsgID(it.id))
		if err != nil {
			sendErr = err
			break
		}
		futs = append(futs, f)
	}
	keep := make([]item, 0, len(p.pending)-len(futs))
	timer := time.NewTimer(p.cfg.AckTimeout + time.Second)
	defer timer.Stop()
	expired := false
	for i, f := range futs {
		it := p.pending[i]
		var err error
		if expired {
			select {
			case <-f.Ok():
			case err = <-f.Err():
			default:
				err = jetstream.ErrAsyncPublishTimeout
			}
		} else {
			select {
			case <-f.Ok():
			case err = <-f.Err():
			case <-timer.C:
				expired, err = true, jetstream.ErrAsyncPublishTimeout
			case <-p.stop:
				return errStopped // Close takes pending as it is
			}
		}
		if err == nil {
			p.Published.Add(1)
			continue
		}
		if permanent(err) {
			p.drop(it, err.Error())
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
		keep = append(keep, it)
	}
	rest := p.pending[len(futs):]
	switch {
	case len(rest) > 0 && permanent(sendErr):
		p.drop(rest[0], sendErr.Error()) // refused before sending
		rest = rest[1:]
	case sendErr != nil:
		firstErr = sendErr
	}
	p.pending = append(keep, rest...)
	return firstErr // nil with events left: sending stopped at a dropped one; go on
}

// permanent reports errors that retrying cannot fix.
func permanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// rateLimitedLog logs at most 20 lines a second, and says how many it
// suppressed with the next line.
type rateLimitedLog struct {
	log        *slog.Logger
	mu         sync.Mutex
	sec        int64
	n          int
	suppressed int
}

func (r *rateLimitedLog) error(msg string, attrs ...any) {
	r.mu.Lock()
	now := time.Now().Unix()
	if now != r.sec {
		r.sec, r.n = now, 0
	}
	r.n++
	if r.n > 20 {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	if r.suppressed > 0 {
		attrs = append(attrs, "suppressed_lines", r.suppressed)
		r.suppressed = 0
	}
	r.mu.Unlock()
	r.log.Error(msg, attrs...)
}
