package persist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/store"
)

// Defaults of Config.
const (
	DefaultDurable    = "persistence"
	DefaultBatch      = 500
	DefaultMaxWait    = 200 * time.Millisecond
	DefaultAckWait    = 30 * time.Second
	DefaultMaxDeliver = 5
)

// DefaultBackoff is the default Config.Backoff.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second}

const (
	maxBatch      = 10_000
	fetchMaxBytes = 64 << 20        // bytes pulled ahead, whatever Batch is
	maxPause      = 5 * time.Second // longest pause after failures
	warnEvery     = 10 * time.Second
	minMaxAckPend = 1000
	// pullSlack is room in the client's message channel beyond what the
	// server may deliver unacknowledged (MaxAckPending), for the status
	// messages (heartbeats, request ends) that share the channel: nats.go
	// drops a message that finds the channel full ("slow consumer"), and
	// the server then redelivers it only after AckWait.
	pullSlack      = 256
	setupTimeout   = 10 * time.Second // one consumer create/update request
	maxHeaderValue = 1024
)

// Config configures a Consumer; zero fields take the defaults.
type Config struct {
	// Durable is the consumer's name (default "persistence"). Every
	// instance of the service shares it: they split the work.
	Durable string
	// Batch is the most messages fetched, and written in one transaction,
	// at once (default 500, at most 10,000).
	Batch int
	// MaxWait is how long a batch waits for more messages (default
	// 200ms): the longest an event waits in the stream when the service
	// keeps up.
	MaxWait time.Duration
	// AckWait is how long the server waits for an ack before redelivering
	// (default 30s).
	AckWait time.Duration
	// MaxDeliver is the number of deliveries after which a message that
	// still fails is dead-lettered (default 5).
	MaxDeliver int
	// Backoff are the redelivery delays after transient failures, by
	// delivery (the last one repeats); default 1s, 5s, 15s, 30s.
	Backoff []time.Duration
	// Signer checks every event's signature (events.HeaderSignature)
	// before anything else: an unsigned or wrongly signed event is
	// dead-lettered with the reason and never written. Nil: the bus's
	// (events.Config.Signer); with neither, no check (tests; the
	// application always sets one).
	Signer *events.Signer
}

func (c *Config) defaults() {
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.Batch <= 0 {
		c.Batch = DefaultBatch
	}
	c.Batch = min(c.Batch, maxBatch)
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	var b []time.Duration
	for _, d := range c.Backoff {
		if d > 0 {
			b = append(b, d)
		}
	}
	if len(b) == 0 {
		b = DefaultBackoff
	}
	c.Backoff = append([]time.Duration(nil), b...)
}

// Store is what the consumer writes to; *store.Store satisfies it.
type Store interface {
	ApplyChanges(ctx context.Context, ch []store.Change) (int, error)
}

// Consumer moves events from the events stream to the store. Run it once
// (several processes may each run one with the same Durable).
type Consumer struct {
	// Counters, for metrics. Processed: events acked after being handled
	// (applied and duplicates). Retried: deliveries naked for a later
	// attempt. DeadLettered: messages moved to the DLQ. Duplicates:
	// processed events whose id the store had already applied.
	Processed, Retried, DeadLettered, Duplicates atomic.Int64
	// Refused counts the dead letters refused for their signature
	// (unsigned or wrongly signed: forged, or from another deployment).
	Refused atomic.Int64

	bus     *events.Bus
	js      jetstream.JetStream
	st      Store
	cfg     Config
	log     *slog.Logger
	running atomic.Bool

	lastWarn atomic.Int64 // unix nanoseconds of the last warning (warn)
}

// failures counts one goroutine's consecutive transient failures (Run's,
// or a lane's), which lengthen its pauses.
type failures struct{ n int }

// New returns a consumer of bus's events stream writing to st. It does
// nothing until Run.
func New(bus *events.Bus, st Store, cfg Config, log *slog.Logger) *Consumer {
	cfg.defaults()
	if cfg.Signer == nil {
		cfg.Signer = bus.Signer()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{bus: bus, js: bus.JetStream(), st: st, cfg: cfg, log: log.With("component", "persist")}
}

func (c *Consumer) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.cfg.Durable,
		Description:   "multijuego persistence service",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		// Unlimited: the consumer dead-letters by itself after
		// cfg.MaxDeliver deliveries, with the error; the server must never
		// drop a message silently.
		MaxDeliver:    -1,
		FilterSubject: c.bus.Subject(">"),
		MaxAckPending: c.maxAckPending(),
	}
}

// maxAckPending is the consumer's MaxAckPending: room for the parts being
// written and queued in the lanes and the batch being read.
func (c *Consumer) maxAckPending() int { return max(minMaxAckPend, 4*c.cfg.Batch) }

// pullSize is how many messages consume asks the server for at once, which
// is also the capacity of the client's message channel: more than the
// server may deliver unacknowledged, so that the channel never fills (see
// pullSlack).
func pullSize(cons jetstream.Consumer, fallback int) int {
	n := fallback
	if info := cons.CachedInfo(); info != nil && info.Config.MaxAckPending > 0 {
		n = info.Config.MaxAckPending
	}
	return n + pullSlack
}

// Run creates or updates the durable consumer and processes events until
// ctx ends; it then returns nil. It returns an error when the consumer
// cannot be set up because JetStream refuses it (an API error: no such
// stream, a conflicting consumer configuration); other failures (NATS or
// the database unreachable) are logged and retried for as long as ctx
// lasts. Run may not be called twice at once.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("persist: consumer already running")
	}
	defer c.running.Store(false)
	var f failures
	cons, err := c.ensureConsumer(ctx, &f)
	if err != nil || cons == nil {
		return err
	}
	c.log.Info("persistence consumer running", "stream", c.bus.EventsStream(), "durable", c.cfg.Durable)
	for ctx.Err() == nil {
		err := c.consume(ctx, cons)
		if ctx.Err() != nil {
			break
		}
		// The consumer may be gone (deleted, or lost with a server's
		// storage); a pull for a missing consumer is not always reported
		// as such, so it is recreated (or found unchanged) after any
		// failure.
		c.warn("reading the events stream failed; checking the consumer", "err", err)
		c.pause(ctx, &f)
		if cons, err = c.ensureConsumer(ctx, &f); err != nil || cons == nil {
			return err
		}
	}
	return nil
}

// Lanes: the events of a batch are written by two writers that run side
// by side, each at its own pace, on their own connections and transactions.
const (
	laneMoments = iota // match.event: plain idempotent inserts, no lock, nothing derived
	laneResults        // match.started, match.ended (derived data, under the store's apply lock) and poison messages
	numLanes
)

// laneQueue is how many batch parts a lane holds while it writes: a busy
// lane merges them into its next transaction (up to Config.Batch events).
const laneQueue = 4

// consume reads the stream continuously (the client keeps pull requests
// outstanding for more than MaxAckPending messages, so the server, not
// the client's buffer, bounds what is delivered) and cuts it into batches: the
// first message of a batch waits as long as it takes, the rest at most
// MaxWait. Each batch is parsed and split between the two lanes, whose
// writers write and acknowledge their part while the next batches are read.
// Every queue is bounded: a lane holds at most laneQueue parts, and when
// it is full the reader waits (and the stream's MaxAckPending bounds what
// the server delivers meanwhile). consume returns nil when ctx ends, or the
// error that stopped the message stream, once every batch read has been
// written or handed back.
func (c *Consumer) consume(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(pullSize(cons, c.maxAckPending()), fetchMaxBytes))
	if err != nil {
		return err
	}
	defer it.Stop()
	var lanes [numLanes]chan []*item
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan []*item, laneQueue)
		wg.Add(1)
		go func() { // owned by consume: it closes the lane and waits below
			defer wg.Done()
			c.runLane(ctx, lanes[i])
		}()
	}
	readErr := c.read(ctx, it, lanes)
	for _, l := range lanes {
		close(l)
	}
	wg.Wait()
	handBack(it)
	return readErr
}

// runLane writes the parts sent to in until it is closed; parts queued
// while a write runs are merged into the next one, up to Config.Batch
// events. Once ctx ends, what is left is handed back.
func (c *Consumer) runLane(ctx context.Context, in <-chan []*item) {
	var f failures
	for items := range in {
		for len(items) < c.cfg.Batch {
			more, ok := tryRecv(in)
			if !ok {
				break
			}
			items = append(items, more...)
		}
		if ctx.Err() != nil {
			c.nakItemsNow(items)
			continue
		}
		c.write(ctx, &f, items)
	}
}

// tryRecv takes a part from in if one is waiting.
func tryRecv(in <-chan []*item) ([]*item, bool) {
	select {
	case items, ok := <-in:
		return items, ok
	default:
		return nil, false
	}
}

// handBack stops it and naks what the client pulled but nobody took, so
// the server redelivers it at once, to this instance or another, instead
// of after AckWait (a graceful restart would otherwise delay those events
// by AckWait).
func handBack(it jetstream.MessagesContext) {
	it.Drain()
	for {
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return
		}
		_ = m.Nak()
	}
}

// read parses batches from it and hands them to the lanes until ctx ends
// (nil) or the stream fails (its error).
func (c *Consumer) read(ctx context.Context, it jetstream.MessagesContext, lanes [numLanes]chan []*item) error {
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var parts [numLanes][]*item
		add := func(m jetstream.Msg) {
			x := parseItem(m, c.cfg.Signer)
			l := laneResults
			if x.err == nil && x.change.Event != nil {
				l = laneMoments
			}
			parts[l] = append(parts[l], x)
		}
		add(m)
		n := 1
		gctx, cancel := context.WithTimeout(ctx, c.cfg.MaxWait)
		for ; n < c.cfg.Batch; n++ {
			if m, err = it.Next(jetstream.NextContext(gctx)); err != nil {
				break
			}
			add(m)
		}
		waited := gctx.Err() != nil // the batch's wait ended (or ctx did)
		cancel()
		for l, p := range parts {
			if len(p) == 0 {
				continue
			}
			select {
			case lanes[l] <- p:
			case <-ctx.Done():
				for _, p := range parts[l:] {
					c.nakItemsNow(p)
				}
				return nil
			}
		}
		if err != nil && !waited {
			return err // the stream failed, not the batch's wait
		}
	}
}

// ensureConsumer creates or updates the durable consumer, retrying
// non-API failures until ctx ends (then it returns nil, nil).
func (c *Consumer) ensureConsumer(ctx context.Context, f *failures) (jetstream.Consumer, error) {
	cfg := c.consumerConfig()
	for {
		rctx, cancel := context.WithTimeout(ctx, setupTimeout)
		cons, err := c.js.CreateOrUpdateConsumer(rctx, c.bus.EventsStream(), cfg)
		cancel()
		if err == nil {
			f.n = 0
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("persist: create consumer %s on %s: %w", cfg.Durable, c.bus.EventsStream(), err)
		}
		c.warn("create consumer failed; retrying", "err", err)
		c.pause(ctx, f)
	}
}

// item is a decoded message waiting for the store. It belongs to one
// goroutine at a time (the reader, then a lane).
type item struct {
	msg    jetstream.Msg
	ev     events.Event
	change store.Change
	err    error // why it cannot be stored (poison), or nil

	// The message's metadata, read from its reply subject only when
	// needed (failures, dead letters): most messages are just acked.
	metaRead  bool
	meta      *jetstream.MsgMetadata // nil when unreadable
	delivered int
}

// metadata returns the message's metadata (nil when unreadable) and its
// delivery count (1 when unknown).
func (it *item) metadata() (*jetstream.MsgMetadata, int) {
	if !it.metaRead {
		it.metaRead, it.delivered = true, 1
		if meta, err := it.msg.Metadata(); err == nil {
			it.meta = meta
			it.delivered = int(min(meta.NumDelivered, 1<<31))
		}
	}
	return it.meta, it.delivered
}

// deliveries is the message's delivery count (1 when unknown).
func (it *item) deliveries() int {
	_, n := it.metadata()
	return n
}

// parseItem decodes m into an item; an undecodable message, or one whose
// signature signer refuses, gets err.
func parseItem(m jetstream.Msg, signer *events.Signer) *item {
	it := newItem(m)
	ev, payload, err := events.Parse(m.Data())
	if err == nil {
		it.ev = ev
		it.change, err = toChange(ev, payload)
	}
	if signer != nil {
		if serr := signer.Verify(m.Data(), m.Headers().Get(events.HeaderSignature)); serr != nil {
			err = fmt.Errorf("refused: %w", serr)
		}
	}
	it.err = err
	return it
}

func newItem(m jetstream.Msg) *item { return &item{msg: m} }

// write stores a lane's part: poison items go to the dead-letter queue,
// the rest to the store in one transaction, acked after its commit.
func (c *Consumer) write(ctx context.Context, f *failures, items []*item) {
	ok := items[:0:0]
	for i, it := range items {
		if ctx.Err() != nil {
			c.nakItemsNow(append(ok, items[i:]...))
			return
		}
		if it.err != nil {
			c.deadLetter(ctx, it, it.err)
			continue
		}
		ok = append(ok, it)
	}
	if len(ok) == 0 {
		return
	}
	changes := make([]store.Change, len(ok))
	for j, it := range ok {
		changes[j] = it.change
	}
	n, err := c.apply(ctx, changes)
	c.settle(ctx, f, ok, n, err)
}

// settle acks, isolates or hands back items after ApplyChanges returned n,
// err for them.
func (c *Consumer) settle(ctx context.Context, f *failures, items []*item, n int, err error) {
	switch {
	case err == nil:
		for _, it := range items {
			c.ack(it)
		}
		c.Processed.Add(int64(len(items)))
		c.Duplicates.Add(int64(len(items) - n))
		f.n = 0
	case ctx.Err() != nil:
		c.nakItemsNow(items)
	case errors.Is(err, store.ErrInvalid):
		c.log.Warn("store refused a batch; applying its events one by one", "events", len(items), "err", err)
		c.isolate(ctx, f, items)
	default:
		atMax := false
		for _, it := range items {
			atMax = atMax || it.deliveries() >= c.cfg.MaxDeliver
		}
		if atMax {
			c.warn("store write failed with events at their last delivery; applying them one by one",
				"events", len(items), "err", err)
			c.isolate(ctx, f, items)
			return
		}
		c.warn("store write failed; events will be redelivered", "events", len(items), "err", err)
		for _, it := range items {
			c.nakLater(it)
		}
		c.pause(ctx, f)
	}
}

// apply writes changes, within AckWait: past it the server redelivers
// them anyway, so a slower write counts as a transient failure.
func (c *Consumer) apply(ctx context.Context, changes []store.Change) (int, error) {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.AckWait)
	defer cancel()
	return c.st.ApplyChanges(wctx, changes)
}

// isolate applies items one at a time: see the package documentation.
func (c *Consumer) isolate(ctx context.Context, f *failures, items []*item) {
	transient := false
	for i, it := range items {
		if ctx.Err() != nil {
			c.nakItemsNow(items[i:])
			return
		}
		last := it.deliveries() >= c.cfg.MaxDeliver
		if transient && !last {
			c.nakLater(it)
			continue
		}
		n, err := c.apply(ctx, []store.Change{it.change})
		switch {
		case err == nil:
			c.ack(it)
			c.Processed.Add(1)
			c.Duplicates.Add(int64(1 - n))
		case ctx.Err() != nil:
			c.nakItemsNow(items[i:])
			return
		case errors.Is(err, store.ErrInvalid):
			c.deadLetter(ctx, it, err)
		default:
			transient = true
			if last {
				c.deadLetter(ctx, it, fmt.Errorf("delivered %d times: %w", it.deliveries(), err))
			} else {
				c.nakLater(it)
			}
		}
	}
	if transient {
		c.pause(ctx, f)
	} else {
		f.n = 0
	}
}

// toChange maps a parsed event to its store change.
func toChange(ev events.Event, payload any) (store.Change, error) {
	switch p := payload.(type) {
	case *events.MatchEvent:
		data := []byte(p.Data)
		if p.Sealed != "" {
			data = []byte(p.Sealed) // stored sealed, as it came: only readers open it
		}
		return store.EventChange(store.MatchEventRecord{EventID: ev.ID, MatchID: ev.MatchID, Name: p.Name, At: ev.Time, Data: data, Owner: p.Owner}), nil
	case *events.MatchStarted:
		return store.StartChange(store.MatchStartRecord{EventID: ev.ID, MatchID: ev.MatchID, Mode: p.Mode,
			Label: p.Label, Node: ev.Node, StartedAt: ev.Time}), nil
	case *events.MatchEnded:
		rs := make([]store.ResultRecord, len(p.Results))
		for i, r := range p.Results {
			rs[i] = store.ResultRecord{AccountID: r.AccountID, Placement: r.Placement, Score: r.Score, Stats: r.Stats}
		}
		return store.EndChange(store.MatchEndRecord{EventID: ev.ID, MatchID: ev.MatchID, Mode: p.Mode, Label: p.Label,
			Node: ev.Node, Reason: p.Reason, StartedAt: p.StartedAt, EndedAt: p.EndedAt, DurationMs: p.DurationMs,
			Results: rs}), nil
	}
	return store.Change{}, fmt.Errorf("persist: no store mapping for event type %q", ev.Type)
}

// deadLetter moves a message to the DLQ, then terminates it. When the DLQ
// does not take it, the message is naked for a later attempt.
func (c *Consumer) deadLetter(ctx context.Context, it *item, cause error) {
	dl := deadLetterMsg(c.bus, it, cause)
	if err := publishDeadLetter(ctx, c.js, c.bus, dl, it); err != nil {
		c.log.Error("dead-lettering failed; the message will be redelivered",
			"subject", it.msg.Subject(), "event_id", it.ev.ID, "cause", cause, "err", err)
		if ctx.Err() != nil {
			c.nakItemsNow([]*item{it})
		} else {
			c.nakLater(it)
		}
		return
	}
	if err := it.msg.Term(); err != nil {
		c.log.Debug("term failed", "err", err)
	}
	c.DeadLettered.Add(1)
	if errors.Is(cause, events.ErrUnsigned) || errors.Is(cause, events.ErrBadSignature) {
		c.Refused.Add(1)
	}
	c.log.Warn("event dead-lettered", "subject", it.msg.Subject(), "event_id", dl.Header.Get(HeaderEventID),
		"type", dl.Header.Get(HeaderType), "match_id", dl.Header.Get(HeaderMatchID), "deliveries", it.deliveries(),
		"err", cause)
}

func (c *Consumer) ack(it *item) {
	if err := it.msg.Ack(); err != nil {
		c.log.Debug("ack failed; the event will be redelivered (harmless)", "err", err)
	}
}

// nakLater naks with the backoff delay of the message's delivery count.
func (c *Consumer) nakLater(it *item) {
	d := c.cfg.Backoff[min(max(it.deliveries()-1, 0), len(c.cfg.Backoff)-1)]
	if err := it.msg.NakWithDelay(d); err != nil {
		c.log.Debug("nak failed; the server redelivers after AckWait", "err", err)
	}
	c.Retried.Add(1)
}

// nakItemsNow hands messages back for immediate redelivery (shutdown).
func (c *Consumer) nakItemsNow(items []*item) {
	for _, it := range items {
		_ = it.msg.Nak()
	}
}

// pause sleeps after a failure: Backoff[0], doubling with each
// consecutive failure counted in f, at most maxPause; less if ctx ends.
func (c *Consumer) pause(ctx context.Context, f *failures) {
	f.n++
	d := c.cfg.Backoff[0]
	for i := 1; i < f.n && d < maxPause; i++ {
		d *= 2
	}
	d = min(d, maxPause)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// warn logs at most once per warnEvery (whichever goroutine calls); the
// rest at debug level.
func (c *Consumer) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	if last := c.lastWarn.Load(); now-last >= int64(warnEvery) && c.lastWarn.CompareAndSwap(last, now) {
		c.log.Warn(msg, args...)
		return
	}
	c.log.Debug(msg, args...)
}

// Lag is the number of events not yet processed: the consumer's pending
// messages plus those delivered and not yet acknowledged (naked ones
// waiting for redelivery included). It fails while the consumer does not
// exist (before the first Run).
func (c *Consumer) Lag(ctx context.Context) (uint64, error) {
	cons, err := c.js.Consumer(ctx, c.bus.EventsStream(), c.cfg.Durable)
	if err != nil {
		return 0, fmt.Errorf("persist: consumer %s: %w", c.cfg.Durable, err)
	}
	info := cons.CachedInfo()
	return info.NumPending + uint64(max(info.NumAckPending, 0)), nil
}
