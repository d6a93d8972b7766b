package auth_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/logtest"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// Run chains the audit rows that logins write (group-committed, unchained)
// within a tick or two, logs the head it made, and stops with ctx.
func TestRunChainsAudit(t *testing.T) {
	clk := newClock()
	var logs logtest.Buffer
	s, err := auth.New(ctx, testConfig(), sealedKeys(t), auth.Deps{Store: storetest.SQLite(t), KV: memKV(t, clk.Now), Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "alice", Password: "s3cret-pass"}, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, auth.LoginRequest{Username: "alice", Password: "wrong-pass"}, meta); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep, err := s.VerifyAudit(ctx, store.AuditHead{})
		if err != nil {
			t.Fatal(err)
		}
		// The head is logged just after the commit that verify may see first.
		if rep.Unchained == 0 && rep.Chained == 2 && strings.Contains(logs.String(), `msg="audit chain head"`) {
			if !rep.OK() || rep.Head.Seq != 2 {
				t.Fatalf("report = %+v", rep)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not chained and logged after 10s: %+v\n%s", rep, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The logged head is an anchor the chain holds.
	m := regexp.MustCompile(`msg="audit chain head" head=(\S+)`).FindStringSubmatch(logs.String())
	anchor, err := store.ParseAuditHead(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.VerifyAudit(ctx, anchor); err != nil || !rep.OK() {
		t.Fatalf("verify with the logged head %s: %+v, %v", m[1], rep, err)
	}
	if n, err := s.ChainAuditOnce(ctx); n != 0 || err != nil {
		t.Fatalf("ChainAuditOnce with nothing new = %d, %v", n, err)
	}
}
