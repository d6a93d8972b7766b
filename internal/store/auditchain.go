package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The audit log is hash-chained after the fact. Rows are inserted
// unchained (AppendAudit, WriteLogins), so writers never read the chain's
// head; ChainAudit, run by one chainer at a time, gives the oldest
// unchained rows the next places in the chain, in id order, and stores
//
//	chain_hash = hex(SHA-256(previous chain_hash as 32 bytes || encoding))
//
// where encoding is auditDomain, then chain_seq, id and at (UnixMicro) as
// 8-byte big-endian integers, then kind, account_id, actor_id, ip and
// detail each as a 4-byte big-endian length and its bytes (a NULL id is
// the empty string). The first row's previous hash is 32 zero bytes.
// VerifyAudit walks the chain in chain_seq order and recomputes it.

const auditDomain = "multijuego audit v1\x00"

// AuditHead is the chain's last row: its place and its hash. An operator
// who keeps it elsewhere can later prove the chain up to it unchanged.
type AuditHead struct {
	Seq  int64
	Hash string // hex; empty when nothing is chained
}

// String is the form `multijuego audit verify` prints and takes as an
// anchor: SEQ:HASH.
func (h AuditHead) String() string { return fmt.Sprintf("%d:%s", h.Seq, h.Hash) }

// ParseAuditHead reads SEQ:HASH.
func ParseAuditHead(s string) (AuditHead, error) {
	seq, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n <= 0 {
		return AuditHead{}, fmt.Errorf("%q is not SEQ:HASH", s)
	}
	hash = strings.ToLower(hash)
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return AuditHead{}, fmt.Errorf("%q is not SEQ:HASH (HASH: 64 hex digits)", s)
	}
	return AuditHead{Seq: n, Hash: hash}, nil
}

// AuditProblem kinds.
const (
	AuditChanged   = "changed"   // the row's hash does not match its content at its place: edited, or moved
	AuditMissing   = "missing"   // chain places without a row: deleted (or unchained) rows
	AuditAnchor    = "anchor"    // the row at the anchor's place does not have the anchor's hash
	AuditTruncated = "truncated" // the chain ends before the anchor's place: rows deleted from its end
)

// AuditProblem is one place where the chain does not hold.
type AuditProblem struct {
	Kind   string
	Seq    int64 // the chain place (for missing: the first missing one)
	ID     int64 // the row's id; 0 when there is no row
	Detail string
}

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	Chained         int64 // rows walked
	Head            AuditHead
	Problems        []AuditProblem // the first maxAuditProblems, in chain order
	ProblemCount    int64
	Unchained       int64     // rows not chained yet
	OldestUnchained time.Time // the oldest unchained row's time; zero when none
}

// OK reports whether the chain holds.
func (r AuditReport) OK() bool { return r.ProblemCount == 0 }

const maxAuditProblems = 100

// ChainAudit chains up to limit of the oldest unchained audit rows and
// returns how many it chained and the chain's head. busy is true when
// another chainer holds the chain (PostgreSQL: another node); then nothing
// is done.
func (s *Store) ChainAudit(ctx context.Context, limit int) (n int, head AuditHead, busy bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		ok, err := s.d.chainLock(ctx, tx)
		if err != nil || !ok {
			busy = !ok
			return err
		}
		head, err = auditHead(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := queryAudit(ctx, tx, `SELECT id, at, kind, account_id, actor_id, ip, detail, chain_seq, chain_hash
			FROM audit_log WHERE chain_seq IS NULL ORDER BY id LIMIT $1`, limit)
		if err != nil || len(rows) == 0 {
			return err
		}
		prev, err := hashBytes(head.Hash)
		if err != nil {
			return fmt.Errorf("store: audit chain head %d: %w", head.Seq, err)
		}
		for i := range rows {
			head.Seq++
			rows[i].ChainSeq = head.Seq
			prev = chainHash(prev, rows[i])
			rows[i].hash = hex.EncodeToString(prev)
		}
		head.Hash = rows[len(rows)-1].hash
		n = len(rows)
		return s.storeChain(ctx, tx, rows)
	})
	return n, head, busy, err
}

func (s *Store) storeChain(ctx context.Context, tx *sql.Tx, rows []chainRow) error {
	if s.d.jsonRows() {
		type link struct {
			ID   int64  `json:"id"`
			Seq  int64  `json:"seq"`
			Hash string `json:"hash"`
		}
		links := make([]link, len(rows))
		for i, r := range rows {
			links[i] = link{r.ID, r.ChainSeq, r.hash}
		}
		b, err := json.Marshal(links)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE audit_log AS a SET chain_seq=v.seq, chain_hash=v.hash
			FROM json_to_recordset($1::json) AS v(id BIGINT, seq BIGINT, hash TEXT) WHERE a.id=v.id`, string(b))
		return err
	}
	st, err := tx.PrepareContext(ctx, `UPDATE audit_log SET chain_seq=$1, chain_hash=$2 WHERE id=$3`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range rows {
		if _, err := st.ExecContext(ctx, r.ChainSeq, r.hash, r.ID); err != nil {
			return err
		}
	}
	return nil
}

// VerifyAudit walks the chain in order and reports where it does not hold.
// anchor, when its Seq is not 0, is a head kept elsewhere: the row at its
// place must have its hash, which also detects rows deleted from the end.
func (s *Store) VerifyAudit(ctx context.Context, anchor AuditHead) (AuditReport, error) {
	var rep AuditReport
	prev := make([]byte, sha256.Size)
	var last int64
	anchored := false
	for {
		rows, err := queryAudit(ctx, s.r, `SELECT id, at, kind, account_id, actor_id, ip, detail, chain_seq, chain_hash
			FROM audit_log WHERE chain_seq > $1 ORDER BY chain_seq LIMIT $2`, last, 1000)
		if err != nil {
			return rep, err
		}
		for _, r := range rows {
			prev = rep.check(prev, last, r)
			if anchor.Seq == r.ChainSeq {
				anchored = true
				if anchor.Hash != r.hash {
					rep.add(AuditProblem{Kind: AuditAnchor, Seq: r.ChainSeq, ID: r.ID, Detail: fmt.Sprintf("the row's hash is %s, the anchor's %s", r.hash, anchor.Hash)})
				}
			}
			last = r.ChainSeq
			rep.Chained++
			rep.Head = AuditHead{Seq: r.ChainSeq, Hash: r.hash}
		}
		if len(rows) < 1000 {
			break
		}
	}
	if anchor.Seq > 0 && !anchored && anchor.Seq > last {
		rep.add(AuditProblem{Kind: AuditTruncated, Seq: anchor.Seq, Detail: fmt.Sprintf("the chain ends at %d, before the anchor's place %d", last, anchor.Seq)})
	} else if anchor.Seq > 0 && !anchored {
		rep.add(AuditProblem{Kind: AuditAnchor, Seq: anchor.Seq, Detail: "no row at the anchor's place"})
	}
	var oldest dbTime
	err := s.r.QueryRowContext(ctx, `SELECT count(*), min(at) FROM audit_log WHERE chain_seq IS NULL`).Scan(&rep.Unchained, &oldest)
	rep.OldestUnchained = oldest.T
	return rep, err
}

// check verifies r, which follows the row at place last whose hash was
// prev, and returns r's hash as the next row's previous one (its stored
// hash, so that one changed row is reported once, not with all after it).
func (rep *AuditReport) check(prev []byte, last int64, r chainRow) []byte {
	stored, err := hashBytes(r.hash)
	if r.hash == "" || err != nil {
		rep.add(AuditProblem{Kind: AuditChanged, Seq: r.ChainSeq, ID: r.ID, Detail: "the row's chain hash is missing or malformed"})
		return make([]byte, sha256.Size)
	}
	if r.ChainSeq != last+1 {
		rep.add(AuditProblem{Kind: AuditMissing, Seq: last + 1, ID: r.ID,
			Detail: fmt.Sprintf("places %d to %d have no row (the row after them, id %d, cannot be checked)", last+1, r.ChainSeq-1, r.ID)})
		return stored
	}
	if hex.EncodeToString(chainHash(prev, r)) != r.hash {
		rep.add(AuditProblem{Kind: AuditChanged, Seq: r.ChainSeq, ID: r.ID, Detail: "the row's content or place differs from what was chained"})
	}
	return stored
}

func (rep *AuditReport) add(p AuditProblem) {
	rep.ProblemCount++
	if len(rep.Problems) < maxAuditProblems {
		rep.Problems = append(rep.Problems, p)
	}
}

// chainRow is an audit row with its chain hash.
type chainRow struct {
	AuditEvent
	hash string
}

func chainHash(prev []byte, r chainRow) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write([]byte(auditDomain))
	var b [8]byte
	for _, v := range []int64{r.ChainSeq, r.ID, r.At.UnixMicro()} {
		binary.BigEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	for _, v := range []string{r.Kind, r.AccountID, r.ActorID, r.IP, r.Detail} {
		binary.BigEndian.PutUint32(b[:4], uint32(len(v)))
		h.Write(b[:4])
		h.Write([]byte(v))
	}
	return h.Sum(nil)
}

// hashBytes decodes a stored hash; "" (no chain yet) is 32 zero bytes.
func hashBytes(s string) ([]byte, error) {
	if s == "" {
		return make([]byte, sha256.Size), nil
	}
	b, err := hex.DecodeString(s)
	if err == nil && len(b) != sha256.Size {
		err = fmt.Errorf("hash of %d bytes", len(b))
	}
	return b, err
}

func auditHead(ctx context.Context, tx *sql.Tx) (AuditHead, error) {
	var h AuditHead
	var hash sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT chain_seq, chain_hash FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1`).Scan(&h.Seq, &hash)
	if err == sql.ErrNoRows {
		return AuditHead{}, nil
	}
	h.Hash = hash.String
	return h, err
}

func queryAudit(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]chainRow, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []chainRow
	for rows.Next() {
		var r chainRow
		var at dbTime
		var acc, actor, hash sql.NullString
		var seq sql.NullInt64
		if err := rows.Scan(&r.ID, &at, &r.Kind, &acc, &actor, &r.IP, &r.Detail, &seq, &hash); err != nil {
			return nil, err
		}
		r.At, r.AccountID, r.ActorID, r.ChainSeq, r.hash = at.T, acc.String, actor.String, seq.Int64, hash.String
		out = append(out, r)
	}
	return out, rows.Err()
}
