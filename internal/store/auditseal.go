package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/multijuego/multijuego/internal/seal"
)

// AuditResealed is the audit event ResealAudit appends: the chain's hashes
// from FromSeq on were recomputed because the rows' addresses were sealed,
// and OldHead (SEQ:HASH) is the head before that, which an anchor kept
// elsewhere no longer matches.
const AuditResealed = "audit_resealed"

// ResealAudit seals the addresses that chained audit rows hold in clear
// (rows chained before sealing was on) and recomputes the chain's hashes
// from the first such row on, page rows at a time, each page in one
// transaction holding the chain, so nodes go on writing meanwhile. It
// refuses a chain that does not verify (recomputing would hide what was
// changed), and appends an AuditResealed event naming the old head. It
// returns how many rows it sealed.
func (s *Store) ResealAudit(ctx context.Context, page int) (int, error) {
	if s.prot == nil {
		return 0, nil
	}
	var from sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(chain_seq) FROM audit_log
		WHERE chain_seq IS NOT NULL AND ip <> '' AND ip NOT LIKE 'sealed:%'`).Scan(&from); err != nil || !from.Valid {
		return 0, err
	}
	rep, err := s.VerifyAudit(ctx, AuditHead{})
	if err != nil {
		return 0, err
	}
	if !rep.OK() {
		return 0, fmt.Errorf("store: the audit chain does not verify (%d problems, run 'multijuego audit verify'); sealing its addresses would recompute its hashes and hide them", rep.ProblemCount)
	}
	sealed, next := 0, from.Int64
	for {
		n, done, err := s.resealPage(ctx, &next, page)
		sealed += n
		if err != nil {
			return sealed, err
		}
		if done {
			break
		}
	}
	detail, _ := json.Marshal(map[string]any{"from_seq": from.Int64, "old_head": rep.Head.String(), "sealed": sealed})
	return sealed, s.AppendAudit(ctx, AuditEvent{At: time.Now(), Kind: AuditResealed, Detail: string(detail)})
}

// resealPage seals and rechains the rows from place *next on, up to limit,
// in one transaction that holds the chain, and moves *next past them.
// done is true when it reached the chain's end.
func (s *Store) resealPage(ctx context.Context, next *int64, limit int) (n int, done bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for {
			ok, err := s.d.chainLock(ctx, tx)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			select { // the chainer holds it for one short batch
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		prev := make([]byte, 32)
		if *next > 1 {
			var h string
			if err := tx.QueryRowContext(ctx, `SELECT chain_hash FROM audit_log WHERE chain_seq=$1`, *next-1).Scan(&h); err != nil {
				return fmt.Errorf("store: audit chain place %d: %w", *next-1, err)
			}
			var err error
			if prev, err = hashBytes(h); err != nil {
				return err
			}
		}
		rows, err := queryAudit(ctx, tx, `SELECT id, at, kind, account_id, actor_id, ip, detail, chain_seq, chain_hash
			FROM audit_log WHERE chain_seq >= $1 ORDER BY chain_seq LIMIT $2`, *next, limit)
		if err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, `UPDATE audit_log SET ip=$1, chain_hash=$2 WHERE id=$3`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rows {
			if r.ChainSeq != *next {
				return errors.New("store: the audit chain has a gap; run 'multijuego audit verify'")
			}
			if r.IP != "" && !seal.IsSealed(r.IP) {
				if r.IP, err = s.sealIP(ctx, r.AuditEvent); err != nil {
					return err
				}
				n++
			}
			prev = chainHash(prev, r)
			if _, err := st.ExecContext(ctx, r.IP, hex.EncodeToString(prev), r.ID); err != nil {
				return err
			}
			*next++
		}
		done = len(rows) < limit
		return nil
	})
	return n, done, err
}
