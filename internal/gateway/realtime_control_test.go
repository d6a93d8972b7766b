package gateway_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/match"
)

// Control messages and closes are carried out off the socket readers: a
// control operation stalled on a match or on the key-value store delays
// nobody else's inputs, and its own socket gets an answer at the deadline.

// stallMode is a game whose JoinAttempt, for a player whose meta has
// "stall", blocks its match goroutine until release is closed.
const stallMode = "stall"

type stallGame struct {
	entered chan<- struct{} // told when a stalled JoinAttempt begins
	release <-chan struct{}
}

func (g *stallGame) Init(*match.Dispatcher, match.Params) (match.Settings, error) {
	return match.Settings{TickRate: 10, MaxPlayers: 8}, nil
}

func (g *stallGame) JoinAttempt(_ *match.Dispatcher, _ match.Presence, meta map[string]string) error {
	if meta["stall"] != "" {
		g.entered <- struct{}{}
		<-g.release
	}
	return nil
}

func (g *stallGame) Join(*match.Dispatcher, match.Presence)                {}
func (g *stallGame) Leave(*match.Dispatcher, match.Presence, match.Reason) {}
func (g *stallGame) Loop(*match.Dispatcher, []match.Input)                 {}
func (g *stallGame) Terminate(d *match.Dispatcher, _ time.Duration)        { _ = d.End(match.Results{}) }

// stallEnv is a gateway with a short control timeout and the stall mode.
type stallEnv struct {
	*env
	engine  *match.Engine
	entered chan struct{}
	release chan struct{}
}

func newStallEnv(t *testing.T, timeout time.Duration, mutate ...func(*gateway.Config)) *stallEnv {
	t.Helper()
	se := &stallEnv{entered: make(chan struct{}, 16), release: make(chan struct{})}
	se.env = newEnvWith(t, func(d *gateway.Deps) {
		se.engine = d.Matches.(*match.Engine)
		if err := se.engine.Register(stallMode, func() match.Handler { return &stallGame{entered: se.entered, release: se.release} }); err != nil {
			t.Fatal(err)
		}
	}, func(c *gateway.Config, _ *auth.Config) {
		c.ControlTimeout = timeout
		for _, m := range mutate {
			m(c)
		}
	})
	// Before the engine shuts down (cleanups run last first).
	t.Cleanup(se.unstall)
	return se
}

// unstall lets every stalled JoinAttempt return.
func (se *stallEnv) unstall() {
	select {
	case <-se.release:
	default:
		close(se.release)
	}
}

// create makes a match over the socket s and returns its id.
func (se *stallEnv) create(s *sock, mode string, params map[string]string) string {
	se.t.Helper()
	s.sendJSON("match.create", "create", map[string]any{"mode": mode, "params": params})
	return s.expect("match.created").Payload["match_id"].(string)
}

// arenaPlayers seats n new sockets in a new arena match.
func (se *stallEnv) arenaPlayers(n int) []*sock {
	se.t.Helper()
	var out []*sock
	for i := range n {
		s, _ := se.connect(fmt.Sprintf("player%d", i))
		out = append(out, s)
	}
	id := se.create(out[0], arena.Mode, map[string]string{"tick_rate": "20"})
	for _, s := range out {
		s.sendJSON("match.join", "", map[string]any{"match_id": id})
		s.expect("match.joined")
	}
	return out
}

// arenaTick is the tick period of the matches arenaPlayers makes.
const arenaTick = 50 * time.Millisecond

// tickBound is the slowest acceptable input round trip: a few ticks, far
// below the stalls the tests hold (seconds).
const tickBound = 10 * arenaTick

// roundTrips has every player send an input and wait until a state frame
// shows it applied, rounds times; it returns the slowest round. Each
// player's seqs are its own (index i: i<<24 + n), so a state's LastSeq
// names whose input it acknowledges.
func roundTrips(t *testing.T, players []*sock, seq *uint32, rounds int) time.Duration {
	t.Helper()
	var worst time.Duration
	for range rounds {
		*seq++
		start := time.Now()
		for i, p := range players {
			in := binary.LittleEndian.AppendUint16(nil, uint16(arena.OpInput))
			in = arena.AppendInput(in, arena.Input{Seq: uint32(i)<<24 + *seq, DX: 1})
			if err := wsutil.WriteClientBinary(p, in); err != nil {
				t.Fatal(err)
			}
		}
		for i, p := range players {
			waitAck(t, p, uint32(i)<<24+*seq)
		}
		worst = max(worst, time.Since(start))
	}
	return worst
}

// roundTripsFor runs rounds of roundTrips for d and returns the slowest.
func roundTripsFor(t *testing.T, players []*sock, seq *uint32, d time.Duration) time.Duration {
	t.Helper()
	var worst time.Duration
	for start := time.Now(); time.Since(start) < d; {
		worst = max(worst, roundTrips(t, players, seq, 1))
	}
	return worst
}

// waitAck reads p's frames until a state acknowledges the input want.
func waitAck(t *testing.T, p *sock, want uint32) {
	t.Helper()
	var st arena.State
	for {
		env, bin, err := p.next()
		switch {
		case err != nil:
			t.Fatalf("waiting for the ack of input %d: %v", want, err)
		case bin == nil:
			t.Fatalf("waiting for the ack of input %d: got %s %v", want, env.Type, env.Payload)
		case binary.LittleEndian.Uint16(bin[1:]) != uint16(arena.OpState):
			continue
		}
		if err := arena.DecodeState(bin[12+int(bin[11]):], &st); err != nil {
			t.Fatal(err)
		}
		for _, ps := range st.Players {
			if ps.LastSeq == want {
				return
			}
		}
	}
}

// expectError reads s until an error envelope and checks its code and cid.
func expectError(t *testing.T, s *sock, code, cid string) {
	t.Helper()
	got := s.expect("error")
	if got.Payload["code"] != code || got.CID != cid {
		t.Fatalf("error %q (cid %q) %v, want code %s, cid %q", got.Payload["code"], got.CID, got.Payload, code, cid)
	}
}

// waitSeats waits until match id's seats pass ok.
func (se *stallEnv) waitSeats(id string, ok func(match.Info) bool) {
	se.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, found := se.engine.Get(id)
		if found && ok(info) {
			return
		}
		if time.Now().After(deadline) {
			se.t.Fatalf("seats of match %s: %+v", id, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A join held by its match (a JoinAttempt that blocks): the other players'
// inputs come back as fast as before, on whatever reader they share with
// the stalled socket; the stalled socket gets a timeout error at the
// deadline; and when the join lands after all, the seat is freed after the
// disconnect grace.
func TestRealtimeStalledJoin(t *testing.T) {
	testDisconnectGrace = 300 * time.Millisecond
	defer func() { testDisconnectGrace = 0 }()
	const timeout = 2 * time.Second
	se := newStallEnv(t, timeout)
	// Three players and the staller: with wsnet's few readers (one per
	// core, sockets dealt in turn) at least one player shares its reader.
	players := se.arenaPlayers(3)
	x, _ := se.connect("staller")
	stalled := se.create(x, stallMode, nil)
	var seq uint32
	before := roundTrips(t, players, &seq, 20)

	sent := time.Now()
	x.sendJSON("match.join", "j", map[string]any{"match_id": stalled, "meta": map[string]string{"stall": "1"}})
	<-se.entered
	during := roundTripsFor(t, players, &seq, timeout-4*arenaTick)
	if during > tickBound {
		t.Errorf("slowest input round trip during the stall %s (before it %s), want under %s", during, before, tickBound)
	}
	t.Logf("slowest input round trip: %s before the stall, %s during it", before, during)

	expectError(t, x, "timeout", "j")
	if took := time.Since(sent); took < timeout || took > timeout+time.Second {
		t.Errorf("the stalled join was answered after %s, want the deadline, %s", took, timeout)
	}
	// The join lands now; the Disconnect queued behind it makes the seat a
	// dropped one, freed after the grace period, which the socket is told.
	se.unstall()
	se.waitSeats(stalled, func(i match.Info) bool { return i.Players == 0 })
	if got := x.expect("match.closed"); got.Payload["match_id"] != stalled || got.Payload["reason"] != "disconnected" {
		t.Fatalf("after the grace: %+v", got)
	}
	// The socket is usable again.
	x.sendJSON("match.list", "l", map[string]any{})
	if got := x.expect("match.list"); got.CID != "l" {
		t.Fatalf("list = %+v", got)
	}
}

// A socket flooding control messages behind a stalled one gets busy
// errors at once, with their cids; the ones accepted are answered in the
// order they were sent, after the stalled one.
func TestRealtimeControlFloodBusy(t *testing.T) {
	const timeout = time.Second
	// 42 messages at once: past gateway.control_burst, whose refusal
	// (rate_limited) TestControlFlood covers; here the bound is the queue's.
	se := newStallEnv(t, timeout, func(c *gateway.Config) { c.ControlRate = 0 })
	x, _ := se.connect("flooder")
	stalled := se.create(x, stallMode, nil)

	x.sendJSON("match.join", "stall", map[string]any{"match_id": stalled, "meta": map[string]string{"stall": "1"}})
	<-se.entered
	const flood = 40
	sent := time.Now()
	for i := range flood {
		x.sendJSON("match.list", fmt.Sprint(i), map[string]any{})
	}
	// 16 wait behind the stalled join; the others are refused at once.
	const accepted = 16
	for i := accepted; i < flood; i++ {
		expectError(t, x, "busy", fmt.Sprint(i))
	}
	if took := time.Since(sent); took > timeout/2 {
		t.Errorf("the busy answers took %s, want them at once (the stall lasts %s)", took, timeout)
	}
	want := fmt.Sprintf("multijuego_realtime_control_busy_total %d\n", flood-accepted)
	if m := se.do("GET", "/metrics", "", "", nil); !strings.Contains(string(m.body), want) {
		t.Errorf("metrics lack %q", want)
	}
	expectError(t, x, "timeout", "stall")
	for i := range accepted {
		if got := x.expect("match.list"); got.CID != fmt.Sprint(i) {
			t.Fatalf("answer %d has cid %q: out of order", i, got.CID)
		}
	}
}

// When every worker is held and the queue of waiting sockets is full,
// another socket's control message is answered busy at once; echo still
// answers.
func TestRealtimeControlQueueFull(t *testing.T) {
	se := newStallEnv(t, time.Second, func(c *gateway.Config) { c.ControlWorkers, c.ControlQueue = 1, 1 })
	x, _ := se.connect("staller")
	y, _ := se.connect("waiter")
	z, _ := se.connect("refused")
	stalled := se.create(x, stallMode, nil)

	x.sendJSON("match.join", "stall", map[string]any{"match_id": stalled, "meta": map[string]string{"stall": "1"}})
	<-se.entered
	y.sendJSON("match.list", "y", map[string]any{}) // the one queued socket
	time.Sleep(50 * time.Millisecond)               // (y's message is read first)
	sent := time.Now()
	z.sendJSON("match.list", "z", map[string]any{})
	expectError(t, z, "busy", "z")
	z.sendJSON("echo", "e", map[string]any{"n": 1})
	if got := z.expect("echo"); got.CID != "e" {
		t.Fatalf("echo = %+v", got)
	}
	if took := time.Since(sent); took > 500*time.Millisecond {
		t.Errorf("busy and echo took %s, want them at once", took)
	}
	expectError(t, x, "timeout", "stall")
	if got := y.expect("match.list"); got.CID != "y" {
		t.Fatalf("y's answer = %+v", got)
	}
}

// Sockets closing while their match is stalled: their Disconnects wait on
// workers, not on the readers, so the other players' inputs flow; the
// seats are given up once the match answers again.
func TestRealtimeStalledDisconnect(t *testing.T) {
	testDisconnectGrace = 300 * time.Millisecond
	defer func() { testDisconnectGrace = 0 }()
	const timeout = 2 * time.Second
	se := newStallEnv(t, timeout)
	players := se.arenaPlayers(3)
	staller, stallerID := se.connect("staller")
	stalled := se.create(staller, stallMode, nil)
	var leaving []*sock
	for i := range 4 {
		s, _ := se.connect(fmt.Sprintf("leaver%d", i))
		s.sendJSON("match.join", "", map[string]any{"match_id": stalled})
		s.expect("match.joined")
		leaving = append(leaving, s)
	}
	var seq uint32
	before := roundTrips(t, players, &seq, 20)

	staller.sendJSON("match.join", "j", map[string]any{"match_id": stalled, "meta": map[string]string{"stall": "1"}})
	<-se.entered
	for _, s := range leaving {
		s.nc.Close() // each close's Disconnect waits on the stalled match
	}
	during := roundTripsFor(t, players, &seq, timeout-4*arenaTick)
	if during > tickBound {
		t.Errorf("slowest input round trip with Disconnects stalled %s (before %s), want under %s", during, before, tickBound)
	}
	se.unstall()
	staller.expect("match.joined") // in time: the deadline is still ahead
	// The queued Disconnects are carried out: after the grace only the
	// staller's seat is left.
	se.waitSeats(stalled, func(i match.Info) bool { return i.Players == 1 && i.PlayerIDs[0] == stallerID })
}

// With Redis as the key-value store, stalled (DEBUG SLEEP): match.resume
// answers timeout at the deadline, and the other players' inputs flow.
func TestRealtimeResumeRedisStall(t *testing.T) {
	srv := redistest.Start(t, "--enable-debug-command", "yes")
	client, err := cache.ParseRedisURL(srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	store, err := kv.NewRedis(kv.RedisOptions{Client: client, Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = time.Second
	se := &stallEnv{}
	se.env = newEnvWith(t, func(d *gateway.Deps) { d.Tickets = store }, func(c *gateway.Config, _ *auth.Config) { c.ControlTimeout = timeout })
	players := se.arenaPlayers(3)
	x, _ := se.connect("resumer")
	var seq uint32
	before := roundTrips(t, players, &seq, 20)

	// Redis sleeps 3 s, on a connection of its own.
	const sleep = 3 * time.Second
	sleeper := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { sleeper.Close() })
	slept := make(chan error, 1)
	go func() { slept <- sleeper.Do(context.Background(), "DEBUG", "SLEEP", sleep.Seconds()).Err() }()
	time.Sleep(100 * time.Millisecond) // the sleep has begun

	sent := time.Now()
	x.sendJSON("match.resume", "r", map[string]any{"resume_token": "mjs_unknown"})
	during := roundTripsFor(t, players, &seq, timeout-4*arenaTick)
	if during > tickBound {
		t.Errorf("slowest input round trip with Redis stalled %s (before %s), want under %s", during, before, tickBound)
	}
	expectError(t, x, "timeout", "r")
	if took := time.Since(sent); took < timeout || took > timeout+time.Second {
		t.Errorf("the stalled resume was answered after %s, want the deadline, %s", took, timeout)
	}
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	// Redis is back: the same resume is an ordinary unknown token.
	x.sendJSON("match.resume", "r2", map[string]any{"resume_token": "mjs_unknown"})
	expectError(t, x, "not_found", "r2")
}
