package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events"
)

// Headers of a dead letter (see the package documentation), and of a
// replayed event (HeaderReplayOf).
const (
	HeaderError      = "Mj-Error"
	HeaderDeliveries = "Mj-Deliveries"
	HeaderSubject    = "Mj-Subject"
	HeaderStreamSeq  = "Mj-Stream-Seq"
	HeaderEventID    = "Mj-Event-Id"
	HeaderType       = "Mj-Type"
	HeaderMatchID    = "Mj-Match-Id"
	HeaderMsgID      = "Mj-Msg-Id"
	HeaderReplayOf   = "Mj-Replay-Of"
)

// UnknownType is the DLQ subject's last token for a message whose type
// cannot be read.
const UnknownType = "unknown"

// Bounds of DLQ.List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ErrNotFound: no dead letter with that sequence.
var ErrNotFound = errors.New("persist: dead letter not found")

// DeadLetter is one message of the dead-letter stream.
type DeadLetter struct {
	Seq        uint64    // its sequence in the DLQ stream
	Time       time.Time // when it was dead-lettered
	Subject    string    // the subject it was originally published on
	StreamSeq  uint64    // its sequence in the events stream (0 if unknown)
	EventID    string    // "" when unreadable (poison)
	Type       string    // "" when unreadable
	MatchID    string    // "" when unreadable
	Error      string    // why it was dead-lettered
	Deliveries int       // deliveries to the consumer before it was
	Payload    []byte    // the original message data, unchanged
}

// typeRE: an event type usable as the DLQ subject's last tokens.
var typeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}(\.[A-Za-z0-9_-]{1,32}){0,3}$`)

// headerValue makes s a valid one-line header value of at most max bytes.
func headerValue(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// deadLetterMsg builds the DLQ message for it: the original data and
// headers (but Nats-*), plus the Mj-* ones.
func deadLetterMsg(bus *events.Bus, it *item, cause error) *nats.Msg {
	id, typ, matchID := it.ev.ID, it.ev.Type, it.ev.MatchID
	if id == "" { // not decoded: read what can be read
		var loose struct {
			ID      any `json:"id"`
			Type    any `json:"type"`
			MatchID any `json:"match_id"`
		}
		_ = json.Unmarshal(it.msg.Data(), &loose)
		str := func(v any) string {
			s, _ := v.(string)
			return headerValue(s, events.MaxIDLen)
		}
		id, typ, matchID = str(loose.ID), str(loose.Type), str(loose.MatchID)
	}
	subjType := typ
	if !typeRE.MatchString(subjType) {
		subjType = UnknownType
	}
	h := nats.Header{}
	for k, v := range it.msg.Headers() {
		l := strings.ToLower(k)
		if l == strings.ToLower(events.HeaderSignature) || !strings.HasPrefix(l, "nats-") && !strings.HasPrefix(l, "mj-") {
			h[k] = append([]string(nil), v...)
		}
	}
	h.Set(HeaderError, headerValue(cause.Error(), maxHeaderValue))
	meta, deliveries := it.metadata()
	h.Set(HeaderDeliveries, strconv.Itoa(deliveries))
	h.Set(HeaderSubject, it.msg.Subject())
	for k, v := range map[string]string{HeaderEventID: id, HeaderType: typ, HeaderMatchID: matchID,
		HeaderMsgID: headerValue(it.msg.Headers().Get(jetstream.MsgIDHeader), maxHeaderValue)} {
		if v != "" {
			h.Set(k, v)
		}
	}
	if meta != nil {
		h.Set(HeaderStreamSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	}
	return &nats.Msg{Subject: bus.DLQSubject(subjType), Data: it.msg.Data(), Header: h}
}

// publishDeadLetter publishes a dead letter and waits for the DLQ stream's
// ack. Its message id is the original's stream sequence, so dead-lettering
// the same delivery twice (a Term lost) stores it once.
func publishDeadLetter(ctx context.Context, js jetstream.JetStream, bus *events.Bus, m *nats.Msg, it *item) error {
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(bus.DLQStream())}
	if meta, _ := it.metadata(); meta != nil {
		opts = append(opts, jetstream.WithMsgID("dlq-"+strconv.FormatUint(meta.Sequence.Stream, 10)))
	}
	_, err := js.PublishMsg(ctx, m, opts...)
	return err
}

// DLQ reads and manages the dead-letter stream. Safe for concurrent use.
type DLQ struct {
	bus *events.Bus
}

// NewDLQ returns the DLQ of bus.
func NewDLQ(bus *events.Bus) *DLQ { return &DLQ{bus: bus} }

func (d *DLQ) stream(ctx context.Context) (jetstream.Stream, error) {
	s, err := d.bus.JetStream().Stream(ctx, d.bus.DLQStream())
	if err != nil {
		return nil, fmt.Errorf("persist: stream %s: %w", d.bus.DLQStream(), err)
	}
	return s, nil
}

// next returns the first dead letter at or after seq; ok is false when
// there is none.
func (d *DLQ) next(ctx context.Context, s jetstream.Stream, seq uint64) (*jetstream.RawStreamMsg, bool, error) {
	m, err := s.GetMsg(ctx, max(seq, 1), jetstream.WithGetMsgSubject(d.bus.DLQSubject(">")))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("persist: read dead letters from %d: %w", seq, err)
	}
	return m, true, nil
}

// List returns the oldest dead letters, at most limit (default 100, at
// most 1000).
func (d *DLQ) List(ctx context.Context, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	s, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := uint64(1); len(out) < limit; {
		m, ok, err := d.next(ctx, s, seq)
		if err != nil || !ok {
			return out, err
		}
		out = append(out, d.fromRaw(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// Get returns the dead letter with DLQ sequence seq; the error wraps
// ErrNotFound if there is none.
func (d *DLQ) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return DeadLetter{}, err
	}
	m, err := d.get(ctx, s, seq)
	if err != nil {
		return DeadLetter{}, err
	}
	return d.fromRaw(m), nil
}

func (d *DLQ) get(ctx context.Context, s jetstream.Stream, seq uint64) (*jetstream.RawStreamMsg, error) {
	if seq == 0 {
		return nil, fmt.Errorf("%w: sequence 0", ErrNotFound)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: sequence %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("persist: get dead letter %d: %w", seq, err)
	}
	return m, nil
}

func (d *DLQ) fromRaw(m *jetstream.RawStreamMsg) DeadLetter {
	dl := DeadLetter{Seq: m.Sequence, Time: m.Time, Payload: m.Data}
	if h := m.Header; h != nil {
		dl.Subject = h.Get(HeaderSubject)
		dl.EventID, dl.Type, dl.MatchID = h.Get(HeaderEventID), h.Get(HeaderType), h.Get(HeaderMatchID)
		dl.Error = h.Get(HeaderError)
		dl.Deliveries, _ = strconv.Atoi(h.Get(HeaderDeliveries))
		dl.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderStreamSeq), 10, 64)
	}
	if !strings.HasPrefix(dl.Subject, d.bus.Subject("")) || len(dl.Subject) == len(d.bus.Subject("")) {
		// no usable original subject: the type's, from the DLQ subject
		dl.Subject = d.bus.Subject(strings.TrimPrefix(m.Subject, d.bus.DLQSubject("")))
	}
	return dl
}

// Replay publishes dead letter seq's original data to its original
// subject, with the message id "replay-<seq>-<event id>", and deletes it
// from the DLQ once the events stream acknowledged it. The error wraps
// ErrNotFound if there is no such dead letter. If the delete fails, the
// event was replayed but stays in the DLQ; replaying it again is harmless.
func (d *DLQ) Replay(ctx context.Context, seq uint64) error {
	s, err := d.stream(ctx)
	if err != nil {
		return err
	}
	m, err := d.get(ctx, s, seq)
	if err != nil {
		return err
	}
	return d.replay(ctx, s, m)
}

func (d *DLQ) replay(ctx context.Context, s jetstream.Stream, m *jetstream.RawStreamMsg) error {
	dl := d.fromRaw(m)
	id := "replay-" + strconv.FormatUint(dl.Seq, 10)
	if dl.EventID != "" {
		id += "-" + dl.EventID
	}
	out := &nats.Msg{Subject: dl.Subject, Data: dl.Payload, Header: nats.Header{}}
	out.Header.Set(HeaderReplayOf, strconv.FormatUint(dl.Seq, 10))
	if sig := m.Header.Get(events.HeaderSignature); sig != "" {
		out.Header.Set(events.HeaderSignature, sig) // a genuine event stays verifiable
	}
	if _, err := d.bus.JetStream().PublishMsg(ctx, out, jetstream.WithMsgID(id),
		jetstream.WithExpectStream(d.bus.EventsStream())); err != nil {
		return fmt.Errorf("persist: replay dead letter %d to %s: %w", dl.Seq, dl.Subject, err)
	}
	if err := s.DeleteMsg(ctx, dl.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeMessageNotFound {
			return fmt.Errorf("persist: dead letter %d replayed but not deleted: %w", dl.Seq, err)
		}
	}
	return nil
}

// ReplayAll replays every dead letter present when it starts, oldest
// first, and returns how many it replayed. It stops at the first error.
// Events dead-lettered again meanwhile are not replayed twice.
func (d *DLQ) ReplayAll(ctx context.Context) (int, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	last := s.CachedInfo().State.LastSeq
	n := 0
	for seq := uint64(1); seq <= last; {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, ok, err := d.next(ctx, s, seq)
		if err != nil || !ok || m.Sequence > last {
			return n, err
		}
		if err := d.replay(ctx, s, m); err != nil {
			return n, err
		}
		n++
		seq = m.Sequence + 1
	}
	return n, nil
}

// Purge deletes every dead letter present when it starts and returns how
// many.
func (d *DLQ) Purge(ctx context.Context) (int, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return 0, nil
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(st.LastSeq+1)); err != nil {
		return 0, fmt.Errorf("persist: purge %s: %w", d.bus.DLQStream(), err)
	}
	return int(st.Msgs), nil
}
