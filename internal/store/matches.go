package store

// Match results: the durable side of the MatchStarted and MatchEnded events.
//
// The raw facts are matches and match_results. Player stats and leaderboard
// records are derived from them, in the same transaction that stores a
// result, and RecomputeDerived rebuilds them from the raw facts alone. The
// persistence service maps the event schema onto the records below; the
// store does not import it.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/multijuego/multijuego/internal/seal"
)

// ErrInvalid is returned (wrapped, with the offending change) when a change
// passed to ApplyChanges is malformed. Nothing of the batch is applied.
var ErrInvalid = errors.New("store: invalid change")

// MatchStartRecord is a MatchStarted event.
type MatchStartRecord struct {
	EventID   string // idempotency key
	MatchID   string
	Mode      string // never empty: "" means "all modes" in stats and boards
	Label     string
	Node      string
	StartedAt time.Time
}

// MatchEndRecord is a MatchEnded event with every player's result.
type MatchEndRecord struct {
	EventID    string // idempotency key
	MatchID    string
	Mode       string
	Label      string
	Node       string
	Reason     string
	StartedAt  time.Time
	EndedAt    time.Time
	DurationMs int64
	Results    []ResultRecord
}

// ResultRecord is one player's result in a match.
type ResultRecord struct {
	AccountID string
	Placement int // 1 = best; equal placements are ties
	Score     int64
	Stats     map[string]float64 // free-form; nil when empty
}

// MatchEventRecord is a MatchEvent: a key moment a game chose to emit.
// Stored as it came, append-only.
type MatchEventRecord struct {
	EventID string // idempotency key, time-ordered (UUIDv7)
	MatchID string
	Name    string
	At      time.Time
	Data    []byte // the game's JSON, or empty; sealed text when Owner is set and it starts with seal.SealedPrefix
	// Owner is the account whose personal data Data is (a personal
	// event), "" for an ordinary one. Stored as it came: sealed data is
	// opened by the readers, never here.
	Owner string
}

// Change is one event of a batch: exactly one of Start, End and Event is
// set.
type Change struct {
	Start *MatchStartRecord
	End   *MatchEndRecord
	Event *MatchEventRecord
}

// StartChange wraps a start record as a Change.
func StartChange(r MatchStartRecord) Change { return Change{Start: &r} }

// EndChange wraps an end record as a Change.
func EndChange(r MatchEndRecord) Change { return Change{End: &r} }

// EventChange wraps a match event record as a Change.
func EventChange(r MatchEventRecord) Change { return Change{Event: &r} }

// MaxEventData is the largest MatchEventRecord.Data accepted.
const MaxEventData = 16 << 10

// Event types as stored in processed_events.type.
const (
	EventMatchStarted = "match_started"
	EventMatchEnded   = "match_ended"
)

// MatchRecord is a stored match; EndedAt is zero and Results empty while it
// runs.
type MatchRecord struct {
	ID         string
	Mode       string
	Label      string
	Node       string
	StartedAt  time.Time
	EndedAt    time.Time
	DurationMs int64
	EndReason  string
	Results    []ResultRecord // by placement, then account id
}

// Ended reports whether the match has ended.
func (m MatchRecord) Ended() bool { return !m.EndedAt.IsZero() }

// --- applying changes ---

// row forms of a normalised change
type matchRow struct {
	id, mode, label, node string
	started, ended        time.Time // ended zero for a start
	durationMs            int64
	reason                string
}

type resultRow struct {
	account   string
	placement int
	score     int64
	stats     string // JSON object
}

type change struct {
	eventID string
	end     bool
	row     matchRow
	results []resultRow // in account-id order
}

// endedMatch is what the derived data is computed from.
type endedMatch struct {
	id, mode string
	ended    time.Time
	results  []resultRow // in account-id order
}

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func normalise(in []Change) ([]change, []MatchEventRecord, error) {
	out := make([]change, 0, len(in))
	var evs []MatchEventRecord
	for i, c := range in {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: change %d: %s", ErrInvalid, i, fmt.Sprintf(format, a...))
		}
		set := 0
		for _, p := range []bool{c.Start != nil, c.End != nil, c.Event != nil} {
			if p {
				set++
			}
		}
		switch {
		case set != 1:
			return nil, nil, bad("exactly one of Start, End and Event must be set")
		case c.Event != nil:
			r := *c.Event
			if r.EventID == "" || r.MatchID == "" || r.Name == "" || r.At.IsZero() {
				return nil, nil, bad("match event %q: EventID, MatchID, Name and At are required", r.EventID)
			}
			if r.Owner == "" && seal.IsSealed(string(r.Data)) {
				return nil, nil, bad("match event %q: sealed data needs its owner", r.EventID)
			}
			if len(r.Data) > MaxEventData {
				return nil, nil, bad("match event %q: data of %d bytes, at most %d", r.EventID, len(r.Data), MaxEventData)
			}
			r.At = normTime(r.At)
			evs = append(evs, r)
		case c.Start != nil:
			r := c.Start
			if r.EventID == "" || r.MatchID == "" || r.Mode == "" || r.StartedAt.IsZero() {
				return nil, nil, bad("start event %q: EventID, MatchID, Mode and StartedAt are required", r.EventID)
			}
			out = append(out, change{eventID: r.EventID, row: matchRow{
				id: r.MatchID, mode: r.Mode, label: r.Label, node: r.Node, started: normTime(r.StartedAt),
			}})
		default:
			r := c.End
			if r.EventID == "" || r.MatchID == "" || r.Mode == "" || r.StartedAt.IsZero() || r.EndedAt.IsZero() {
				return nil, nil, bad("end event %q: EventID, MatchID, Mode, StartedAt and EndedAt are required", r.EventID)
			}
			ch := change{eventID: r.EventID, end: true, row: matchRow{
				id: r.MatchID, mode: r.Mode, label: r.Label, node: r.Node, started: normTime(r.StartedAt),
				ended: normTime(r.EndedAt), durationMs: r.DurationMs, reason: r.Reason,
			}}
			seen := make(map[string]bool, len(r.Results))
			for _, res := range r.Results {
				if res.AccountID == "" || res.Placement < 1 || seen[res.AccountID] {
					return nil, nil, bad("end event %q: result %+v: AccountID required and unique, Placement >= 1", r.EventID, res)
				}
				seen[res.AccountID] = true
				stats := "{}"
				if len(res.Stats) > 0 {
					b, err := json.Marshal(res.Stats) // sorted keys
					if err != nil {
						return nil, nil, bad("end event %q: stats of %s: %v", r.EventID, res.AccountID, err)
					}
					stats = string(b)
				}
				ch.results = append(ch.results, resultRow{account: res.AccountID, placement: res.Placement, score: res.Score, stats: stats})
			}
			sort.Slice(ch.results, func(a, b int) bool { return ch.results[a].account < ch.results[b].account })
			out = append(out, ch)
		}
	}
	return out, evs, nil
}

// ApplyChanges applies a batch of match events in one transaction and
// returns how many were applied; the rest repeated an event id already
// processed (in an earlier batch or earlier in this one) and were skipped,
// so applying a batch twice changes nothing.
//
// A start inserts the match, or refreshes its start fields while it has not
// ended; a start arriving after the end changes nothing. An end writes the
// end fields and the results and updates player_stats and every leaderboard
// of the match's mode and of all modes. A second end (another event id) for
// a match that already ended is recorded as processed and changes nothing.
// Within a batch, ends are applied in (EndedAt, MatchID) order.
//
// Nothing is applied when an error is returned; a malformed change yields
// ErrInvalid. The work is set-based (a handful of multi-row statements per
// batch whatever its size), so batches of hundreds are much cheaper per
// event than single events.
func (s *Store) ApplyChanges(ctx context.Context, changes []Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	norm, evs, err := normalise(changes)
	if err != nil {
		return 0, err
	}
	applied := 0
	err = s.tx(ctx, func(tx *sql.Tx) error {
		applied = 0
		if len(evs) > 0 {
			n, err := s.insertEvents(ctx, tx, evs)
			if err != nil {
				return err
			}
			applied = n
		}
		if len(norm) == 0 {
			return nil // match events derive nothing: no lock needed
		}
		if err := s.d.applyLock(ctx, tx); err != nil {
			return err
		}
		fresh, err := s.markProcessed(ctx, tx, norm)
		if err != nil {
			return err
		}
		applied += len(fresh)
		ends, err := s.upsertMatches(ctx, tx, fresh)
		if err != nil {
			return err
		}
		if err := s.insertResults(ctx, tx, ends); err != nil {
			return err
		}
		return s.derive(ctx, tx, ends)
	})
	if err != nil {
		return 0, err
	}
	return applied, nil
}

// insertEvents appends match events; their event id is the primary key, so
// repeats (earlier in the batch or stored before) are skipped. It returns
// how many were new.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, evs []MatchEventRecord) (int, error) {
	seen := make(map[string]bool, len(evs))
	uniq := evs[:0:0]
	for _, e := range evs {
		if !seen[e.EventID] {
			seen[e.EventID] = true
			uniq = append(uniq, e)
		}
	}
	if s.d.jsonRows() {
		if rows, ok := eventsJSON(uniq); ok {
			res, err := tx.ExecContext(ctx, `INSERT INTO match_events (event_id, match_id, name, at, data, owner)
				SELECT event_id, match_id, name, at, data, owner FROM json_to_recordset($1::json)
					AS r(event_id TEXT, match_id TEXT, name TEXT, at TIMESTAMPTZ, data TEXT, owner TEXT)
				ON CONFLICT (event_id) DO NOTHING`, rows)
			if err != nil {
				return 0, err
			}
			n, err := res.RowsAffected()
			return int(n), err
		}
	}
	args := make([]any, 0, 6*len(uniq))
	for _, e := range uniq {
		args = append(args, e.EventID, e.MatchID, e.Name, s.d.time(e.At), string(e.Data), e.Owner)
	}
	return s.execValuesCount(ctx, tx, `INSERT INTO match_events (event_id, match_id, name, at, data, owner) VALUES `,
		` ON CONFLICT (event_id) DO NOTHING`, 6, args)
}

// eventsJSON writes evs as one JSON array of row objects, for
// json_to_recordset: the batch is one parameter, so its statement is the
// same text (prepared once) whatever the batch size, and no value is bound
// on its own. ok is false when a field is not valid UTF-8 or holds a NUL
// (JSON cannot carry the first, PostgreSQL's text the second): the caller
// then binds the values one by one, and PostgreSQL refuses what it cannot
// store.
func eventsJSON(evs []MatchEventRecord) (rows string, ok bool) {
	n := 2
	for _, e := range evs {
		n += len(`{"event_id":"","match_id":"","name":"","at":"2006-01-02T15:04:05.999999Z","data":"","owner":""},`) +
			len(e.EventID) + len(e.MatchID) + len(e.Name) + len(e.Data) + len(e.Data)/8 + len(e.Owner)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	var err error
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		for _, f := range [...]struct {
			name string
			v    string
		}{{`{"event_id":`, e.EventID}, {`,"match_id":`, e.MatchID}, {`,"name":`, e.Name}} {
			b = append(b, f.name...)
			if b, err = jsontext.AppendQuote(b, f.v); err != nil || strings.IndexByte(f.v, 0) >= 0 {
				return "", false
			}
		}
		b = append(b, `,"at":"`...)
		b = normTime(e.At).AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","data":`...)
		if b, err = jsontext.AppendQuote(b, e.Data); err != nil || bytes.IndexByte(e.Data, 0) >= 0 {
			return "", false
		}
		b = append(b, `,"owner":`...)
		if b, err = jsontext.AppendQuote(b, e.Owner); err != nil || strings.IndexByte(e.Owner, 0) >= 0 {
			return "", false
		}
		b = append(b, '}')
	}
	return string(append(b, ']')), true
}

// MatchEvents pages through a match's events in the order they happened
// (by event id: UUIDv7 ids are time-ordered). after is the cursor: "" for
// the first page, then the next value of the previous page, which is ""
// after the last page. limit defaults to 100 and is capped at 1,000.
func (s *Store) MatchEvents(ctx context.Context, matchID, after string, limit int) ([]MatchEventRecord, string, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	rows, err := s.r.QueryContext(ctx, `SELECT event_id, match_id, name, at, data, owner FROM match_events
		WHERE match_id=$1 AND event_id > $2 ORDER BY event_id LIMIT $3`, matchID, after, limit+1)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []MatchEventRecord
	for rows.Next() {
		var e MatchEventRecord
		var at dbTime
		var data string
		if err := rows.Scan(&e.EventID, &e.MatchID, &e.Name, &at, &data, &e.Owner); err != nil {
			return nil, "", err
		}
		e.At = at.T
		if data != "" {
			e.Data = []byte(data)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].EventID
	}
	return out, next, nil
}

// PruneProcessed forgets the ids of match.started and match.ended events
// processed before before, at most 10,000 per statement, and returns how
// many. An event redelivered after its id is forgotten would be applied
// again: before must be older than anything the queue can still deliver
// (the events stream's and dead-letter stream's retention).
func (s *Store) PruneProcessed(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.w.ExecContext(ctx, `DELETE FROM processed_events WHERE event_id IN
			(SELECT event_id FROM processed_events WHERE processed_at < $1 LIMIT 10000)`, s.d.time(before))
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < 10000 {
			return total, nil
		}
	}
}

// markProcessed records the batch's event ids and returns the changes whose
// id was new, in batch order (the first of repeats within the batch).
func (s *Store) markProcessed(ctx context.Context, tx *sql.Tx, cs []change) ([]change, error) {
	now := s.d.time(time.Now())
	first := make(map[string]bool, len(cs))
	args := make([]any, 0, 4*len(cs))
	for _, c := range cs {
		if first[c.eventID] {
			continue
		}
		first[c.eventID] = true
		typ := EventMatchStarted
		if c.end {
			typ = EventMatchEnded
		}
		args = append(args, c.eventID, typ, c.row.id, now)
	}
	inserted := make(map[string]bool, len(first))
	err := s.execValues(ctx, tx, `INSERT INTO processed_events (event_id, type, match_id, processed_at) VALUES `,
		` ON CONFLICT (event_id) DO NOTHING RETURNING event_id`, 4, args, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			inserted[id] = true
			return nil
		})
	if err != nil {
		return nil, err
	}
	fresh := make([]change, 0, len(inserted))
	for _, c := range cs {
		if inserted[c.eventID] {
			fresh = append(fresh, c)
			delete(inserted, c.eventID)
		}
	}
	return fresh, nil
}

// upsertMatches writes one row per match of the batch, with the same effect
// as applying the changes one by one: the first end of a match wins and
// later changes to it are no-ops; without an end, the last start wins. It
// returns the ends that took effect (their match had not ended before).
func (s *Store) upsertMatches(ctx context.Context, tx *sql.Tx, cs []change) ([]endedMatch, error) {
	type agg struct {
		row matchRow
		end *change
	}
	byID := make(map[string]*agg, len(cs))
	var order []*agg
	for i := range cs {
		c := &cs[i]
		a := byID[c.row.id]
		if a == nil {
			a = &agg{}
			byID[c.row.id] = a
			order = append(order, a)
		}
		if a.end != nil {
			continue
		}
		a.row = c.row
		if c.end {
			a.end = c
		}
	}
	args := make([]any, 0, 8*len(order))
	for _, a := range order {
		r := a.row
		if a.end != nil {
			args = append(args, r.id, r.mode, r.label, r.node, s.d.time(r.started), s.d.time(r.ended), r.durationMs, r.reason)
		} else {
			args = append(args, r.id, r.mode, r.label, r.node, s.d.time(r.started), nil, nil, nil)
		}
	}
	touched := make(map[string]bool, len(order))
	err := s.execValues(ctx, tx, `INSERT INTO matches (id, mode, label, node, started_at, ended_at, duration_ms, end_reason) VALUES `,
		` ON CONFLICT (id) DO UPDATE SET mode=excluded.mode, label=excluded.label, node=excluded.node, started_at=excluded.started_at,
		ended_at=excluded.ended_at, duration_ms=excluded.duration_ms, end_reason=excluded.end_reason
		WHERE matches.ended_at IS NULL RETURNING id`, 8, args, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			touched[id] = true
			return nil
		})
	if err != nil {
		return nil, err
	}
	var ends []endedMatch
	for _, a := range order {
		if a.end != nil && touched[a.row.id] {
			ends = append(ends, endedMatch{id: a.row.id, mode: a.row.mode, ended: a.row.ended, results: a.end.results})
		}
	}
	return ends, nil
}

func (s *Store) insertResults(ctx context.Context, tx *sql.Tx, ends []endedMatch) error {
	var args []any
	for _, e := range ends {
		for _, r := range e.results {
			args = append(args, e.id, r.account, r.placement, r.score, r.stats)
		}
	}
	return s.execValues(ctx, tx, `INSERT INTO match_results (match_id, account_id, placement, score, stats) VALUES `, ``, 5, args, nil)
}

// --- reads ---

const matchCols = `id, mode, label, node, started_at, ended_at, duration_ms, end_reason`

func scanMatch(row interface{ Scan(...any) error }) (MatchRecord, error) {
	var m MatchRecord
	var started, ended dbTime
	var dur sql.NullInt64
	var reason sql.NullString
	if err := row.Scan(&m.ID, &m.Mode, &m.Label, &m.Node, &started, &ended, &dur, &reason); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return MatchRecord{}, ErrNotFound
		}
		return MatchRecord{}, err
	}
	m.StartedAt, m.EndedAt, m.DurationMs, m.EndReason = started.T, ended.T, dur.Int64, reason.String
	return m, nil
}

// Match returns a match with its results.
func (s *Store) Match(ctx context.Context, id string) (MatchRecord, error) {
	m, err := scanMatch(s.r.QueryRowContext(ctx, `SELECT `+matchCols+` FROM matches WHERE id=$1`, id))
	if err != nil {
		return MatchRecord{}, err
	}
	ms := []MatchRecord{m}
	if err := s.fillResults(ctx, ms); err != nil {
		return MatchRecord{}, err
	}
	return ms[0], nil
}

// PlayerMatches pages through the ended matches an account played, newest
// first (by match id: UUIDv7 ids are time-ordered), each with every
// player's result. before is the cursor: "" for the first page, then the
// next value of the previous page, which is "" after the last page. limit
// defaults to 20 and is capped at 200.
func (s *Store) PlayerMatches(ctx context.Context, accountID, before string, limit int) ([]MatchRecord, string, error) {
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 200)
	q := `SELECT ` + prefixed("m.", matchCols) + ` FROM match_results r JOIN matches m ON m.id = r.match_id WHERE r.account_id = $1`
	args := []any{accountID}
	if before != "" {
		q += ` AND r.match_id < $2`
		args = append(args, before)
	}
	q += fmt.Sprintf(` ORDER BY r.match_id DESC LIMIT %d`, limit+1)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	var out []MatchRecord
	for rows.Next() {
		m, err := scanMatch(rows)
		if err != nil {
			rows.Close()
			return nil, "", err
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	if err := s.fillResults(ctx, out); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func (s *Store) fillResults(ctx context.Context, ms []MatchRecord) error {
	if len(ms) == 0 {
		return nil
	}
	idx := make(map[string]int, len(ms))
	args := make([]any, len(ms))
	for i, m := range ms {
		idx[m.ID] = i
		args[i] = m.ID
	}
	rows, err := s.r.QueryContext(ctx, `SELECT match_id, account_id, placement, score, stats FROM match_results
		WHERE match_id IN (`+s.inList(len(args))+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var stats []byte
		var r ResultRecord
		if err := rows.Scan(&id, &r.AccountID, &r.Placement, &r.Score, &stats); err != nil {
			return err
		}
		if len(stats) > 0 && string(stats) != "{}" {
			if err := json.Unmarshal(stats, &r.Stats); err != nil {
				return fmt.Errorf("store: stats of match %s, account %s: %w", id, r.AccountID, err)
			}
			if len(r.Stats) == 0 {
				r.Stats = nil
			}
		}
		m := &ms[idx[id]]
		m.Results = append(m.Results, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range ms {
		rs := ms[i].Results
		sort.Slice(rs, func(a, b int) bool {
			if rs[a].Placement != rs[b].Placement {
				return rs[a].Placement < rs[b].Placement
			}
			return rs[a].AccountID < rs[b].AccountID
		})
	}
	return nil
}
