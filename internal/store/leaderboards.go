package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Leaderboard metrics, operators and resets (the leaderboards table's
// CHECK constraints allow exactly these).
const (
	MetricScore = "score" // a result's Score
	MetricWins  = "wins"  // 1 for placement 1, else 0

	OperatorBest   = "best"   // the highest value; updated_at is when it was first reached
	OperatorSum    = "sum"    // the total; updated_at is when it last changed (a 0 changes nothing)
	OperatorLatest = "latest" // the value of the latest match by end time; updated_at is that end time

	ResetNever  = "never"
	ResetDaily  = "daily"  // periods start 00:00 UTC
	ResetWeekly = "weekly" // periods start Monday 00:00 UTC
)

// Leaderboard describes one board. Boards are rows of the leaderboards
// table (seeded by the migration); a match ended in the board's mode (or
// in any mode when Mode is "") adds each player's metric to the player's
// record of the period containing the match's end time.
type Leaderboard struct {
	ID       string
	Mode     string // "" = all modes
	Metric   string
	Operator string
	Reset    string
}

// PeriodStart returns the start of the period containing t: the UTC day or
// week (from Monday), or the Unix epoch for a board that never resets.
// Resets need no job: a new period starts with no records, and reading a
// board reads the period containing the given time.
func (b Leaderboard) PeriodStart(t time.Time) time.Time {
	t = t.UTC()
	switch b.Reset {
	case ResetDaily:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case ResetWeekly:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(t.Year(), t.Month(), t.Day()-back, 0, 0, 0, 0, time.UTC)
	}
	return time.Unix(0, 0).UTC()
}

// RankedRecord is one player's record on a board. Records are ranked by
// value (highest first), then by earliest UpdatedAt, then by account id, so
// every rank is distinct and Top, Around and Rank agree.
type RankedRecord struct {
	Rank      int
	AccountID string
	Value     int64
	UpdatedAt time.Time
}

func (s *Store) queryBoards(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]Leaderboard, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, mode, metric, operator, reset FROM leaderboards`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Leaderboard
	for rows.Next() {
		var b Leaderboard
		if err := rows.Scan(&b.ID, &b.Mode, &b.Metric, &b.Operator, &b.Reset); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, rows.Err()
}

// Leaderboards lists the boards by id.
func (s *Store) Leaderboards(ctx context.Context) ([]Leaderboard, error) {
	return s.queryBoards(ctx, s.r)
}

type lbKey struct {
	board   string
	period  time.Time
	account string
}

// lbEntry folds a batch's contributions to one record, in end order, so
// that one upsert has the effect of applying them one by one.
type lbEntry struct {
	op      string
	value   int64
	at      time.Time
	changed bool // sum: some contribution was not 0
}

func (e *lbEntry) add(v int64, t time.Time, first bool) {
	switch {
	case first:
		e.value, e.at, e.changed = v, t, v != 0
	case e.op == OperatorBest:
		if v > e.value {
			e.value, e.at = v, t
		}
	case e.op == OperatorSum:
		if v != 0 {
			e.value += v
			e.at, e.changed = t, true
		}
	default: // latest
		e.value, e.at = v, t
	}
}

// Upserts per operator. Each has the effect of applying the entry's
// contributions one by one after those already in the record. best does not
// depend on the order of contributions at all; sum's value does not either,
// but its updated_at and latest assume contributions come in end order.
const lbInsert = `INSERT INTO leaderboard_records (board_id, period_start, account_id, value, updated_at) VALUES `
const lbConflict = ` ON CONFLICT (board_id, period_start, account_id) `

var lbUpserts = map[string]string{
	OperatorBest: lbConflict + `DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at
		WHERE excluded.value > leaderboard_records.value
		OR (excluded.value = leaderboard_records.value AND excluded.updated_at < leaderboard_records.updated_at)`,
	OperatorSum: lbConflict + `DO UPDATE SET value = leaderboard_records.value + excluded.value,
		updated_at = CASE WHEN excluded.updated_at > leaderboard_records.updated_at THEN excluded.updated_at ELSE leaderboard_records.updated_at END`,
	OperatorLatest: lbConflict + `DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at
		WHERE excluded.updated_at >= leaderboard_records.updated_at`,
	"": lbConflict + `DO NOTHING`, // sums of zeros: create the record if missing, else nothing
}

func (s *Store) updateLeaderboards(ctx context.Context, tx *sql.Tx, boards []Leaderboard, ends []endedMatch) error {
	entries := make(map[lbKey]*lbEntry)
	var order []lbKey
	for _, e := range ends {
		for _, b := range boards {
			if b.Mode != "" && b.Mode != e.mode {
				continue
			}
			period := b.PeriodStart(e.ended)
			for _, r := range e.results {
				v := r.score
				if b.Metric == MetricWins {
					v = 0
					if r.placement == 1 {
						v = 1
					}
				}
				k := lbKey{b.ID, period, r.account}
				ent := entries[k]
				first := ent == nil
				if first {
					ent = &lbEntry{op: b.Operator}
					entries[k] = ent
					order = append(order, k)
				}
				ent.add(v, e.ended, first)
			}
		}
	}
	args := make(map[string][]any, len(lbUpserts))
	for _, k := range order {
		ent := entries[k]
		op := ent.op
		if op == OperatorSum && !ent.changed {
			op = ""
		}
		args[op] = append(args[op], k.board, s.d.time(k.period), k.account, ent.value, s.d.time(ent.at))
	}
	for _, op := range []string{OperatorBest, OperatorSum, OperatorLatest, ""} {
		if err := s.execValues(ctx, tx, lbInsert, lbUpserts[op], 5, args[op], nil); err != nil {
			return err
		}
	}
	return nil
}

// board reads a board's definition in a read transaction.
func (s *Store) board(ctx context.Context, tx *sql.Tx, id string) (Leaderboard, error) {
	b := Leaderboard{ID: id}
	err := tx.QueryRowContext(ctx, `SELECT mode, metric, operator, reset FROM leaderboards WHERE id=$1`, id).
		Scan(&b.Mode, &b.Metric, &b.Operator, &b.Reset)
	if errors.Is(err, sql.ErrNoRows) {
		return Leaderboard{}, ErrNotFound
	}
	return b, err
}

// readTx runs fn in a read-only transaction on the read pool, so the
// several queries of one answer see one snapshot.
func (s *Store) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, s.d.readTx())
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to commit
	return fn(tx)
}

const recordOrder = ` ORDER BY value DESC, updated_at, account_id`
const recordOrderReversed = ` ORDER BY value, updated_at DESC, account_id DESC`

func scanRecords(rows *sql.Rows, err error) ([]RankedRecord, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RankedRecord
	for rows.Next() {
		var r RankedRecord
		var at dbTime
		if err := rows.Scan(&r.AccountID, &r.Value, &at); err != nil {
			return nil, err
		}
		r.UpdatedAt = at.T
		out = append(out, r)
	}
	return out, rows.Err()
}

// LeaderboardTop returns the best limit records (default 10, at most 1,000)
// of the board's period containing now. ErrNotFound for an unknown board.
func (s *Store) LeaderboardTop(ctx context.Context, boardID string, now time.Time, limit int) ([]RankedRecord, error) {
	if limit <= 0 {
		limit = 10
	}
	limit = min(limit, 1000)
	var out []RankedRecord
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		b, err := s.board(ctx, tx, boardID)
		if err != nil {
			return err
		}
		out, err = scanRecords(tx.QueryContext(ctx, `SELECT account_id, value, updated_at FROM leaderboard_records
			WHERE board_id=$1 AND period_start=$2`+recordOrder+fmt.Sprintf(` LIMIT %d`, limit), boardID, s.d.time(b.PeriodStart(now))))
		return err
	})
	for i := range out {
		out[i].Rank = i + 1
	}
	return out, err
}

// rank finds the account's record and rank; ErrNotFound when it has none.
func (s *Store) rank(ctx context.Context, tx *sql.Tx, boardID, accountID string, now time.Time) (RankedRecord, any, error) {
	b, err := s.board(ctx, tx, boardID)
	if err != nil {
		return RankedRecord{}, nil, err
	}
	period := s.d.time(b.PeriodStart(now))
	r := RankedRecord{AccountID: accountID}
	var at dbTime
	err = tx.QueryRowContext(ctx, `SELECT value, updated_at FROM leaderboard_records WHERE board_id=$1 AND period_start=$2 AND account_id=$3`,
		boardID, period, accountID).Scan(&r.Value, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return RankedRecord{}, nil, ErrNotFound
	}
	if err != nil {
		return RankedRecord{}, nil, err
	}
	r.UpdatedAt = at.T
	var ahead int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM leaderboard_records WHERE board_id=$1 AND period_start=$2
		AND value >= $4 AND (value > $4 OR updated_at < $5 OR (updated_at = $5 AND account_id < $3))`,
		boardID, period, accountID, r.Value, s.d.time(r.UpdatedAt)).Scan(&ahead)
	r.Rank = ahead + 1
	return r, period, err
}

// LeaderboardRank returns the account's record and rank in the board's
// period containing now; ErrNotFound when the board or the record does not
// exist.
func (s *Store) LeaderboardRank(ctx context.Context, boardID, accountID string, now time.Time) (RankedRecord, error) {
	var r RankedRecord
	err := s.readTx(ctx, func(tx *sql.Tx) (err error) {
		r, _, err = s.rank(ctx, tx, boardID, accountID, now)
		return err
	})
	return r, err
}

// LeaderboardAround returns the account's record with up to n records
// ranked just above and n just below it (n defaults to 5, at most 100), in
// rank order; ErrNotFound when the board or the record does not exist.
func (s *Store) LeaderboardAround(ctx context.Context, boardID, accountID string, now time.Time, n int) ([]RankedRecord, error) {
	if n <= 0 {
		n = 5
	}
	n = min(n, 100)
	var out []RankedRecord
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		me, period, err := s.rank(ctx, tx, boardID, accountID, now)
		if err != nil {
			return err
		}
		args := []any{boardID, period, accountID, me.Value, s.d.time(me.UpdatedAt)}
		above, err := scanRecords(tx.QueryContext(ctx, `SELECT account_id, value, updated_at FROM leaderboard_records
			WHERE board_id=$1 AND period_start=$2 AND value >= $4
			AND (value > $4 OR updated_at < $5 OR (updated_at = $5 AND account_id < $3))`+recordOrderReversed+fmt.Sprintf(` LIMIT %d`, n), args...))
		if err != nil {
			return err
		}
		below, err := scanRecords(tx.QueryContext(ctx, `SELECT account_id, value, updated_at FROM leaderboard_records
			WHERE board_id=$1 AND period_start=$2 AND value <= $4
			AND (value < $4 OR updated_at > $5 OR (updated_at = $5 AND account_id > $3))`+recordOrder+fmt.Sprintf(` LIMIT %d`, n), args...))
		if err != nil {
			return err
		}
		out = make([]RankedRecord, 0, len(above)+1+len(below))
		for i := len(above) - 1; i >= 0; i-- {
			above[i].Rank = me.Rank - 1 - i
			out = append(out, above[i])
		}
		out = append(out, me)
		for i, r := range below {
			r.Rank = me.Rank + 1 + i
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// PutLeaderboard creates a board or redefines an existing one (ErrInvalid
// for an unknown metric, operator or reset). Records already on a
// redefined board stay as they are until RecomputeDerived rebuilds them.
func (s *Store) PutLeaderboard(ctx context.Context, b Leaderboard) error {
	switch {
	case b.ID == "":
		return fmt.Errorf("%w: leaderboard id is required", ErrInvalid)
	case b.Metric != MetricScore && b.Metric != MetricWins:
		return fmt.Errorf("%w: leaderboard metric %q", ErrInvalid, b.Metric)
	case b.Operator != OperatorBest && b.Operator != OperatorSum && b.Operator != OperatorLatest:
		return fmt.Errorf("%w: leaderboard operator %q", ErrInvalid, b.Operator)
	case b.Reset != ResetNever && b.Reset != ResetDaily && b.Reset != ResetWeekly:
		return fmt.Errorf("%w: leaderboard reset %q", ErrInvalid, b.Reset)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO leaderboards (id, mode, metric, operator, reset) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (id) DO UPDATE SET mode=excluded.mode, metric=excluded.metric, operator=excluded.operator, reset=excluded.reset`,
		b.ID, b.Mode, b.Metric, b.Operator, b.Reset)
	return err
}
