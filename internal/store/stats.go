package store

// Player stats and ratings: data derived from match results, in the same
// transaction that stores a result (ApplyChanges), and rebuilt from the raw
// facts alone by RecomputeDerived.

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
	"time"
)

// PlayerStatsRecord is a player's aggregate over one mode, or over all modes
// when Mode is "".
type PlayerStatsRecord struct {
	AccountID string
	Mode      string
	Games     int64
	Wins      int64 // matches with placement 1
	ScoreSum  int64
	Rating    float64   // see InitialRating
	UpdatedAt time.Time // end time of the latest match counted
}

// Rating parameters. A player's rating (per mode, and over all modes) starts
// at InitialRating and moves after every ended match with two or more
// players by a multiplayer Elo update computed from the pre-match ratings:
//
//	R'_i = R_i + K/(n-1) * sum over j != i of (S_ij - E_ij)
//	E_ij = 1 / (1 + 10^((R_j - R_i)/400))
//	S_ij = 1 if placement_i < placement_j, 0.5 if equal, 0 otherwise
//
// with K = RatingK and n the number of players. Opponents are summed in
// account-id order and matches are applied in (ended_at, match id) order
// within a batch, so applying the same events in the same order (or
// RecomputeDerived) gives bit-identical ratings. The sum of all players'
// changes in a match is zero.
const (
	InitialRating = 1500.0
	RatingK       = 32.0
)

// eloDeltas returns each player's rating change; ratings and placements are
// parallel and in account-id order.
func eloDeltas(ratings []float64, placements []int) []float64 {
	n := len(ratings)
	d := make([]float64, n)
	if n < 2 {
		return d
	}
	k := RatingK / float64(n-1)
	for i := range ratings {
		var sum float64
		for j := range ratings {
			if i == j {
				continue
			}
			var score float64
			switch {
			case placements[i] < placements[j]:
				score = 1
			case placements[i] == placements[j]:
				score = 0.5
			}
			sum += score - expected(ratings[i], ratings[j])
		}
		d[i] = k * sum
	}
	return d
}

func expected(ri, rj float64) float64 {
	return 1 / (1 + math.Pow(10, (rj-ri)/400))
}

// --- derived data ---

// derive updates player_stats and leaderboard_records for ends, which took
// effect in this transaction; it sorts them by (ended, id).
func (s *Store) derive(ctx context.Context, tx *sql.Tx, ends []endedMatch) error {
	if len(ends) == 0 {
		return nil
	}
	sort.SliceStable(ends, func(i, j int) bool {
		if !ends[i].ended.Equal(ends[j].ended) {
			return ends[i].ended.Before(ends[j].ended)
		}
		return ends[i].id < ends[j].id
	})
	if err := s.updatePlayerStats(ctx, tx, ends); err != nil {
		return err
	}
	boards, err := s.queryBoards(ctx, tx)
	if err != nil {
		return err
	}
	return s.updateLeaderboards(ctx, tx, boards, ends)
}

type statKey struct{ account, mode string }

func (s *Store) updatePlayerStats(ctx context.Context, tx *sql.Tx, ends []endedMatch) error {
	modes := map[string]bool{"": true}
	seen := map[string]bool{}
	var accounts []any
	for _, e := range ends {
		modes[e.mode] = true
		for _, r := range e.results {
			if !seen[r.account] {
				seen[r.account] = true
				accounts = append(accounts, r.account)
			}
		}
	}
	state := make(map[statKey]*PlayerStatsRecord, 2*len(accounts))
	const perQuery = 1000
	for len(accounts) > 0 {
		n := min(len(accounts), perQuery)
		err := func() error {
			rows, err := tx.QueryContext(ctx, `SELECT account_id, mode, games, wins, score_sum, rating, updated_at FROM player_stats
				WHERE account_id IN (`+s.inList(n)+`)`, accounts[:n]...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				st, err := scanPlayerStats(rows)
				if err != nil {
					return err
				}
				if modes[st.Mode] {
					state[statKey{st.AccountID, st.Mode}] = &st
				}
			}
			return rows.Err()
		}()
		if err != nil {
			return err
		}
		accounts = accounts[n:]
	}

	var dirty []statKey
	marked := make(map[statKey]bool, 2*len(seen))
	get := func(k statKey) *PlayerStatsRecord {
		st := state[k]
		if st == nil {
			st = &PlayerStatsRecord{AccountID: k.account, Mode: k.mode, Rating: InitialRating}
			state[k] = st
		}
		if !marked[k] {
			marked[k] = true
			dirty = append(dirty, k)
		}
		return st
	}
	ratings := make([]float64, 0, 8)
	places := make([]int, 0, 8)
	stats := make([]*PlayerStatsRecord, 0, 8)
	for _, e := range ends {
		for _, mode := range [2]string{e.mode, ""} {
			ratings, places, stats = ratings[:0], places[:0], stats[:0]
			for _, r := range e.results {
				st := get(statKey{r.account, mode})
				stats = append(stats, st)
				ratings = append(ratings, st.Rating)
				places = append(places, r.placement)
			}
			deltas := eloDeltas(ratings, places)
			for i, r := range e.results {
				st := stats[i]
				st.Games++
				if r.placement == 1 {
					st.Wins++
				}
				st.ScoreSum += r.score
				st.Rating += deltas[i]
				if e.ended.After(st.UpdatedAt) {
					st.UpdatedAt = e.ended
				}
			}
		}
	}
	args := make([]any, 0, 7*len(dirty))
	for _, k := range dirty {
		st := state[k]
		args = append(args, st.AccountID, st.Mode, st.Games, st.Wins, st.ScoreSum, st.Rating, s.d.time(st.UpdatedAt))
	}
	return s.execValues(ctx, tx, `INSERT INTO player_stats (account_id, mode, games, wins, score_sum, rating, updated_at) VALUES `,
		` ON CONFLICT (account_id, mode) DO UPDATE SET games=excluded.games, wins=excluded.wins, score_sum=excluded.score_sum,
		rating=excluded.rating, updated_at=excluded.updated_at`, 7, args, nil)
}

func scanPlayerStats(row interface{ Scan(...any) error }) (PlayerStatsRecord, error) {
	var st PlayerStatsRecord
	var at dbTime
	err := row.Scan(&st.AccountID, &st.Mode, &st.Games, &st.Wins, &st.ScoreSum, &st.Rating, &at)
	st.UpdatedAt = at.T
	return st, err
}

// RecomputeDerived rebuilds player_stats and leaderboard_records from the
// ended matches and their results, applied in (ended_at, match id) order,
// in one transaction (writers wait). Derived data kept by ApplyChanges
// equals the recomputation when the ends were applied in that order, which
// a consumer of an ordered event stream does; after late or out-of-order
// ends, only ratings (and ties of 'latest' boards) can differ, and running
// this makes them canonical.
func (s *Store) RecomputeDerived(ctx context.Context) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.d.applyLock(ctx, tx); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM player_stats`, `DELETE FROM leaderboard_records`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		const page = 500
		var lastAt time.Time
		lastID := ""
		for {
			q := `SELECT id, mode, ended_at FROM matches WHERE ended_at IS NOT NULL`
			args := []any{}
			if lastID != "" {
				q += ` AND (ended_at > $1 OR (ended_at = $1 AND id > $2))`
				args = append(args, s.d.time(lastAt), lastID)
			}
			q += fmt.Sprintf(` ORDER BY ended_at, id LIMIT %d`, page)
			ends, err := queryEnds(ctx, tx, q, args)
			if err != nil {
				return err
			}
			if len(ends) == 0 {
				return nil
			}
			if err := s.loadResults(ctx, tx, ends); err != nil {
				return err
			}
			lastAt, lastID = ends[len(ends)-1].ended, ends[len(ends)-1].id
			if err := s.derive(ctx, tx, ends); err != nil {
				return err
			}
		}
	})
}

func queryEnds(ctx context.Context, tx *sql.Tx, q string, args []any) ([]endedMatch, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ends []endedMatch
	for rows.Next() {
		var e endedMatch
		var at dbTime
		if err := rows.Scan(&e.id, &e.mode, &at); err != nil {
			return nil, err
		}
		e.ended = at.T
		ends = append(ends, e)
	}
	return ends, rows.Err()
}

func (s *Store) loadResults(ctx context.Context, tx *sql.Tx, ends []endedMatch) error {
	idx := make(map[string]int, len(ends))
	args := make([]any, len(ends))
	for i, e := range ends {
		idx[e.id] = i
		args[i] = e.id
	}
	rows, err := tx.QueryContext(ctx, `SELECT match_id, account_id, placement, score FROM match_results
		WHERE match_id IN (`+s.inList(len(args))+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var r resultRow
		if err := rows.Scan(&id, &r.account, &r.placement, &r.score); err != nil {
			return err
		}
		e := &ends[idx[id]]
		e.results = append(e.results, r)
	}
	for i := range ends {
		rs := ends[i].results
		sort.Slice(rs, func(a, b int) bool { return rs[a].account < rs[b].account })
	}
	return rows.Err()
}

// PlayerStats returns an account's stats, the all-modes row (Mode "")
// first, then by mode; none (and no error) when it has no ended match.
func (s *Store) PlayerStats(ctx context.Context, accountID string) ([]PlayerStatsRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT account_id, mode, games, wins, score_sum, rating, updated_at FROM player_stats WHERE account_id=$1`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PlayerStatsRecord
	for rows.Next() {
		st, err := scanPlayerStats(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mode < out[j].Mode })
	return out, rows.Err()
}
