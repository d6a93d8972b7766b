package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Logins: what a login writes (a new guest account with its device, a
// refresh family with its first token, audit events), for many logins in
// one transaction. The auth service groups concurrent logins into one call
// (group commit), so a storm of logins costs one commit per batch, not two
// or three per login.

// LoginWrite is the rows of one login. Every part is optional.
type LoginWrite struct {
	// Account, when its ID is set, is created first, with Device linked
	// to it when Device is not empty (a device's first login).
	Account Account
	Device  string
	// Identity, when its Issuer is set, links an external identity to
	// Account (an OpenID Connect sign-in's first use).
	Identity Identity
	// Family, when its ID is set, is created with Token as its first
	// token (the session).
	Family RefreshFamily
	Token  RefreshToken
	Audit  []AuditEvent
}

// WriteLogins writes every login's rows in one transaction: all of them or,
// on any error, none. The error is the first statement's that failed; a
// unique violation is a *ConflictError, but in a batch of several logins it
// does not say whose: write the logins one by one to tell. A session
// (Family) of an account the batch does not create is written only if that
// account is not banned when the transaction commits, read in it: else
// ErrBanned (whose, again, one by one). A login decided on an account read
// before a ban committed (a cached profile, a read that raced it) thus
// commits either before the ban, and its token is voided by the ban's
// revocation, or not at all.
func (s *Store) WriteLogins(ctx context.Context, ws []LoginWrite) error {
	if len(ws) == 0 {
		return nil
	}
	if err := s.prepareOwners(ctx, ws); err != nil {
		return err
	}
	var accounts, devices, identities, families, tokens, existing []any
	var audit []chainRow
	for _, w := range ws {
		if a := w.Account; a.ID != "" {
			row, err := s.accountRow(ctx, a)
			if err != nil {
				return err
			}
			accounts = append(accounts, row...)
			if w.Device != "" {
				devices = append(devices, w.Device, a.ID, s.d.time(a.CreatedAt))
			}
		}
		if id := w.Identity; id.Issuer != "" {
			identities = append(identities, id.Issuer, id.Subject, id.AccountID, s.d.time(id.CreatedAt))
		}
		if f := w.Family; f.ID != "" {
			if f.AccountID != w.Account.ID {
				existing = append(existing, f.AccountID)
			}
			families = append(families, f.ID, f.AccountID, s.d.time(f.CreatedAt), s.d.time(f.ExpiresAt))
			t := w.Token
			tokens = append(tokens, t.Hash, t.FamilyID, t.AccountID, s.d.time(t.CreatedAt), s.d.time(t.ExpiresAt))
		}
		for _, e := range w.Audit {
			ip, err := s.sealIP(ctx, e)
			if err != nil {
				return err
			}
			e.IP = ip
			audit = append(audit, chainRow{AuditEvent: e})
		}
	}
	// Parents first: devices, identities and families refer to accounts, tokens to
	// families.
	ins := []loginInsert{
		{"accounts", accountInsertCols, "text,text,text,text,text,timestamptz,text,timestamptz,timestamptz,timestamptz,text", accounts},
		{"account_devices", "device_id, account_id, created_at", "text,text,timestamptz", devices},
		{"account_identities", identityCols, "text,text,text,timestamptz", identities},
		{"refresh_families", "id, account_id, created_at, expires_at", "text,text,timestamptz,timestamptz", families},
		{"refresh_tokens", "token_hash, family_id, account_id, created_at, expires_at", "text,text,text,timestamptz,timestamptz", tokens},
	}
	if s.dn == "postgres" {
		var rows []any
		for _, e := range audit {
			rows = append(rows, s.d.time(e.At), e.Kind, nullString(e.AccountID), nullString(e.ActorID), e.IP, e.Detail)
		}
		ins = append(ins, loginInsert{"audit_log", "at, kind, account_id, actor_id, ip, detail", "timestamptz,text,text,text,text,text", rows})
		return s.writeLoginsStatement(ctx, ins, existing)
	}
	var chunks []insertChunk
	for _, in := range ins {
		var err error
		head := `INSERT INTO ` + in.table + ` (` + in.cols + `) VALUES `
		if chunks, err = s.insertChunks(ctx, chunks, head, "", strings.Count(in.types, ",")+1, in.args); err != nil {
			return err
		}
	}
	chain, err := s.prepareChain(ctx, audit)
	if err != nil {
		return err
	}
	// The ban check: by primary key, prepared like the INSERTs (outside
	// the transaction, on SQLite's one writer connection).
	bans, err := s.insertChunks(ctx, nil, `SELECT count(*) FROM accounts WHERE banned_at IS NOT NULL AND id IN (`, `)`, 0, existing)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := chain.link(ctx, tx); err != nil {
			return err
		}
		for _, c := range append(chunks, chain.chunks...) {
			if _, err := tx.StmtContext(ctx, c.st).ExecContext(ctx, c.args...); err != nil {
				return s.d.conflict(err)
			}
		}
		return noneBanned(ctx, tx, bans)
	})
}

// loginInsert is the rows WriteLogins inserts into one table: its columns,
// their PostgreSQL types (comma-separated, in order) and the values, row
// after row.
type loginInsert struct {
	table, cols, types string
	args               []any
}

// writeLoginsStatement is WriteLogins on PostgreSQL: one statement, so one
// round trip and an implicit transaction, whatever the batch (it was a
// BEGIN, two or three INSERTs per table, the ban check and a COMMIT, each
// a round trip). Each table's rows travel as one array per column and are
// inserted by unnest, only if none of the existing accounts is banned, read
// in the same statement; foreign keys are checked at its end, so an
// account and its device insert together.
func (s *Store) writeLoginsStatement(ctx context.Context, ins []loginInsert, existing []any) error {
	ids := make([]string, len(existing))
	for i, id := range existing {
		ids[i] = id.(string)
	}
	args := []any{ids}
	// The ban check looks each account up by its primary key (a LATERAL
	// subquery with a LIMIT, which the planner keeps as such): as
	// "banned_at IS NOT NULL AND id = ANY($1)", the plan PostgreSQL
	// cached while the table was small scanned all of accounts every batch.
	q := []string{`WITH banned AS (SELECT count(*) AS n FROM unnest($1::text[]) AS b(id)
		CROSS JOIN LATERAL (SELECT banned_at FROM accounts WHERE id=b.id LIMIT 1) a WHERE a.banned_at IS NOT NULL)`}
	for i, in := range ins {
		types := strings.Split(in.types, ",")
		unnest := make([]string, len(types))
		for c, typ := range types {
			col, err := pgColumn(in.args, c, len(types), typ)
			if err != nil {
				return fmt.Errorf("store: %s.%d: %w", in.table, c, err)
			}
			args = append(args, col)
			unnest[c] = fmt.Sprintf("$%d::%s[]", len(args), typ)
		}
		q = append(q, fmt.Sprintf(`i%d AS (INSERT INTO %s (%s) SELECT * FROM unnest(%s) WHERE (SELECT n FROM banned) = 0)`,
			i, in.table, in.cols, strings.Join(unnest, ", ")))
	}
	var banned int
	err := s.w.QueryRowContext(ctx, strings.Join(q, ",\n")+` SELECT n FROM banned`, args...).Scan(&banned)
	if err != nil {
		return s.d.conflict(err)
	}
	if banned > 0 {
		return ErrBanned
	}
	return nil
}

// pgColumn is column c of rows (width values a row) as an array of typ:
// []*string for text, []*time.Time for timestamptz; a nil value is NULL.
func pgColumn(rows []any, c, width int, typ string) (any, error) {
	n := len(rows) / width
	switch typ {
	case "text":
		col := make([]*string, n)
		for r := range n {
			switch v := rows[r*width+c].(type) {
			case nil:
			case string:
				col[r] = &v
			default:
				return nil, fmt.Errorf("%T is not text", v)
			}
		}
		return col, nil
	case "timestamptz":
		col := make([]*time.Time, n)
		for r := range n {
			switch v := rows[r*width+c].(type) {
			case nil:
			case time.Time:
				col[r] = &v
			default:
				return nil, fmt.Errorf("%T is not a time", v)
			}
		}
		return col, nil
	}
	return nil, fmt.Errorf("no array of %s", typ)
}

// noneBanned returns ErrBanned if one of the accounts the counts of bans
// (prepared by WriteLogins) ask about is banned, read in tx.
func noneBanned(ctx context.Context, tx *sql.Tx, bans []insertChunk) error {
	for _, c := range bans {
		var banned int
		if err := tx.StmtContext(ctx, c.st).QueryRowContext(ctx, c.args...).Scan(&banned); err != nil {
			return err
		}
		if banned > 0 {
			return ErrBanned
		}
	}
	return nil
}

// maxChunkRows bounds the rows of one prepared multi-row INSERT.
const maxChunkRows = 256

// insertChunk is one prepared multi-row INSERT and its values.
type insertChunk struct {
	st   *sql.Stmt
	args []any
}

// insertChunks appends to cs the INSERTs of args (rows of cols values; tail
// after the values, such as an ON CONFLICT clause) in
// chunks of power-of-two sizes, 37 rows as 32 + 4 + 1: every statement text
// is one of a few per table, prepared once on the writer, so a batch of any
// size is parsed by nobody. cols 0 makes an IN list of args, one value a
// row.
func (s *Store) insertChunks(ctx context.Context, cs []insertChunk, head, tail string, cols int, args []any) ([]insertChunk, error) {
	width := max(cols, 1)
	for len(args) > 0 {
		n := min(len(args)/width, maxChunkRows)
		for n&(n-1) != 0 {
			n &= n - 1 // the highest power of two not above n
		}
		st, err := s.prepared(ctx, s.w, head+s.placeholders(cols, n)+tail)
		if err != nil {
			return nil, err
		}
		cs = append(cs, insertChunk{st, args[:n*width]})
		args = args[n*width:]
	}
	return cs, nil
}

// AccountByDeviceIDs returns the account linked to the first of ids that is
// stored, and that id, in one query: the auth service looks a device up by
// its keyed hash and by the id in clear (a database written before hashing)
// at once. Devices is not filled.
func (s *Store) AccountByDeviceIDs(ctx context.Context, ids ...string) (Account, string, error) {
	if len(ids) == 0 {
		return Account{}, "", ErrNotFound
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	join := `JOIN accounts a ON a.id=d.account_id`
	if s.dn == "postgres" {
		// Each device's account by its primary key. As a plain join, the
		// generic plan PostgreSQL cached for the prepared query while the
		// table was small hashed the whole accounts table on every lookup
		// (a storm of new accounts on a fresh database: one sequential
		// scan of accounts per new device). The LIMIT keeps the planner
		// from flattening the subquery back into that join.
		join = `CROSS JOIN LATERAL (SELECT * FROM accounts WHERE id=d.account_id LIMIT 1) a`
	}
	q := `SELECT d.device_id, ` + prefixed("a.", accountCols) +
		` FROM account_devices d ` + join + ` WHERE d.device_id IN (` + s.inList(len(ids)) + `)`
	var rows *sql.Rows
	var err error
	if len(ids) <= maxPreparedIDs {
		var st *sql.Stmt
		if st, err = s.prepared(ctx, s.r, q); err == nil {
			rows, err = st.QueryContext(ctx, args...)
		}
	} else {
		rows, err = s.r.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return Account{}, "", err
	}
	defer rows.Close()
	found := map[string]Account{}
	for rows.Next() {
		var id string
		a, err := s.scanAccount(ctx, prefixedScanner{rows, &id})
		if err != nil {
			return Account{}, "", err
		}
		found[id] = a
	}
	if err := rows.Err(); err != nil {
		return Account{}, "", err
	}
	for _, id := range ids {
		if a, ok := found[id]; ok {
			return a, id, nil
		}
	}
	return Account{}, "", ErrNotFound
}

// maxPreparedIDs bounds the lists AccountByDeviceIDs prepares a statement
// for (one per length), so callers cannot grow the statement cache.
const maxPreparedIDs = 4

type stmtKey struct {
	db    *sql.DB
	query string
}

// prepared returns query prepared on db, preparing it the first time.
// Every login looks its device up and writes its rows; SQLite parses every
// query text it is given, and the parse was a third of the lookup's CPU
// (pgx caches statements per connection itself). Only a bounded set of
// query texts comes here. On SQLite's single writer connection it must be
// called outside a transaction.
func (s *Store) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	key := stmtKey{db, query}
	if v, ok := s.stmts.Load(key); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.stmts.LoadOrStore(key, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// prefixedScanner scans one leading column into first, then the rest as
// the wrapped row would.
type prefixedScanner struct {
	row   *sql.Rows
	first *string
}

func (p prefixedScanner) Scan(dest ...any) error {
	err := p.row.Scan(append([]any{p.first}, dest...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
