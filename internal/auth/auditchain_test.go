package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// Run chains the audit rows that logins write (group-committed, unchained)
// within a tick or two, and stops with ctx.
func TestRunChainsAudit(t *testing.T) {
	s := newService(t, storetest.SQLite(t), newClock())
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
		if rep.Unchained == 0 && rep.Chained == 2 {
			if !rep.OK() || rep.Head.Seq != 2 {
				t.Fatalf("report = %+v", rep)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not chained after 10s: %+v", rep)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := s.ChainAuditOnce(ctx); n != 0 || err != nil {
		t.Fatalf("ChainAuditOnce with nothing new = %d, %v", n, err)
	}
}
