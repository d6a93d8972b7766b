package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

// auditChained appends n audit events and chains them (in batches of 3,
// so that batches meet), and returns the head.
func auditChained(t *testing.T, s *store.Store, n int) store.AuditHead {
	t.Helper()
	for i := range n {
		e := store.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), Kind: "login_ok", AccountID: ID("acc"), IP: "192.0.2.1", Detail: fmt.Sprintf(`{"i":%d}`, i)}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var head store.AuditHead
	for total := 0; total < n; {
		k, h, busy, err := s.ChainAudit(ctx, 3)
		if err != nil || busy || k == 0 {
			t.Fatalf("ChainAudit = %d, %v, busy %v after %d of %d", k, err, busy, total, n)
		}
		total += k
		head = h
	}
	return head
}

func verify(t *testing.T, s *store.Store, anchor store.AuditHead) store.AuditReport {
	t.Helper()
	rep, err := s.VerifyAudit(ctx, anchor)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	return rep
}

// wantProblems checks the report's problems, as kind@seq.
func wantProblems(t *testing.T, rep store.AuditReport, want ...string) {
	t.Helper()
	var got []string
	for _, p := range rep.Problems {
		got = append(got, fmt.Sprintf("%s@%d", p.Kind, p.Seq))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || rep.ProblemCount != int64(len(want)) || rep.OK() != (len(want) == 0) {
		t.Fatalf("problems = %v (count %d), want %v; report %+v", got, rep.ProblemCount, want, rep)
	}
}

func rawExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func testAuditChain(t *testing.T, s *store.Store) {
	if rep := verify(t, s, store.AuditHead{}); !rep.OK() || rep.Chained != 0 || rep.Head.Hash != "" {
		t.Fatalf("empty log: %+v", rep)
	}
	head := auditChained(t, s, 7)
	if head.Seq != 7 || len(head.Hash) != 64 {
		t.Fatalf("head = %v", head)
	}
	if n, h, busy, err := s.ChainAudit(ctx, 3); n != 0 || h != head || busy || err != nil {
		t.Fatalf("nothing to chain: %d, %v, %v, %v", n, h, busy, err)
	}
	// An unchained row is counted with its age, not a problem.
	if err := s.AppendAudit(ctx, store.AuditEvent{At: t0.Add(time.Hour), Kind: "ban", AccountID: "x"}); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, s, head)
	wantProblems(t, rep)
	if rep.Chained != 7 || rep.Head != head || rep.Unchained != 1 || !rep.OldestUnchained.Equal(t0.Add(time.Hour)) {
		t.Fatalf("report = %+v", rep)
	}
	ev, err := s.Audit(ctx, store.AuditQuery{Limit: 2})
	if err != nil || len(ev) != 2 || ev[0].ChainSeq != 0 || ev[1].ChainSeq != 7 {
		t.Fatalf("Audit shows the chain places: %+v, %v", ev, err)
	}
	if _, h, _, err := s.ChainAudit(ctx, 3); err != nil || h.Seq != 8 {
		t.Fatalf("chain the 8th: %v, %v", h, err)
	}
	wantProblems(t, verify(t, s, head)) // the old anchor still holds
}

// A changed detail is reported at its place, once.
func testAuditChainChanged(t *testing.T, s *store.Store) {
	head := auditChained(t, s, 6)
	rawExec(t, Raw(t, s), `UPDATE audit_log SET detail='{"i":99}' WHERE chain_seq=3`)
	wantProblems(t, verify(t, s, head), "changed@3")
}

// A deleted row is a missing place; deleted from the end, only an anchor
// shows it.
func testAuditChainDeleted(t *testing.T, s *store.Store) {
	head := auditChained(t, s, 6)
	db := Raw(t, s)
	rawExec(t, db, `DELETE FROM audit_log WHERE chain_seq=4`)
	wantProblems(t, verify(t, s, store.AuditHead{}), "missing@4")
	rawExec(t, db, `DELETE FROM audit_log WHERE chain_seq=6`)
	wantProblems(t, verify(t, s, store.AuditHead{}), "missing@4")
	wantProblems(t, verify(t, s, head), "missing@4", "truncated@6")
	// Unchaining a row (to hide it among the new ones) is a missing place too.
	rawExec(t, db, `UPDATE audit_log SET chain_seq=NULL, chain_hash=NULL WHERE chain_seq=2`)
	rep := verify(t, s, store.AuditHead{})
	wantProblems(t, rep, "missing@2", "missing@4")
	if rep.Unchained != 1 {
		t.Fatalf("unchained = %d, want 1", rep.Unchained)
	}
}

// Two rows whose places were swapped are both reported, and so are the
// rows after each (their links point at the hash that moved away).
func testAuditChainSwapped(t *testing.T, s *store.Store) {
	head := auditChained(t, s, 6)
	db := Raw(t, s)
	rawExec(t, db, `UPDATE audit_log SET chain_seq=-1 WHERE chain_seq=2`)
	rawExec(t, db, `UPDATE audit_log SET chain_seq=2 WHERE chain_seq=5`)
	rawExec(t, db, `UPDATE audit_log SET chain_seq=5 WHERE chain_seq=-1`)
	wantProblems(t, verify(t, s, head), "changed@2", "changed@3", "changed@5", "changed@6")
	// A row given a made-up hash is reported, as is the row after it.
	rawExec(t, db, `UPDATE audit_log SET kind='logout', chain_hash=$1 WHERE chain_seq=1`, fmt.Sprintf("%064x", 1))
	wantProblems(t, verify(t, s, head), "changed@1", "changed@2", "changed@3", "changed@5", "changed@6")
}

// A login batch's audit rows: on SQLite chained as they are inserted,
// after rows appended before them and not chained yet (which the chainer
// then chains after them); on PostgreSQL chained later like any row. The
// chain holds either way, and a changed login row is reported.
func testAuditChainLogins(t *testing.T, s *store.Store) {
	if err := s.AppendAudit(ctx, store.AuditEvent{At: t0, Kind: "ban", AccountID: ID("x"), Detail: "{}"}); err != nil {
		t.Fatal(err)
	}
	batch := func(k int) {
		t.Helper()
		var ws []store.LoginWrite
		for i := range k {
			ws = append(ws, store.LoginWrite{Audit: []store.AuditEvent{{At: t0.Add(time.Duration(i) * time.Millisecond),
				Kind: "device_login", AccountID: ID(fmt.Sprint("acc", i)), IP: "192.0.2.7", Detail: fmt.Sprintf(`{"i":%d}`, i)}}})
		}
		if err := s.WriteLogins(ctx, ws); err != nil {
			t.Fatal(err)
		}
	}
	batch(3)
	rep := verify(t, s, store.AuditHead{})
	wantProblems(t, rep)
	sqlite := s.Dialect() == "sqlite"
	if want := map[bool][2]int64{true: {3, 1}, false: {0, 4}}[sqlite]; rep.Chained != want[0] || rep.Unchained != want[1] {
		t.Fatalf("after a login batch: %d chained, %d not, want %v", rep.Chained, rep.Unchained, want)
	}
	if _, head, _, err := s.ChainAudit(ctx, 10); err != nil || head.Seq != 4 {
		t.Fatalf("ChainAudit: head %v, %v", head, err)
	}
	batch(2)
	if !sqlite {
		if _, _, _, err := s.ChainAudit(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	rep = verify(t, s, store.AuditHead{})
	wantProblems(t, rep)
	if rep.Chained != 6 || rep.Unchained != 0 || rep.Head.Seq != 6 {
		t.Fatalf("after a second batch: %+v", rep)
	}
	ev, err := s.Audit(ctx, store.AuditQuery{Limit: 10})
	if err != nil || len(ev) != 6 || ev[0].Kind != "device_login" || ev[0].ChainSeq == 0 {
		t.Fatalf("Audit = %+v, %v", ev, err)
	}
	rawExec(t, Raw(t, s), `UPDATE audit_log SET detail='{"i":99}' WHERE id=$1`, ev[0].ID)
	wantProblems(t, verify(t, s, rep.Head), fmt.Sprint("changed@", ev[0].ChainSeq))
}
