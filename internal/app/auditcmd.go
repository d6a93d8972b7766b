package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/store"
)

// auditCmd is `multijuego audit verify [SEQ:HASH]`: it walks the audit
// log's hash chain (store.VerifyAudit) and fails when it does not hold.
// SEQ:HASH is a head printed earlier and kept elsewhere (an anchor).
func auditCmd(ctx context.Context, cfg Config, sub string, args []string, out io.Writer, now time.Time) error {
	if sub != "verify" {
		return fmt.Errorf("unknown command 'audit %s' (try verify)", sub)
	}
	if len(args) > 1 {
		return errors.New("usage: multijuego audit verify [SEQ:HASH]")
	}
	var anchor store.AuditHead
	if len(args) == 1 {
		var err error
		if anchor, err = store.ParseAuditHead(args[0]); err != nil {
			return fmt.Errorf("anchor: %w (as 'audit verify' prints the head)", err)
		}
	}
	s, err := openMigratedStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := s.VerifyAudit(ctx, anchor)
	if err != nil {
		return err
	}
	printAuditReport(out, rep, now)
	if !rep.OK() {
		return fmt.Errorf("the audit chain does not hold: %d problems", rep.ProblemCount)
	}
	return nil
}

func printAuditReport(out io.Writer, rep store.AuditReport, now time.Time) {
	if rep.Chained == 0 {
		fmt.Fprintln(out, "chained: 0 rows")
	} else {
		fmt.Fprintf(out, "chained: %d rows\nhead:    %s\n", rep.Chained, rep.Head)
	}
	if rep.Unchained > 0 {
		fmt.Fprintf(out, "not chained yet: %d rows, the oldest from %s (%s ago)\n",
			rep.Unchained, rep.OldestUnchained.Format(time.RFC3339), now.Sub(rep.OldestUnchained).Round(time.Second))
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "%-9s at %d (row id %d): %s\n", p.Kind, p.Seq, p.ID, p.Detail)
	}
	if n := rep.ProblemCount - int64(len(rep.Problems)); n > 0 {
		fmt.Fprintf(out, "... and %d more problems\n", n)
	}
	if rep.OK() {
		fmt.Fprintln(out, "OK: every chained row is unchanged and in its place")
	}
}

// auditKeyRotation writes a key rotation to the audit log. The keys are
// files, rotated without the database, so a database that cannot be
// reached or is not migrated is said, not fatal.
func auditKeyRotation(ctx context.Context, cfg Config, sub string, detail map[string]any, out io.Writer) {
	kind := auth.AuditKeyRotate
	if sub == "rotate-kek" {
		kind = auth.AuditKEKRotate
	}
	err := func() error {
		s, err := openStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer s.Close()
		if cur, err := s.Current(ctx); err != nil || !cur {
			return errors.New("the database is not migrated")
		}
		b, _ := json.Marshal(detail)
		return s.AppendAudit(ctx, store.AuditEvent{At: time.Now(), Kind: kind, IP: "cli", Detail: string(b)})
	}()
	if err != nil {
		fmt.Fprintf(out, "not written to the audit log: %v\n", err)
	}
}
