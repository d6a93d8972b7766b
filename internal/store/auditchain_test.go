package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

const chainChildEnv = "MULTIJUEGO_TEST_AUDIT_CHAIN_CHILD"

// Two processes append and chain the same PostgreSQL audit log at once:
// only one chains at a time (the other is told it is busy), and the chain
// they make together is one chain, without a fork or a gap.
func TestAuditChainTwoProcessesPostgres(t *testing.T) {
	if u := os.Getenv(chainChildEnv); u != "" {
		chainChild(t, u)
		return
	}
	u := storetest.PostgresURL(t)
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const perChild = 150
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 2 {
		c := exec.Command(os.Args[0], "-test.run=^TestAuditChainTwoProcessesPostgres$", "-test.v")
		c.Env = append(os.Environ(), chainChildEnv+"="+u)
		out := &strings.Builder{}
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, c), append(outs, out)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
		t.Logf("child %d: %s", i, lastLine(outs[i].String(), "chained"))
	}
	for {
		n, _, busy, err := s.ChainAudit(ctx, 1000)
		if err != nil || busy {
			t.Fatalf("ChainAudit: %v, busy %v", err, busy)
		}
		if n == 0 {
			break
		}
	}
	rep, err := s.VerifyAudit(ctx, store.AuditHead{})
	if err != nil || !rep.OK() || rep.Chained != 2*perChild || rep.Head.Seq != 2*perChild || rep.Unchained != 0 {
		t.Fatalf("VerifyAudit = %+v, %v; want one chain of %d rows", rep, err, 2*perChild)
	}
}

func chainChild(t *testing.T, u string) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chained, busy := 0, 0
	for i := range 150 {
		if err := s.AppendAudit(ctx, store.AuditEvent{At: time.Now(), Kind: "login_ok", IP: "192.0.2.1", Detail: fmt.Sprintf(`{"pid":%d,"i":%d}`, os.Getpid(), i)}); err != nil {
			t.Fatal(err)
		}
		n, _, b, err := s.ChainAudit(ctx, 5)
		if err != nil {
			t.Fatalf("ChainAudit: %v", err)
		}
		chained += n
		if b {
			busy++
		}
	}
	fmt.Printf("chained %d rows, found the chain busy %d times\n", chained, busy)
}

func lastLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return "(no summary)"
}
