package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
)

// On SQLite a login batch's audit rows are chained as they are inserted,
// in the batch's transaction: the store has one writer, so the chain's head
// cannot move under it. They are inserted with their ids, places and
// hashes, and never pass through the chainer (ChainAudit), which had to
// read them back and UPDATE each one (some 5 % of a login storm's CPU,
// in transactions that held the writer while logins waited). Rows written
// otherwise (AppendAudit, and every row on PostgreSQL, whose nodes write
// concurrently) are still chained later; the chain's order is then not
// the ids' order, which VerifyAudit does not assume.

// loginChain is a batch's audit rows, their INSERTs prepared with the id,
// place and hash still to fill in.
type loginChain struct {
	rows   []chainRow
	args   []any // auditChainCols values, row after row; chunks' args share it
	chunks []insertChunk
}

const auditChainCols = 9 // id, at, kind, account_id, actor_id, ip, detail, chain_seq, chain_hash

// prepareChain prepares the INSERTs of rows (IPs sealed already), outside
// the transaction as SQLite's writer needs.
func (s *Store) prepareChain(ctx context.Context, rows []chainRow) (*loginChain, error) {
	c := &loginChain{rows: rows, args: make([]any, 0, auditChainCols*len(rows))}
	for _, r := range rows {
		c.args = append(c.args, nil, s.d.time(r.At), r.Kind, nullString(r.AccountID), nullString(r.ActorID), r.IP, r.Detail, nil, nil)
	}
	var err error
	c.chunks, err = s.insertChunks(ctx, nil, `INSERT INTO audit_log (id, at, kind, account_id, actor_id, ip, detail, chain_seq, chain_hash) VALUES `,
		"", auditChainCols, c.args)
	return c, err
}

// link reads the chain's head and the next audit id in tx and fills in
// each row's id, place and hash, in order, after the head.
func (c *loginChain) link(ctx context.Context, tx *sql.Tx) error {
	if len(c.rows) == 0 {
		return nil
	}
	head, err := auditHead(ctx, tx)
	if err != nil {
		return err
	}
	prev, err := hashBytes(head.Hash)
	if err != nil {
		return fmt.Errorf("store: audit chain head %d: %w", head.Seq, err)
	}
	// audit_log's ids are AUTOINCREMENT: never reused, so the next is
	// past the largest ever given, which sqlite_sequence keeps (and an
	// explicit id raises).
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name='audit_log'), 0)`).Scan(&last); err != nil {
		return err
	}
	for i := range c.rows {
		r := &c.rows[i]
		r.ID, r.ChainSeq = last+int64(i)+1, head.Seq+int64(i)+1
		prev = chainHash(prev, *r)
		a := c.args[i*auditChainCols:]
		a[0], a[7], a[8] = r.ID, r.ChainSeq, hex.EncodeToString(prev)
	}
	return nil
}
