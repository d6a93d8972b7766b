package main_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/client"
	"github.com/multijuego/multijuego/internal/events/eventstest"
)

// TestRollingUpgrade replaces every process of a split deployment
// (persistence, two game nodes, auth, two gateways, on PostgreSQL, Redis
// and NATS) one at a time with a second build of the binary stamped with
// another version, in the runbook's order: persistence, game nodes, auth,
// gateways. Each replacement is SIGTERM, exit, the new binary started with
// the same flags, node id and address, ready. Tic-tac-toe bots play games
// to their end over both gateways while persistence, the game nodes and
// auth are replaced, and over the gateway that stays while the other is
// replaced; arena players (the test's own) watch their states throughout.
// No bot may be disconnected or see an error, no arena player's socket may
// close while a game node is replaced, and afterwards every match has
// exactly one match.ended in the stream and exactly its result in
// PostgreSQL. The arena players connected to a replaced gateway are closed
// by its drain ("going away"), reconnect to the other and resume their
// seats: counted apart. It logs each replacement's time and the longest gap
// in states during each game node's (docs/benchmarks.md, Rolling upgrade).
func TestRollingUpgrade(t *testing.T) {
	t.Parallel()
	r := &rollout{t: t, version: "v0.0.0-upgrade-test"}
	r.bin = buildStamped(t, r.version)
	nats := eventstest.StartServer(t).URL()
	d := startDeployment(t, nats, 2, 2, "--game-snapshot-every", "1", "--game-disconnect-grace", "3s", "--game-empty-timeout", "2s")
	db := openDB(t, d)

	// The arena players sit on gateway 2, one match each.
	seats := make([]*arenaSeat, 6)
	for i := range seats {
		seats[i] = sitArena(t, d.gws[1], fmt.Sprintf("upgrade-arena-%d", i))
	}
	const window = 30 * time.Second // the bots' measurement window: the back-end replacements happen in it
	load := startLoad(t, d, "tictactoe", 16, window, "--prefix", "upgrade-ttt-")
	load.waitSeated(t)
	time.Sleep(time.Second) // games under way
	r.backEnd(d, seats)
	if load.finished() {
		t.Fatal("the bots finished before persistence, the game nodes and auth were replaced: lengthen the window")
	}
	games := load.report(t).GamesCompleted // no disconnect, no error
	games += r.gateways(d, seats)
	t.Logf("replacement times (SIGTERM to exit + start to ready): %s", strings.Join(r.took, ", "))

	for _, s := range seats {
		if err := s.w.rt.Leave(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.stop()
	}
	waitSettled(t, d, db)
	checkStreamAgainstRows(t, jetStream(t, nats), db)
	checkDerived(t, db)
	if p := problems(t, db, `SELECT match_id, account_id, count(*) FROM match_results GROUP BY match_id, account_id HAVING count(*) > 1`); len(p) != 0 {
		t.Errorf("results stored twice: %q", p)
	}
	ended := count(t, db, `SELECT count(*) FROM matches WHERE ended_at IS NOT NULL`)
	withResults := count(t, db, `SELECT count(DISTINCT match_id) FROM match_results`)
	t.Logf("bots completed %d tic-tac-toe games; %d matches ended in PostgreSQL, %d with results; without, by mode and end reason: %q", games, ended, withResults,
		problems(t, db, `SELECT mode, end_reason, count(*) FROM matches m WHERE NOT EXISTS (SELECT 1 FROM match_results r WHERE r.match_id = m.id) GROUP BY 1, 2`))
	if int64(ended) < games {
		t.Errorf("%d matches ended in PostgreSQL, fewer than the %d games the bots completed", ended, games)
	}
	for _, g := range d.games {
		checkPublisher(t, g)
		if n := metric(t, g, "multijuego_router_matches_lost_total"); n != 0 {
			t.Errorf("%s recorded %v matches as lost", g.url, n)
		}
	}
}

// rollout replaces processes with the binary bin, noting the times.
type rollout struct {
	t       *testing.T
	bin     string
	version string   // bin's version stamp
	took    []string // per process: drain + start
}

// replace replaces p (named what) with the new binary; between runs once
// p exited.
func (r *rollout) replace(p *proc, what string, between func()) *proc {
	r.t.Helper()
	n, drain, ready := replaceProc(r.t, p, r.bin, between)
	if !strings.HasPrefix(n.version, r.version) {
		r.t.Fatalf("%s: the replacement runs version %q, want %s", what, n.version, r.version)
	}
	r.took = append(r.took, fmt.Sprintf("%s %s+%s", what, drain.Round(time.Millisecond), ready.Round(time.Millisecond)))
	return n
}

// backEnd replaces persistence, each game node and auth. Every game node
// must hand all its matches over, and no arena player may go a second
// without a state or lose its socket.
func (r *rollout) backEnd(d *deployment, seats []*arenaSeat) {
	t := r.t
	t.Helper()
	nothing := func() {}
	d.persist = r.replace(d.persist, "persistence", nothing)
	for i := range d.games {
		began, old := time.Now(), d.games[i]
		d.games[i] = r.replace(old, gameID(i), nothing)
		waitRegistered(t, d.games[i])
		moved, of, failures := drained(t, old)
		if len(failures) != 0 {
			t.Fatalf("%s handed %d of its %d matches over; not: %q", gameID(i), moved, of, failures)
		}
		time.Sleep(time.Second) // states after the move
		var worst time.Duration
		for _, s := range seats {
			worst = max(worst, s.w.longestGap(began, time.Now()))
		}
		t.Logf("%s replaced: %d matches handed over; longest gap in an arena player's states %s", gameID(i), moved, worst.Round(time.Millisecond))
		if worst > time.Second {
			t.Errorf("%s replaced: an arena player saw no state for %s", gameID(i), worst)
		}
	}
	d.auth = r.replace(d.auth, "auth", nothing)
	for i, s := range seats {
		if s.closed() {
			t.Fatalf("arena player %d's socket closed while the back end was replaced: %v", i, s.w.rt.Err())
		}
	}
}

// gateways replaces each gateway while bots play on both (--reconnect):
// those on the replaced one are closed by its drain and resume their
// matches through the other. So are the arena players, on gateway 2
// ("going away"), reconnected to gateway 1. It returns the games the bots
// completed.
func (r *rollout) gateways(d *deployment, seats []*arenaSeat) (games int64) {
	t := r.t
	t.Helper()
	for i := range d.gws {
		other := d.gws[1-i]
		load := startLoad(t, d, "tictactoe", 8, 10*time.Second, "--reconnect", "--prefix", fmt.Sprintf("upgrade-gw%d-", i+1))
		load.waitSeated(t)
		replaced := time.Now()
		var closed int
		var back []time.Duration
		d.gws[i] = r.replace(d.gws[i], fmt.Sprintf("gw%d", i+1), func() {
			for j, s := range seats {
				if !s.closed() {
					continue
				}
				if code := s.w.rt.CloseCode(); code != 1001 {
					t.Errorf("arena player %d: closed with %d (%v), want 1001 going away", j, code, s.w.rt.Err())
				}
				closed++
				back = append(back, s.reconnect(t, other).Sub(replaced))
			}
		})
		want := 0
		if i == 1 {
			want = len(seats) // they sit on gw2
		}
		if closed != want {
			t.Errorf("gw%d replaced: %d of the arena players' sockets closed, want %d", i+1, closed, want)
		}
		if len(back) > 0 {
			t.Logf("gw%d replaced: %d arena players closed by its drain, states again on gw%d within %s (from SIGTERM)", i+1, closed, 2-i, slices.Max(back).Round(time.Millisecond))
		}
		rep := load.report(t) // every bot closed by the drain back, no error
		if rep.Reconnects < 4 {
			t.Errorf("gw%d replaced: %d bots reconnected, want the 4 of the 8 that played through it", i+1, rep.Reconnects)
		}
		t.Logf("gw%d replaced: %d bots resumed their matches through gw%d", i+1, rep.Reconnects, 2-i)
		games += rep.GamesCompleted
	}
	return games
}

// buildStamped builds the binary a second time with version stamped in the
// way scripts/release.sh does.
func buildStamped(t *testing.T, version string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "multijuego")
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/multijuego/multijuego/internal/app.Version="+version, "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	old, _ := exec.Command(binary, "version").Output()
	stamped, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.Contains(string(stamped), version) || string(stamped) == string(old) {
		t.Fatalf("multijuego version: %q (%v), the test's build %q", stamped, err, old)
	}
	return bin
}

// replaceProc stops p with SIGTERM and starts bin in its place with the
// same arguments and address, as a rollout does; between runs once the old
// process has exited, before the new one starts. It returns the new
// process, ready, and the times from SIGTERM to exit and from the new
// start to ready.
func replaceProc(t *testing.T, p *proc, bin string, between func()) (n *proc, drain, ready time.Duration) {
	t.Helper()
	began := time.Now()
	if code := p.stop(); code != 0 {
		t.Fatalf("%s exit %d\n%s", p.url, code, p.log())
	}
	drain = time.Since(began)
	between()
	began = time.Now()
	n = startBinary(t, bin, append(slices.Clone(p.args), "--listen", strings.TrimPrefix(p.url, "http://"))...)
	waitReady(t, n)
	return n, drain, time.Since(began)
}

// arenaSeat is an arena player alone in its match, watching its states.
type arenaSeat struct {
	c      *client.Client
	resume string
	w      *watcher
	read   sync.WaitGroup // w.run
}

func sitArena(t *testing.T, gw *proc, device string) *arenaSeat {
	t.Helper()
	c, rt, _ := player(t, gw, device)
	m, err := rt.CreateMatch(context.Background(), "arena", map[string]string{"time_limit": "1h"}) // outlasts the test
	if err != nil {
		t.Fatal(err)
	}
	resume, err := rt.Join(context.Background(), m.MatchID)
	if err != nil {
		t.Fatal(err)
	}
	s := &arenaSeat{c: c, resume: resume, w: &watcher{rt: rt, matchID: m.MatchID}}
	s.watch()
	t.Cleanup(s.stop)
	return s
}

func (s *arenaSeat) watch() {
	s.read.Add(1)
	go func() { defer s.read.Done(); s.w.run() }()
}

// closed says whether the seat's socket has ended.
func (s *arenaSeat) closed() bool {
	select {
	case <-s.w.rt.Done():
		return true
	default:
		return false
	}
}

// reconnect opens a socket on gw with the seat's tokens, resumes the seat
// and returns when the first state arrived after the resume.
func (s *arenaSeat) reconnect(t *testing.T, gw *proc) time.Time {
	t.Helper()
	s.read.Wait()
	c, err := client.New(gw.url, client.WithTokens(s.c.Tokens()))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := rt.Resume(context.Background(), s.resume); err != nil || id != s.w.matchID {
		t.Fatalf("resume on %s: %q %v", gw.url, id, err)
	}
	resumed := time.Now()
	s.c, s.w.rt = c, rt
	s.watch()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if at := s.w.firstAfter(resumed); !at.IsZero() {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state within 5s of resuming on %s", gw.url)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop closes the seat's socket and waits for its reader.
func (s *arenaSeat) stop() {
	_ = s.w.rt.Close()
	s.read.Wait()
}
