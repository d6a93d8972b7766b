package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
)

// Multi-row statements: the batch writes of ApplyChanges are a handful of
// INSERT ... VALUES (...),(...) ... statements per batch, not one statement
// per row.

// maxParams bounds the parameters of one statement: SQLite allows 32,766,
// PostgreSQL 65,535.
const maxParams = 8000

// execValues runs head + "(...),(...)" + tail over args, which hold rows of
// cols values, in as few statements as maxParams allows. With scan, the
// statement returns rows and scan is called for each.
func (s *Store) execValues(ctx context.Context, tx *sql.Tx, head, tail string, cols int, args []any, scan func(*sql.Rows) error) error {
	per := maxParams / cols
	for len(args) > 0 {
		n := min(len(args)/cols, per)
		q := head + s.placeholders(cols, n) + tail
		chunk := args[:n*cols]
		args = args[n*cols:]
		if scan == nil {
			if _, err := tx.ExecContext(ctx, q, chunk...); err != nil {
				return err
			}
			continue
		}
		rows, err := tx.QueryContext(ctx, q, chunk...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// execValuesCount is execValues without result rows: it returns how many
// rows the statements changed (for ON CONFLICT DO NOTHING: inserted).
func (s *Store) execValuesCount(ctx context.Context, tx *sql.Tx, head, tail string, cols int, args []any) (int, error) {
	per := maxParams / cols
	total := 0
	for len(args) > 0 {
		n := min(len(args)/cols, per)
		res, err := tx.ExecContext(ctx, head+s.placeholders(cols, n)+tail, args[:n*cols]...)
		if err != nil {
			return total, err
		}
		args = args[n*cols:]
		k, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += int(k)
	}
	return total, nil
}

// inList returns the n placeholders of an IN (...) list, the only
// parameters of its statement.
func (s *Store) inList(n int) string { return s.placeholders(0, n) }

// placeholderList holds one long list per dialect and row width; shorter
// lists are its prefixes.
type placeholderList struct {
	s    string
	ends []int // ends[n-1] is the length of the first n rows
}

var placeholderLists sync.Map // placeholderKey -> *placeholderList

type placeholderKey struct {
	numbered bool
	width    int // 0: an IN list, no parentheses
}

// placeholders returns "($1,$2),($3,$4)" for width 2 and 2 rows (PostgreSQL)
// or "(?,?),(?,?)" (SQLite: there $N is a named parameter, and binding n
// of them costs O(n²)); width 0 gives an IN list "$1,$2".
func (s *Store) placeholders(width, rows int) string {
	key := placeholderKey{s.d.numberedParams(), width}
	v, ok := placeholderLists.Load(key)
	if !ok {
		cols, paren := width, true
		if width == 0 {
			cols, paren = 1, false
		}
		n := maxParams / cols
		l := &placeholderList{ends: make([]int, n)}
		var b []byte
		p := 1
		for r := 0; r < n; r++ {
			if r > 0 {
				b = append(b, ',')
			}
			if paren {
				b = append(b, '(')
			}
			for c := 0; c < cols; c++ {
				if c > 0 {
					b = append(b, ',')
				}
				if key.numbered {
					b = append(b, '$')
					b = strconv.AppendInt(b, int64(p), 10)
				} else {
					b = append(b, '?')
				}
				p++
			}
			if paren {
				b = append(b, ')')
			}
			l.ends[r] = len(b)
		}
		l.s = string(b)
		v, _ = placeholderLists.LoadOrStore(key, l)
	}
	l := v.(*placeholderList)
	if rows < 1 || rows > len(l.ends) {
		panic(fmt.Sprintf("store: %d rows of %d placeholders (maxParams %d)", rows, width, maxParams))
	}
	return l.s[:l.ends[rows-1]]
}
