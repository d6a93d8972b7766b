package main_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
)

// The events streams as the bus names them without a prefix
// (docs/events.md).
const (
	eventsStream = "MJ_EVENTS"
	dlqStream    = "MJ_DLQ"
)

// TestClusterFaults runs every role as its own process (two gateways, three
// game nodes, auth, persistence) on PostgreSQL, Redis and a three-node NATS
// cluster with three replicas of the event streams. Bots play arena and
// tic-tac-toe over both gateways, on all three game nodes, while the test
// kills (-9) the game node hosting the most arena matches, restarts every
// game node in turn (SIGTERM, then the same node id again), and kills then
// restarts the NATS node leading the events stream. The bots must see no
// disconnect and no error; afterwards every match has ended, the stream
// holds one match.ended per match and PostgreSQL exactly its results, no
// event went to the dead letters, and player stats and leaderboards equal a
// recomputation from the stored results.
//
// Not parallel: beside this package's other multi-process tests, on a
// 2-core CI machine under -race, Redis and control-request deadlines of
// the nodes were missed while the NATS node restarted (tic-tac-toe moves
// answered "timeout"); alone, the faults are what the test measures.
func TestClusterFaults(t *testing.T) {
	cluster := eventstest.StartCluster(t, 3)
	shared := append(sharedFlags(t, cluster.URLs()), "--events-replicas", "3")
	// A tic-tac-toe leader that opens its next game as the run ends may
	// leave a match nobody joins: it ends as empty after 5 s.
	d := deploy(t, shared, 3, 2, "--game-snapshot-every", "1", "--game-disconnect-grace", "2s", "--game-empty-timeout", "5s")
	db := openDB(t, d)
	js := jetStream(t, cluster.URLs())
	if s := streamInfo(t, js, eventsStream); s.Config.Replicas != 3 {
		t.Fatalf("events stream replicas: %d, want 3", s.Config.Replicas)
	}

	const window = 20 * time.Second // the bots' measurement window: every fault happens in it
	arena := startLoad(t, d, "arena", 32, window, "--tick-rate", "10")
	ttt := startLoad(t, d, "tictactoe", 8, window)
	arena.waitSeated(t)
	ttt.waitSeated(t)
	waitSpread(t, d, db, 32/8)

	crashGameNode(t, d, db)
	waitPlay(t, db, "the kill of a game node")
	rollingRestart(t, d)
	waitPlay(t, db, "the rolling restart")
	natsNodeFault(t, cluster, js)
	waitPlay(t, db, "the NATS node's restart")
	for _, l := range []*loadRun{arena, ttt} {
		if l.finished() {
			t.Fatalf("the %s bots finished before the faults were over: lengthen the window", l.mode)
		}
	}

	rep := arena.report(t)
	if rep.PlayersInMatches != 32 || rep.DeliveryRatio < 0.9 {
		t.Errorf("arena bots: %d of 32 players in matches at the end, delivery ratio %.3f (want at least 0.9)", rep.PlayersInMatches, rep.DeliveryRatio)
	}
	rep = ttt.report(t)
	if rep.PlayersInMatches != 8 || rep.GamesCompleted == 0 {
		t.Errorf("tic-tac-toe bots: %d of 8 players in matches at the end, %d games completed", rep.PlayersInMatches, rep.GamesCompleted)
	}

	waitSettled(t, d, db)
	checkStreamAgainstRows(t, js, db)
	checkDerived(t, db)
	for _, g := range d.games {
		checkPublisher(t, g)
	}
}

// --- the load ---------------------------------------------------------------------

// loadRun is `multijuego bots` running in the background over both
// gateways, with accounts of its own. It reads no game node's metrics: a
// restarted node listens on another port.
type loadRun struct {
	mode      string
	reconnect bool // --reconnect: a disconnect is no failure if the player came back
	cmd       *exec.Cmd
	stdout    bytes.Buffer
	mu        sync.Mutex
	stderr    bytes.Buffer  // its progress lines
	seated    chan string   // the line saying how many players sat down
	done      chan struct{} // closed once it exited
	err       error         // its exit, once done is closed
}

// loadReport is the part of the bots' JSON report the test reads.
type loadReport struct {
	Players          int      `json:"players"`
	PlayersInMatches int      `json:"players_in_matches"`
	Matches          int      `json:"matches"`
	DeliveryRatio    float64  `json:"delivery_ratio"`
	GamesCompleted   int64    `json:"games_completed"`
	Disconnects      int64    `json:"disconnects"`
	Reconnects       int64    `json:"reconnects"`
	Errors           int64    `json:"errors"`
	ErrorSamples     []string `json:"error_samples"`
}

func startLoad(t *testing.T, d *deployment, mode string, players int, window time.Duration, extra ...string) *loadRun {
	t.Helper()
	l := &loadRun{mode: mode, reconnect: slices.Contains(extra, "--reconnect"), seated: make(chan string, 1), done: make(chan struct{})}
	args := append([]string{"bots", "--url", d.gws[0].url + "," + d.gws[1].url, "--mode", mode,
		"--players", fmt.Sprint(players), "--prefix", "cluster-" + mode + "-", "--warmup", "1s", "--duration", window.String(),
		"--metrics-url", "-", "--json"}, extra...)
	l.cmd = exec.Command(binary, args...)
	l.cmd.Stdout = &l.stdout
	stderr, err := l.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l.mu.Lock()
			fmt.Fprintln(&l.stderr, sc.Text())
			l.mu.Unlock()
			if strings.Contains(sc.Text(), " players seated in ") {
				l.seated <- sc.Text()
			}
		}
		l.err = l.cmd.Wait()
		close(l.done)
	}()
	t.Cleanup(func() {
		if !l.finished() {
			_ = l.cmd.Process.Kill()
			<-l.done
		}
	})
	return l
}

func (l *loadRun) progress() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stderr.String()
}

func (l *loadRun) finished() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// waitSeated waits until every player of the run sits in a match.
func (l *loadRun) waitSeated(t *testing.T) {
	t.Helper()
	select {
	case line := <-l.seated:
		var seated, players, matches int
		if _, err := fmt.Sscanf(line, "bots: %d/%d players seated in %d matches", &seated, &players, &matches); err != nil || seated != players {
			t.Fatalf("%s bots: %q (%v)\n%s", l.mode, line, err, l.progress())
		}
	case <-l.done:
		t.Fatalf("%s bots exited before seating their players: %v\n%s", l.mode, l.err, l.progress())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s bots: players not seated within 60s\n%s", l.mode, l.progress())
	}
}

// report waits for the run to end and checks that no player was
// disconnected and none saw an error.
func (l *loadRun) report(t *testing.T) loadReport {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s bots did not end\n%s", l.mode, l.progress())
	}
	if l.err != nil {
		t.Fatalf("%s bots: %v\n%s", l.mode, l.err, l.progress())
	}
	var rep loadReport
	lines := strings.Split(strings.TrimSpace(l.stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("%s bots report: %v\n%s", l.mode, err, l.stdout.String())
	}
	t.Logf("%s bots: %s", l.mode, lines[len(lines)-1])
	if (rep.Disconnects != 0 && !l.reconnect) || rep.Disconnects != rep.Reconnects || rep.Errors != 0 {
		t.Errorf("%s bots: %d disconnects (%d players back), %d errors %q\n%s", l.mode, rep.Disconnects, rep.Reconnects, rep.Errors, rep.ErrorSamples, l.progress())
	}
	return rep
}

// waitSpread waits until every game node hosts matches and PostgreSQL has
// every arena match as started.
func waitSpread(t *testing.T, d *deployment, db *sql.DB, arenas int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < len(d.games); {
		if metric(t, d.games[i], "multijuego_matches_live") >= 1 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("game node %d hosts no match", i+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for count(t, db, `SELECT count(*) FROM matches WHERE mode = 'arena' AND ended_at IS NULL`) != arenas {
		if time.Now().After(deadline) {
			t.Fatalf("%d arena matches stored as started, want %d", count(t, db, `SELECT count(*) FROM matches WHERE mode = 'arena'`), arenas)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- the faults ----------------------------------------------------------------------

// restart starts a stopped process again with the same arguments (node id
// and data directory) and waits until it is ready.
func (p *proc) restart() *proc {
	p.t.Helper()
	n := start(p.t, p.args...)
	waitReady(p.t, n)
	return n
}

// crashGameNode kills (-9) the game node that started the most arena
// matches (still running), waits until the other nodes have taken at least
// that many matches over, and starts it again.
func crashGameNode(t *testing.T, d *deployment, db *sql.DB) {
	t.Helper()
	victim, arenas := -1, 0
	for i := range d.games {
		n := count(t, db, `SELECT count(*) FROM matches WHERE mode = 'arena' AND ended_at IS NULL AND node = $1`, gameID(i))
		if n > arenas {
			victim, arenas = i, n
		}
	}
	if victim < 0 {
		t.Fatal("no running arena match in the database")
	}
	_ = d.games[victim].cmd.Process.Kill()
	<-d.games[victim].done
	killed := time.Now()
	deadline := killed.Add(15 * time.Second)
	for {
		var recovered float64
		for i, g := range d.games {
			if i != victim {
				recovered += metric(t, g, "multijuego_router_matches_recovered_total")
			}
		}
		if recovered >= float64(arenas) {
			t.Logf("%s kill -9 of %s: %v matches (%d arena) taken over in %s", stamp(killed), gameID(victim), recovered, arenas, time.Since(killed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v matches taken over after the kill of %s, want at least its %d arena matches", recovered, gameID(victim), arenas)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, g := range d.games {
		if i != victim {
			if n := metric(t, g, "multijuego_router_matches_lost_total"); n != 0 {
				t.Fatalf("%s recorded %v matches as lost", gameID(i), n)
			}
		}
	}
	d.games[victim] = d.games[victim].restart()
	waitRegistered(t, d.games[victim])
}

// rollingRestart stops every game node in turn with SIGTERM (it hands
// every match over) and starts it again under its node id.
func rollingRestart(t *testing.T, d *deployment) {
	t.Helper()
	for i, g := range d.games {
		checkPublisher(t, g)
		began := time.Now()
		if code := g.stop(); code != 0 {
			t.Fatalf("%s exit %d\n%s", gameID(i), code, g.log())
		}
		moved, of, failures := drained(t, g)
		if len(failures) != 0 {
			t.Fatalf("%s handed %d of its %d matches over; not: %q", gameID(i), moved, of, failures)
		}
		d.games[i] = g.restart()
		waitRegistered(t, d.games[i])
		t.Logf("%s rolling restart of %s: %d matches handed over, back in %s", stamp(began), gameID(i), moved, time.Since(began).Round(time.Millisecond))
	}
}

// drained reads the stopped game node's log: how many matches it handed
// over, of how many, and why the others were not (a match that ended
// meanwhile was not to be handed over).
func drained(t *testing.T, p *proc) (moved, of int, failures []string) {
	t.Helper()
	found := false
	for _, line := range strings.Split(p.log(), "\n") {
		var l struct {
			Msg, Match, Err string
			Moved, Of       int
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		switch {
		case l.Msg == "router: drained":
			moved, of, found = l.Moved, l.Of, true
		case l.Msg == "router: match not handed over; it ends here" && !strings.Contains(l.Err, "no such match"):
			failures = append(failures, l.Match+": "+l.Err)
		}
	}
	if !found {
		t.Fatalf("no drain in the log\n%s", p.log())
	}
	return moved, of, failures
}

// natsNodeFault kills the NATS node leading the events stream, lets play
// go on without it for two seconds, and restarts it.
func natsNodeFault(t *testing.T, c *eventstest.Cluster, js jetstream.JetStream) {
	t.Helper()
	leader := c.Index(streamInfo(t, js, eventsStream).Cluster.Leader)
	if leader < 0 {
		t.Fatal("the events stream has no leader")
	}
	killed := time.Now()
	c.Kill(leader)
	time.Sleep(2 * time.Second)
	c.Restart(leader)
	t.Logf("%s NATS node %s (the events stream leader) killed, back in %s", stamp(killed), c.Name(leader), time.Since(killed).Round(time.Millisecond))
}

// waitPlay waits until a match ends and its result is stored: games go
// on and results reach PostgreSQL after the fault named after.
func waitPlay(t *testing.T, db *sql.DB, after string) {
	t.Helper()
	const ends = `SELECT count(*) FROM matches WHERE ended_at IS NOT NULL`
	before := count(t, db, ends)
	deadline := time.Now().Add(15 * time.Second)
	for count(t, db, ends) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no match result stored in the 15s after %s", after)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// --- the checks ---------------------------------------------------------------------

// stamp is a time as the servers' logs show it, to read a failure beside
// them.
func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// gameID is game node i's node id, as deploy names them.
func gameID(i int) string { return fmt.Sprintf("game%d", i+1) }

// checkPublisher: a running game node has dropped no event.
func checkPublisher(t *testing.T, g *proc) {
	t.Helper()
	if n := metric(t, g, "multijuego_events_dropped_total"); n != 0 {
		t.Errorf("%s dropped %v events", g.url, n)
	}
}

// waitSettled waits until no match runs on any game node, persistence has
// written every event, and no match is stored as started only.
func waitSettled(t *testing.T, d *deployment, db *sql.DB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		live, queued := 0.0, 0.0
		for _, g := range d.games {
			live += metric(t, g, "multijuego_matches_live")
			queued += metric(t, g, "multijuego_events_buffered")
		}
		lag := metric(t, d.persist, "multijuego_persist_lag")
		open := count(t, db, `SELECT count(*) FROM matches WHERE ended_at IS NULL`)
		if live == 0 && queued == 0 && lag == 0 && open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("20s after the bots: %v matches live, %v events buffered on game nodes, persistence lag %v, %d matches stored as started only: %q",
				live, queued, lag, open, problems(t, db, `SELECT id, mode, node, started_at FROM matches WHERE ended_at IS NULL`))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func openDB(t *testing.T, d *deployment) *sql.DB {
	t.Helper()
	i := slices.Index(d.shared, "--database-url")
	if i < 0 {
		t.Fatal("no --database-url")
	}
	db, err := sql.Open("pgx", d.shared[i+1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// count runs a query of one integer.
func count(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return n
}

// problems runs a query whose every row is a problem and returns them,
// each as its columns separated by spaces.
func problems(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(cells, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func jetStream(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := js.Stream(ctx, name)
		cancel()
		if err == nil {
			return s.CachedInfo()
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// storedResult is one player's stored result.
type storedResult struct {
	Account   string
	Placement int
	Score     int64
}

// checkStreamAgainstRows reads the whole events stream: every match has
// exactly one match.ended event; the matches table holds exactly the
// stream's matches, every one ended with the event's reason and results;
// persistence applied each end once; nothing was dead-lettered.
func checkStreamAgainstRows(t *testing.T, js jetstream.JetStream, db *sql.DB) {
	t.Helper()
	if n := streamInfo(t, js, dlqStream).State.Msgs; n != 0 {
		t.Errorf("%d dead letters", n)
	}
	started, ended := readStream(t, js)
	for id := range started {
		if len(ended[id]) != 1 {
			t.Errorf("match %s: %d match.ended events, want 1", id, len(ended[id]))
		}
	}
	stored := map[string]string{} // id -> end reason
	for _, r := range problems(t, db, `SELECT id, coalesce(end_reason, '') FROM matches`) {
		id, reason, _ := strings.Cut(r, " ")
		stored[id] = reason
	}
	if len(stored) != len(started) || len(ended) != len(started) {
		t.Errorf("%d matches stored, %d started and %d ended in the stream", len(stored), len(started), len(ended))
	}
	results := storedResults(t, db)
	for id, evs := range ended {
		if len(evs) == 0 {
			continue
		}
		e := evs[0]
		var want []storedResult
		for _, r := range e.Results {
			want = append(want, storedResult{r.AccountID, r.Placement, r.Score})
		}
		slices.SortFunc(want, func(a, b storedResult) int { return strings.Compare(a.Account, b.Account) })
		if stored[id] != e.Reason || !reflect.DeepEqual(results[id], want) {
			t.Errorf("match %s: stored %q %v, the event says %q %v", id, stored[id], results[id], e.Reason, want)
		}
		delete(results, id)
	}
	if len(results) != 0 {
		t.Errorf("results of %d matches without a match.ended event", len(results))
	}
	if p := problems(t, db, `SELECT match_id, count(*) FROM processed_events WHERE type = 'match_ended'
		GROUP BY match_id HAVING count(*) <> 1`); len(p) != 0 {
		t.Errorf("matches whose end was applied more than once: %q", p)
	}
	// A match ends because of its game, never because a node went away.
	if p := problems(t, db, `SELECT id, mode, node, end_reason FROM matches
		WHERE end_reason IN ('shutdown', 'node_lost', 'restore_failed')`); len(p) != 0 {
		t.Errorf("matches ended by a node's fault: %q", p)
	}
	t.Logf("%d matches, every one ended once, in the stream and in PostgreSQL", len(ended))
}

// readStream returns every match of the events stream with its match.ended
// payloads (one per event id: the stream drops repeats of an id). JetStream
// may not answer for a moment after a node's restart: it tries again for
// up to 20s.
func readStream(t *testing.T, js jetstream.JetStream) (started map[string]bool, ended map[string][]events.MatchEnded) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		started, ended, err := readStreamOnce(js)
		if err == nil {
			return started, ended
		}
		if time.Now().After(deadline) {
			t.Fatalf("read the events stream: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readStreamOnce(js jetstream.JetStream) (started map[string]bool, ended map[string][]events.MatchEnded, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, eventsStream)
	if err != nil {
		return nil, nil, err
	}
	total := s.CachedInfo().State.Msgs
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, nil, err
	}
	started, ended = map[string]bool{}, map[string][]events.MatchEnded{}
	for got := uint64(0); got < total; {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, nil, err
		}
		n := got
		for m := range batch.Messages() {
			got++
			ev, err := events.Decode(m.Data())
			if err != nil {
				return nil, nil, fmt.Errorf("stream message %d: %w", got, err)
			}
			started[ev.MatchID] = true
			if ev.Type == events.TypeMatchEnded {
				e, err := events.DecodeData[events.MatchEnded](ev)
				if err != nil {
					return nil, nil, err
				}
				ended[ev.MatchID] = append(ended[ev.MatchID], e)
			}
		}
		if got == n {
			return nil, nil, fmt.Errorf("read %d of the stream's %d events: %w", got, total, batch.Error())
		}
	}
	return started, ended, nil
}

func storedResults(t *testing.T, db *sql.DB) map[string][]storedResult {
	t.Helper()
	rows, err := db.Query(`SELECT match_id, account_id, placement, score FROM match_results ORDER BY match_id, account_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]storedResult{}
	for rows.Next() {
		var id string
		var r storedResult
		if err := rows.Scan(&id, &r.Account, &r.Placement, &r.Score); err != nil {
			t.Fatal(err)
		}
		out[id] = append(out[id], r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Recomputations of the derived tables from matches and match_results
// (see store.ApplyChanges): player_stats per mode and over all modes (mode "");
// leaderboard records per board, period and account. Ratings depend on the
// order ends were applied in, so only their zero sum is checked.
const (
	recomputedStats = `WITH r AS (
		SELECT r.account_id, m.mode, r.placement, r.score FROM match_results r JOIN matches m ON m.id = r.match_id
		WHERE m.ended_at IS NOT NULL)
	SELECT account_id, mode, count(*) AS games, count(*) FILTER (WHERE placement = 1) AS wins, sum(score)::bigint AS score_sum
		FROM r GROUP BY account_id, mode
	UNION ALL
	SELECT account_id, '', count(*), count(*) FILTER (WHERE placement = 1), sum(score)::bigint FROM r GROUP BY account_id`
	storedStats       = `SELECT account_id, mode, games, wins, score_sum FROM player_stats`
	recomputedRecords = `WITH v AS (
		SELECT b.id AS board_id, b.operator, r.account_id,
			CASE b.reset WHEN 'daily' THEN date_trunc('day', m.ended_at, 'UTC')
				WHEN 'weekly' THEN date_trunc('week', m.ended_at, 'UTC')
				ELSE timestamptz 'epoch' END AS period_start,
			CASE b.metric WHEN 'wins' THEN CASE WHEN r.placement = 1 THEN 1 ELSE 0 END ELSE r.score END AS value
		FROM match_results r JOIN matches m ON m.id = r.match_id JOIN leaderboards b ON b.mode IN ('', m.mode)
		WHERE m.ended_at IS NOT NULL)
	SELECT board_id, period_start, account_id,
		(CASE min(operator) WHEN 'best' THEN max(value) ELSE sum(value) END)::bigint AS value
	FROM v GROUP BY board_id, period_start, account_id`
	storedRecords = `SELECT board_id, period_start, account_id, value FROM leaderboard_records`
)

// checkDerived compares player_stats and leaderboard_records with their
// recomputation, both ways.
func checkDerived(t *testing.T, db *sql.DB) {
	t.Helper()
	if p := problems(t, db, `SELECT id, operator FROM leaderboards WHERE operator NOT IN ('best', 'sum')`); len(p) != 0 {
		t.Fatalf("boards this test does not recompute: %q", p)
	}
	for _, c := range []struct{ what, want, have string }{
		{"player_stats", recomputedStats, storedStats},
		{"leaderboard_records", recomputedRecords, storedRecords},
	} {
		if p := problems(t, db, `(`+c.want+`) EXCEPT (`+c.have+`)`); len(p) != 0 {
			t.Errorf("%s: %d recomputed rows missing or different, e.g. %q", c.what, len(p), p[:min(len(p), 5)])
		}
		if p := problems(t, db, `(`+c.have+`) EXCEPT (`+c.want+`)`); len(p) != 0 {
			t.Errorf("%s: %d rows not in the recomputation, e.g. %q", c.what, len(p), p[:min(len(p), 5)])
		}
	}
	if p := problems(t, db, `SELECT mode, sum(rating - 1500) FROM player_stats GROUP BY mode HAVING abs(sum(rating - 1500)) > 1e-6`); len(p) != 0 {
		t.Errorf("ratings moved by a non-zero sum: %q", p)
	}
	players, records := count(t, db, `SELECT count(*) FROM player_stats`), count(t, db, `SELECT count(*) FROM leaderboard_records`)
	if players == 0 || records == 0 {
		t.Errorf("nothing derived: %d player stats, %d leaderboard records", players, records)
	}
}
