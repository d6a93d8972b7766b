package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/client"
	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/auth/oidctest"
)

var ctx = context.Background()

// server runs a whole multijuego (all roles, SQLite in a temp dir) for one
// test, the way cmd/multijuego does.
func server(t *testing.T, mutate ...func(*app.Config)) string {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Auth.Argon2MemoryKiB, cfg.Auth.Argon2Iterations = 8192, 1
	for _, m := range mutate {
		m(&cfg)
	}
	m := &app.Main{Config: cfg, Modes: []app.Mode{{Name: tictactoe.Mode, Factory: tictactoe.New}}}
	cctx, cancel := context.WithCancel(ctx)
	if err := m.Open(cctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(cctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		m.Close()
	})
	return m.URL()
}

// clock is a settable clock for the client's refresh decisions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestSessionLifecycle(t *testing.T) {
	url := server(t)
	clk := &clock{t: time.Now()}
	var saved []client.Tokens
	c, err := client.New(url, client.WithClock(clk.Now), client.OnRefresh(func(t client.Tokens) { saved = append(saved, t) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Account(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("account before login: %v", err)
	}
	reg, err := c.Register(ctx, "ana", "ana@example.com", "anas-password")
	if err != nil {
		t.Fatal(err)
	}
	if reg.AccountID == "" || reg.ExpiresAt.Sub(clk.Now()) != 15*time.Minute {
		t.Fatalf("tokens = %+v", reg)
	}
	a, err := c.Account(ctx)
	if err != nil || a.Username != "ana" || a.Email != "ana@example.com" || a.Guest {
		t.Fatalf("account = %+v, %v", a, err)
	}
	// Near expiry, the next call refreshes first.
	clk.Set(clk.Now().Add(14*time.Minute + 45*time.Second))
	if _, err := c.Account(ctx); err != nil {
		t.Fatal(err)
	}
	if len(saved) != 1 || saved[0].RefreshToken == reg.RefreshToken {
		t.Fatalf("refreshes = %d, want 1 with a new refresh token", len(saved))
	}
	// A second client logging in with the email, then logging out.
	c2, _ := client.New(url)
	if _, err := c2.Login(ctx, "ana@example.com", "anas-password"); err != nil {
		t.Fatal(err)
	}
	if err := c2.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Account(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("after logout: %v", err)
	}
	// The first session is unaffected.
	if _, err := c.Account(ctx); err != nil {
		t.Fatalf("other session after logout: %v", err)
	}
}

// A token the server refuses (here: revoked because its refresh token was
// reused) ends the session cleanly: the call returns the server's error.
func TestRevokedSession(t *testing.T) {
	url := server(t)
	c, _ := client.New(url)
	tok, err := c.Device(ctx, "sdk-device-0001")
	if err != nil {
		t.Fatal(err)
	}
	// Someone else (a thief) uses the refresh token first, then the owner's
	// client refreshes: reuse detected, the whole session is revoked.
	thief, _ := client.New(url, client.WithTokens(tok))
	if _, err := thief.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(ctx)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != "unauthenticated" || ae.RequestID == "" {
		t.Fatalf("refresh after reuse: %v", err)
	}
	if c.Tokens() != (client.Tokens{}) {
		t.Fatal("tokens kept after the session ended")
	}
	if _, err := thief.Account(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("the thief's session must be revoked too: %v", err)
	}
}

// Sign-in with an external identity: the first and later sign-ins reach
// one account; a token for another client is refused with its own code.
func TestOIDC(t *testing.T) {
	idp := oidctest.New(t)
	url := server(t, func(c *app.Config) { c.Auth.OIDC.Issuers = []string{idp.Issuer("idp", "game")} })
	c, _ := client.New(url)
	first, err := c.OIDC(ctx, idp.Token(t, "carol", "game", nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.OIDC(ctx, idp.Token(t, "carol", "game", nil), "idp"); err != nil || again.AccountID != first.AccountID {
		t.Fatalf("second sign-in: %+v, %v; want account %s", again, err, first.AccountID)
	}
	if a, err := c.Account(ctx); err != nil || a.ID != first.AccountID {
		t.Fatalf("account of the session: %+v, %v", a, err)
	}
	_, err = c.OIDC(ctx, idp.Token(t, "carol", "another-game", nil), "")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != "identity_audience" {
		t.Fatalf("token for another client: %v", err)
	}
}

func TestErrorsAndMatches(t *testing.T) {
	url := server(t, func(c *app.Config) { c.Auth.AccountIPFailures, c.Auth.AccountFailures = 1, 1 })
	c, _ := client.New(url)
	_, err := c.Register(ctx, "x", "", "short")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "username" {
		t.Fatalf("bad register: %v", err)
	}
	if _, err := c.Register(ctx, "bo", "", "bos-password"); err == nil {
		t.Fatal("2-letter username accepted")
	}
	if _, err := c.Register(ctx, "bob", "", "bos-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "bob", "wrong-password"); !errors.As(err, &ae) || ae.Code != "unauthenticated" {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := c.Login(ctx, "bob", "bos-password"); !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter <= 0 {
		t.Fatalf("throttled login: %v", err)
	}
	// The registration session still works for the match API.
	m, err := c.CreateMatch(ctx, tictactoe.Mode, nil)
	if err != nil || m.MatchID == "" || m.MaxPlayers != 2 {
		t.Fatalf("create match: %+v, %v", m, err)
	}
	list, err := c.ListMatches(ctx, tictactoe.Mode, "")
	if err != nil || len(list) != 1 || list[0].MatchID != m.MatchID {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if _, err := c.CreateMatch(ctx, "chess", nil); !errors.As(err, &ae) || ae.Field != "mode" {
		t.Fatalf("unknown mode: %v", err)
	}
	if _, err := client.New("ftp://x"); err == nil {
		t.Fatal("ftp URL accepted")
	}
}

// Two SDK clients play tic-tac-toe over realtime sockets; one drops and
// resumes its seat on a new socket.
func TestRealtimeGame(t *testing.T) {
	url := server(t)
	a, _ := client.New(url)
	b, _ := client.New(url)
	ta, err := a.Device(ctx, "sdk-rt-device-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Device(ctx, "sdk-rt-device-b"); err != nil {
		t.Fatal(err)
	}
	ra, err := a.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	m, err := ra.CreateMatch(ctx, tictactoe.Mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	resume, err := ra.Join(ctx, m.MatchID)
	if err != nil || resume == "" {
		t.Fatalf("join: %q %v", resume, err)
	}
	if _, err := rb.Join(ctx, m.MatchID); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Join(ctx, "no-such-match"); err == nil {
		t.Fatal("joined a missing match")
	}
	waitState := func(r *client.Realtime, cond func(tictactoe.State) bool) tictactoe.State {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case f, ok := <-r.Frames():
				if !ok {
					t.Fatalf("socket ended: %v", r.Err())
				}
				if f.Op != uint16(tictactoe.OpState) || f.MatchID != m.MatchID {
					continue
				}
				var s tictactoe.State
				if err := json.Unmarshal(f.Payload, &s); err != nil {
					t.Fatal(err)
				}
				if cond(s) {
					return s
				}
			case <-timeout:
				t.Fatal("no such state within 5s")
			}
		}
	}
	if err := ra.Send(uint16(tictactoe.OpMove), []byte{4}); err != nil {
		t.Fatal(err)
	}
	waitState(rb, func(s tictactoe.State) bool { return s.Moves == 1 })

	// A's socket drops; a new one resumes the seat and gets the state.
	ra.Close()
	ra2, err := a.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ra2.Close()
	if id, err := ra2.Resume(ctx, resume); err != nil || id != m.MatchID {
		t.Fatalf("resume: %q %v", id, err)
	}
	if s := waitState(ra2, func(s tictactoe.State) bool { return s.Moves == 1 }); s.X != ta.AccountID {
		t.Fatalf("state after resume: %+v", s)
	}
	if err := rb.Send(uint16(tictactoe.OpMove), []byte{0}); err != nil {
		t.Fatal(err)
	}
	waitState(ra2, func(s tictactoe.State) bool { return s.Moves == 2 && s.Board[0] == 'O' })
}
