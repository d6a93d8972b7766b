package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// The browser tests drive the real binary's pages (the demo game at / and
// the admin console at /admin/) in Debian's Chromium, headless, through
// the DevTools protocol. Each player is a page in a browser context of its
// own (like a separate profile: its own storage, so its own guest). The
// pages expose their state read-only as window.__mj.state() and
// window.__mjAdmin.state(), so the tests check positions and results
// without reading pixels. On failure every page's screenshot is saved in
// the test's artifact directory (go test -artifacts keeps it).

const chromiumPath = "/usr/bin/chromium"

// chromium returns the browser to use: the test is skipped without one,
// except under CI=true, where a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the browser tests need Chromium at %s (apt install chromium): %v", chromiumPath, err)
		}
		t.Skipf("no Chromium at %s: skipping the browser tests (apt install chromium to run them; with CI=true this is a failure)", chromiumPath)
	}
	return chromiumPath
}

// browser is one headless Chromium process.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	profile, err := os.MkdirTemp("", "multijuego-chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no first run, no background networking, no sync, ...
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		// Chromium's helpers can write in the profile for a moment after
		// the browser exits.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// The first run starts the browser, which lives as long as the context
	// of that run: ctx, not a shorter one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// page is a tab in a browser context of its own.
type page struct {
	t    *testing.T
	name string
	base string // the server's URL
	ctx  context.Context
	// artifacts is t.ArtifactDir(), asked for up front: asked first in a
	// cleanup, the directory is removed by the next cleanup.
	artifacts string

	mu       sync.Mutex
	console  []string
	problems []string // uncaught exceptions and CSP violations
}

// newPage opens a tab in a fresh browser context for t: it is closed when
// t ends, after a screenshot if t failed.
func (b *browser) newPage(t *testing.T, name, base string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &page{t: t, name: name, base: base, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // opens the tab, which lives as long as ctx
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m.String())
			if m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") {
				p.problems = append(p.problems, m.String())
			}
			p.mu.Unlock()
		}
	}()
	p.artifacts = t.ArtifactDir()
	t.Cleanup(p.finish) // runs before cancel (cleanups run last first)
	return p
}

// finish fails the test if the page threw or broke its Content-Security-
// Policy, and on failure saves a full-page screenshot and logs the console.
func (p *page) finish() {
	p.mu.Lock()
	for _, m := range p.problems {
		p.t.Errorf("%s: console: %s", p.name, m)
	}
	p.mu.Unlock()
	if !p.t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("%s: no screenshot: %v", p.name, err)
	} else {
		file := filepath.Join(p.artifacts, p.name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			p.t.Logf("%s: saving the screenshot: %v", p.name, err)
		} else {
			p.t.Logf("%s: screenshot saved to %s", p.name, file)
		}
	}
	if raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`window.__mj ? window.__mj.state() : window.__mjAdmin ? window.__mjAdmin.state() : null`)); err == nil {
		p.t.Logf("%s: last state: %s", p.name, raw)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.console) > 0 {
		p.t.Logf("%s: console:\n  %s", p.name, strings.Join(p.console, "\n  "))
	}
}

// do runs actions with a timeout, failing the test on error.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

func (p *page) open(path string) {
	p.t.Helper()
	p.do("open "+path, chromedp.Navigate(p.base+path))
}

func (p *page) click(id string) {
	p.t.Helper()
	p.do("click #"+id, chromedp.WaitEnabled(chromedp.ID(id)), chromedp.Click(chromedp.ID(id)))
}

// clickTestID clicks the element with this data-testid (once it is there and enabled).
func (p *page) clickTestID(id string) {
	p.t.Helper()
	sel := chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id))
	p.do("click "+id, chromedp.WaitEnabled(sel), chromedp.Click(sel))
}

func (p *page) typeInto(id, text string) {
	p.t.Helper()
	// Empty the field first (Clear resets the attribute, not what was typed).
	p.do("type into #"+id,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""`, id)),
		chromedp.SendKeys(chromedp.ID(id), text))
}

// key sends a key event (input.DispatchKeyEventTypeKeyDown or KeyUp).
func (p *page) key(typ input.DispatchKeyEventType, code string, vk int64) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	ev := input.DispatchKeyEventParams{Type: typ, Code: code, Key: code, WindowsVirtualKeyCode: vk, NativeVirtualKeyCode: vk}
	if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, ev); err != nil {
		p.t.Fatalf("%s: %s %s: %v", p.name, typ, code, err)
	}
}

// text returns an element's text.
func (p *page) text(id string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
	if err != nil {
		p.t.Fatalf("%s: text of #%s: %v", p.name, id, err)
	}
	return s
}

// gameState is what window.__mj.state() returns (web/app/src/game.ts).
type gameState struct {
	Screen string `json:"screen"`
	Me     struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	} `json:"me"`
	Connected bool   `json:"connected"`
	Mode      string `json:"mode"`
	MatchID   string `json:"matchId"`
	Lobby     struct {
		Arena     []string `json:"arena"`
		Tictactoe []string `json:"tictactoe"`
	} `json:"lobby"`
	Arena *struct {
		Phase     string `json:"phase"`
		MySlot    int    `json:"mySlot"`
		Predicted *struct {
			X float64 `json:"x"`
			Y float64 `json:"y"`
		} `json:"predicted"`
		Players []arenaPlayer `json:"players"`
	} `json:"arena"`
	TTT *struct {
		Board  string `json:"board"`
		Status string `json:"status"`
		Turn   string `json:"turn"`
		Winner string `json:"winner"`
		Mark   string `json:"mark"`
		Moves  int    `json:"moves"`
		Closed bool   `json:"closed"`
	} `json:"ttt"`
	Result *struct {
		MatchID    string `json:"matchId"`
		Stored     bool   `json:"stored"`
		EndReason  string `json:"endReason"`
		Placements []struct {
			AccountID string `json:"account_id"`
			Placement int    `json:"placement"`
			Score     int    `json:"score"`
		} `json:"placements"`
		Leaderboard []struct {
			Rank      int    `json:"rank"`
			AccountID string `json:"account_id"`
			Value     int    `json:"value"`
		} `json:"leaderboard"`
	} `json:"result"`
}

type arenaPlayer struct {
	Slot  int     `json:"slot"`
	ID    string  `json:"id"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Score int     `json:"score"`
}

func (s *gameState) player(id string) (arenaPlayer, bool) {
	if s.Arena == nil {
		return arenaPlayer{}, false
	}
	for _, p := range s.Arena.Players {
		if p.ID == id {
			return p, true
		}
	}
	return arenaPlayer{}, false
}

// evalJSON evaluates expr and decodes its JSON value into out.
func (p *page) evalJSON(expr string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func (p *page) state() *gameState {
	p.t.Helper()
	var s gameState
	if err := p.evalJSON(`window.__mj.state()`, &s); err != nil {
		p.t.Fatalf("%s: reading window.__mj.state(): %v", p.name, err)
	}
	return &s
}

// waitState polls the page's state until ok accepts it.
func (p *page) waitState(what string, timeout time.Duration, ok func(*gameState) bool) *gameState {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := p.state()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			raw, _ := json.Marshal(s)
			p.t.Fatalf("%s: %s: not within %v; state: %s", p.name, what, timeout, raw)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// loginAsGuest opens the game page and plays as a guest of its own.
func (p *page) loginAsGuest() *gameState {
	p.t.Helper()
	p.open("/")
	p.click("guest-btn")
	s := p.waitState("in the lobby, connected", 10*time.Second, func(s *gameState) bool {
		return s.Screen == "lobby" && s.Me.ID != "" && s.Connected
	})
	return s
}

func TestBrowser(t *testing.T) {
	chromium(t)
	dataDir := t.TempDir()
	srv := start(t, "--data-dir", dataDir)
	b := newBrowser(t)

	t.Run("arena", func(t *testing.T) { browserArena(t, b, srv) })
	t.Run("tictactoe", func(t *testing.T) { browserTicTacToe(t, b, srv) })
	t.Run("admin", func(t *testing.T) { browserAdmin(t, b, srv, dataDir) })
}

// Two guests in two browser contexts: one creates an arena match, the other
// joins it from the lobby list; one moves and the other sees it within a
// second; at the end both get the result screen with the stored result and
// the leaderboard.
func browserArena(t *testing.T, b *browser, srv *proc) {
	alice := b.newPage(t, "arena-alice", srv.url)
	bob := b.newPage(t, "arena-bob", srv.url)
	a := alice.loginAsGuest()
	bo := bob.loginAsGuest()
	if a.Me.ID == bo.Me.ID {
		t.Fatalf("two browser contexts are the same guest %s", a.Me.ID)
	}

	// The shortest match the game allows, for two.
	alice.do("choose a 10 s match for 2",
		chromedp.SetValue(chromedp.ID("arena-time"), "10s"),
		chromedp.SetValue(chromedp.ID("arena-max"), "2"))
	alice.click("arena-create")
	a = alice.waitState("in the new match", 10*time.Second, func(s *gameState) bool {
		_, seated := s.player(s.Me.ID)
		return s.Screen == "arena" && s.MatchID != "" && seated
	})
	matchID := a.MatchID

	// Bob's lobby lists it (it refreshes by itself; the button is quicker).
	bob.click("arena-refresh")
	bob.waitState("the match in the lobby list", 10*time.Second, func(s *gameState) bool {
		for _, id := range s.Lobby.Arena {
			if id == matchID {
				return true
			}
		}
		return false
	})
	bob.clickTestID("join-" + matchID)
	both := func(s *gameState) bool {
		_, x := s.player(a.Me.ID)
		_, y := s.player(bo.Me.ID)
		return s.Screen == "arena" && s.MatchID == matchID && x && y && s.Arena.Phase == "playing"
	}
	bo = bob.waitState("both players in the playing match", 10*time.Second, both)
	alice.waitState("both players in the playing match", 5*time.Second, both)

	// Alice holds the right arrow; Bob must see her move within a second.
	before, _ := bo.player(a.Me.ID)
	pressed := time.Now()
	alice.key(input.DispatchKeyEventTypeKeyDown, "ArrowRight", 39)
	bob.waitState("Alice's move seen by Bob", time.Second, func(s *gameState) bool {
		now, ok := s.player(a.Me.ID)
		return ok && math.Abs(now.X-before.X) > 10
	})
	t.Logf("Bob saw Alice move %v after the key press", time.Since(pressed).Round(time.Millisecond))
	time.Sleep(300*time.Millisecond - time.Since(pressed))
	alice.key(input.DispatchKeyEventTypeKeyUp, "ArrowRight", 39)
	// Alice's own prediction moved right too, and agrees with the server
	// once she stops.
	a = alice.waitState("Alice's prediction settled", 3*time.Second, func(s *gameState) bool {
		me, ok := s.player(s.Me.ID)
		return ok && s.Arena.Predicted != nil && me.X > before.X+30 && math.Abs(s.Arena.Predicted.X-me.X) < 1 && math.Abs(s.Arena.Predicted.Y-me.Y) < 1
	})
	bob.waitState("Alice at rest where she is for herself", 2*time.Second, func(s *gameState) bool {
		me, _ := a.player(a.Me.ID)
		now, ok := s.player(a.Me.ID)
		return ok && math.Abs(now.X-me.X) < 1 && math.Abs(now.Y-me.Y) < 1
	})

	// The 10 s limit ends the match: the result screen, then the stored
	// record and the leaderboard (persistence is asynchronous).
	for _, pg := range []*page{alice, bob} {
		s := pg.waitState("the stored result and the leaderboard", 25*time.Second, func(s *gameState) bool {
			return s.Screen == "result" && s.Result != nil && s.Result.Stored && len(s.Result.Leaderboard) > 0
		})
		if s.Result.MatchID != matchID || s.Result.EndReason != "time_limit" || len(s.Result.Placements) != 2 {
			t.Errorf("%s: result %+v, want match %s ended by time_limit with 2 placements", pg.name, s.Result, matchID)
		}
		found := false
		for _, r := range s.Result.Leaderboard {
			found = found || r.AccountID == s.Me.ID
		}
		if !found {
			t.Errorf("%s: the leaderboard around me %+v lacks me (%s)", pg.name, s.Result.Leaderboard, s.Me.ID)
		}
		if txt := pg.text("result-record"); !strings.Contains(txt, "Result stored") {
			t.Errorf("%s: #result-record = %q", pg.name, txt)
		}
	}
	alice.click("play-again")
	alice.waitState("back in the lobby", 5*time.Second, func(s *gameState) bool { return s.Screen == "lobby" })
}

// Tic-tac-toe played to a win through clicks by two browser contexts; one
// player reloads the page mid-game and keeps the seat.
func browserTicTacToe(t *testing.T, b *browser, srv *proc) {
	xp := b.newPage(t, "ttt-x", srv.url)
	op := b.newPage(t, "ttt-o", srv.url)
	x := xp.loginAsGuest()
	o := op.loginAsGuest()

	xp.click("tab-ttt")
	xp.click("ttt-create")
	x = xp.waitState("in a new game", 10*time.Second, func(s *gameState) bool {
		return s.Screen == "ttt" && s.TTT != nil && s.TTT.Mark == "X" && s.TTT.Status == "waiting"
	})
	op.click("tab-ttt")
	op.click("ttt-refresh")
	op.waitState("the game in the lobby list", 10*time.Second, func(s *gameState) bool {
		for _, id := range s.Lobby.Tictactoe {
			if id == x.MatchID {
				return true
			}
		}
		return false
	})
	op.clickTestID("join-" + x.MatchID)
	op.waitState("seated as O", 5*time.Second, func(s *gameState) bool {
		return s.Screen == "ttt" && s.MatchID == x.MatchID && s.TTT != nil && s.TTT.Mark == "O" && s.Me.ID == o.Me.ID
	})

	// X takes the top row while O plays the middle row's first two cells.
	moves := []struct {
		p    *page
		cell int
	}{{xp, 0}, {op, 3}, {xp, 1}, {op, 4}, {xp, 2}}
	for i, m := range moves {
		m.p.waitState(fmt.Sprintf("move %d's turn", i+1), 5*time.Second, func(s *gameState) bool {
			return s.TTT != nil && s.TTT.Status == "playing" && s.TTT.Moves == i && s.TTT.Turn == s.TTT.Mark
		})
		m.p.clickTestID(fmt.Sprintf("ttt-cell-%d", m.cell))
		if i == 1 {
			// The move must reach the server before the reload closes
			// the socket.
			want := i + 1
			xp.waitState("O's move at the server", 5*time.Second, func(s *gameState) bool {
				return s.TTT != nil && s.TTT.Moves == want
			})
			// O reloads the page mid-game: the tab's session and seat
			// survive, and the server gives the seat back.
			op.do("reload", chromedp.Reload())
			op.waitState("back in the game after a reload", 10*time.Second, func(s *gameState) bool {
				return s.Screen == "ttt" && s.MatchID == x.MatchID && s.Me.ID == o.Me.ID && s.TTT != nil && s.TTT.Mark == "O" && s.TTT.Moves == 2
			})
		}
	}
	for _, pg := range []*page{xp, op} {
		s := pg.waitState("the win", 5*time.Second, func(s *gameState) bool {
			return s.TTT != nil && s.TTT.Status == "won" && s.TTT.Closed
		})
		if s.TTT.Board != "XXXOO...." || s.TTT.Winner != x.Me.ID {
			t.Errorf("%s: board %q winner %q, want XXXOO.... won by %s", pg.name, s.TTT.Board, s.TTT.Winner, x.Me.ID)
		}
	}
	if got := xp.text("ttt-status"); got != "You won!" {
		t.Errorf("X reads %q, want You won!", got)
	}
	if got := op.text("ttt-status"); got != "You lost." {
		t.Errorf("O reads %q, want You lost.", got)
	}
}

// The admin console refuses a player and works for an administrator, who
// ends a live match and bans the player; the API confirms both.
func browserAdmin(t *testing.T, b *browser, srv *proc, dataDir string) {
	for _, u := range []string{"pat", "root"} {
		if code, body := srv.call("POST", "/v1/auth/register", "", map[string]string{"username": u, "password": u + "-password"}); code != 201 {
			t.Fatalf("register %s: %d %v", u, code, body)
		}
	}
	if out, err := exec.Command(binary, "accounts", "set-roles", "root", "player,admin", "--data-dir", dataDir).CombinedOutput(); err != nil {
		t.Fatalf("set-roles: %v\n%s", err, out)
	}
	_, pat := srv.call("POST", "/v1/auth/login", "", map[string]string{"username": "pat", "password": "pat-password"})
	code, m := srv.call("POST", "/v1/matches", str(pat, "access_token"), map[string]any{"mode": "tictactoe"})
	matchID := str(m, "match_id")
	if code != 201 || matchID == "" {
		t.Fatalf("create a match: %d %v", code, m)
	}

	p := b.newPage(t, "admin", srv.url)
	p.open("/admin/")
	p.typeInto("admin-username", "pat")
	p.typeInto("admin-password", "pat-password")
	p.click("admin-login-submit")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.text("admin-login-error"), "This account is not an administrator") {
		if time.Now().After(deadline) {
			t.Fatalf("a player's login: error %q, want the not-an-administrator message", p.text("admin-login-error"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	p.typeInto("admin-username", "root")
	p.typeInto("admin-password", "root-password")
	p.click("admin-login-submit")
	p.do("the console", chromedp.WaitVisible(chromedp.ID("admin-console")))
	var st struct {
		Screen  string   `json:"screen"`
		Matches []string `json:"matches"`
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if err := p.evalJSON(`window.__mjAdmin.state()`, &st); err != nil {
			t.Fatal(err)
		}
		// Other subtests' matches may still be running on this server.
		if st.Screen == "console" && slices.Contains(st.Matches, matchID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live matches panel: %+v, want match %s", st, matchID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, want := p.text("matches-count"), fmt.Sprintf("(%d)", len(st.Matches)); got != want {
		t.Errorf("matches count %q, want %q", got, want)
	}

	p.clickTestID("end-match-" + matchID)
	p.do("confirm", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	p.typeInto("confirm-reason", "browser test")
	p.click("confirm-ok")
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, body := srv.call("GET", "/v1/matches/"+matchID, str(pat, "access_token"), nil)
		if code == 404 || (code == 200 && body["live"] == false) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the match is still live 10 s after the console ended it: %d %v", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if err := p.evalJSON(`window.__mjAdmin.state()`, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Matches) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console still lists the ended match: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := p.text("admin-status"); got != "Match "+matchID[:8]+"… ended." {
		t.Errorf("status line %q, want the match ended", got)
	}

	// Ban the player from the accounts panel: their login is refused.
	patID := str(pat, "account_id")
	p.clickTestID("ban-" + patID)
	p.do("confirm", chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	p.typeInto("confirm-reason", "browser test")
	p.click("confirm-ok")
	p.do("the unban button", chromedp.WaitVisible(chromedp.CSS(`[data-testid="unban-`+patID+`"]`)))
	if code, body := srv.call("POST", "/v1/auth/login", "", map[string]string{"username": "pat", "password": "pat-password"}); code != 403 {
		t.Fatalf("login of the banned player: %d %v, want 403", code, body)
	}
	browserAudit(t, p)
}

// The audit panel lists the ban just made (filtered by kind) and verifies
// the hash chain.
func browserAudit(t *testing.T, p *page) {
	p.typeInto("audit-kind", "ban")
	p.clickTestID("audit-filter-submit")
	p.clickTestID("audit-verify")
	var st struct {
		Audit []struct{ Kind string } `json:"audit"`
		Chain *struct {
			OK      bool  `json:"ok"`
			Chained int64 `json:"chained"`
		} `json:"chain"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := p.evalJSON(`window.__mjAdmin.state()`, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Audit) == 1 && st.Audit[0].Kind == "ban" && st.Chain != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit panel: %+v, want the ban and a verified chain", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := p.text("audit-chain"); !st.Chain.OK || !strings.HasPrefix(got, "Chain OK: ") {
		t.Fatalf("chain verification shown as %q (%+v), want OK", got, st.Chain)
	}
}
