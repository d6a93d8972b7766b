// Package bots is the load tool behind `multijuego bots`: simulated players
// that authenticate (device auth), open real WebSockets to a running
// server, sit in matches and play, while the tool measures what they
// receive.
//
// It shares the machine with the server it measures, so it is built to be
// cheap: on Linux plain ws:// sockets are raw non-blocking fds served by a
// few epoll loops (Config.Readers) that parse every whole frame a read
// returns (wss:// sockets, and every socket on other platforms, are each a
// net.Conn with a reader goroutine, which costs more memory and CPU per
// player: measure plain sockets on Linux), and inputs
// are written by a few goroutines (Config.Writers) each serving many
// players from a time wheel, not one timer per player. Its own CPU is
// reported beside every result.
package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/client"
	"github.com/multijuego/multijuego/games/arena"
)

var bgCtx = context.Background()

// Modes the tool can play.
const (
	ModeArena     = "arena"
	ModeTicTacToe = "tictactoe"
	ModeIdle      = "idle" // authenticated sockets that only answer pings
)

// Defaults of a login storm (ModeAuth) where the game modes' differ.
const (
	authDevices     = 1000
	authConcurrency = 50
)

// Config is one load run.
type Config struct {
	URL         string        // the server, http://HOST:PORT or https://HOST:PORT
	Mode        string        // arena, tictactoe, idle or auth
	Players     int           // simulated players (auth: existing devices logged in round-robin)
	NewAccounts bool          // auth: every login a new device's first
	Duration    time.Duration // measurement window, after the warm-up
	Warmup      time.Duration // traffic before the window opens
	MatchSize   int           // players per match (0: arena 8, tictactoe 2)
	TickRate    int           // arena tick rate asked for (0: 20)
	InputHz     int           // arena inputs per player per second (0: 10)
	Concurrency int           // parallel logins and connects (0: 32)
	SourceIPs   int           // 127.0.0.x source addresses (0: one per 20,000 sockets past 25,000)
	Readers     int           // epoll loops (0: 1)
	Writers     int           // input writers (0: 1)
	Prefix      string        // device id prefix; the same prefix reuses the accounts (0: "mjbot-")
	PID         int           // server process for CPU and memory (0: none)
	MetricsURL  string        // the server's Prometheus endpoint ("" : the first URL + /metrics, "-": none)
	Progress    io.Writer     // progress lines (nil: none)
	JoinTimeout time.Duration // time allowed to seat everyone (0: 30s + 1ms per player)
	Reconnect   bool          // a player whose socket the server closes connects again and resumes (reconnect.go)
}

func (c *Config) defaults() error {
	if c.URL == "" {
		return errors.New("--url is required (http://HOST:PORT or https://HOST:PORT of a running server)")
	}
	switch c.Mode {
	case ModeArena, ModeTicTacToe, ModeIdle, ModeAuth:
	default:
		return fmt.Errorf("--mode must be arena, tictactoe, idle or auth, got %q", c.Mode)
	}
	if c.Players < 1 {
		return fmt.Errorf("--players must be at least 1, got %d", c.Players)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("--duration must be positive, got %s", c.Duration)
	}
	if c.Warmup < 0 {
		return fmt.Errorf("--warmup must not be negative, got %s", c.Warmup)
	}
	if c.MatchSize == 0 {
		c.MatchSize = map[string]int{ModeArena: arena.DefaultMaxPlayers, ModeTicTacToe: 2, ModeIdle: 1}[c.Mode]
	}
	if c.Mode == ModeTicTacToe && c.MatchSize != 2 {
		return fmt.Errorf("--match-size must be 2 for tictactoe, got %d", c.MatchSize)
	}
	if c.Mode == ModeArena && (c.MatchSize < 2 || c.MatchSize > arena.MaxSlots) {
		return fmt.Errorf("--match-size must be 2..%d for arena, got %d", arena.MaxSlots, c.MatchSize)
	}
	if c.TickRate == 0 {
		c.TickRate = arena.DefaultTickRate
	}
	if c.TickRate < 1 || c.TickRate > 128 {
		return fmt.Errorf("--tick-rate must be 1..128, got %d", c.TickRate)
	}
	if c.InputHz == 0 {
		c.InputHz = 10
	}
	if c.InputHz < 1 || c.InputHz > 100 {
		return fmt.Errorf("--input-hz must be 1..100, got %d", c.InputHz)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
		if c.Mode == ModeAuth {
			c.Concurrency = authConcurrency
		}
	}
	if c.NewAccounts && c.Mode != ModeAuth {
		return errors.New("--new-accounts is for --mode auth")
	}
	if c.Readers <= 0 {
		c.Readers = 1
	}
	if c.Writers <= 0 {
		c.Writers = 1
	}
	if c.Prefix == "" {
		c.Prefix = "mjbot-"
	}
	if c.SourceIPs == 0 {
		c.SourceIPs = 1
		if c.Players > 25_000 {
			c.SourceIPs = (c.Players + 19_999) / 20_000
		}
	}
	if c.SourceIPs < 1 || c.SourceIPs > 250 {
		return fmt.Errorf("--source-ips must be 1..250, got %d", c.SourceIPs)
	}
	if c.MetricsURL == "" {
		c.MetricsURL = strings.TrimSuffix(c.urls()[0], "/") + "/metrics"
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 30*time.Second + time.Duration(c.Players)*time.Millisecond
	}
	return nil
}

// parseHTTPURL parses a gateway's URL: http:// (ws:// sockets) or https://
// (wss://).
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--url must be http://HOST:PORT or https://HOST:PORT, got %q", raw)
	}
	return u, nil
}

// Result is what a run measured. The JSON names are fixed: scripts read
// them.
type Result struct {
	Mode               string      `json:"mode"`
	Players            int         `json:"players"`
	PlayersConnected   int         `json:"players_connected"`
	PlayersInMatches   int         `json:"players_in_matches"`
	Matches            int         `json:"matches"`
	WindowS            float64     `json:"window_s"`
	InputsSentPerS     float64     `json:"inputs_sent_per_s"`
	StatesRecvPerS     float64     `json:"states_recv_per_s"`
	StatesExpectedPerS float64     `json:"states_expected_per_s"`
	DeliveryRatio      float64     `json:"delivery_ratio"`
	InputToStateMs     Latency     `json:"input_to_state_ms"`
	TickToClientMs     Latency     `json:"tick_to_client_ms"`
	ServerTickMs       *ServerTick `json:"server_tick_ms"`
	GamesCompleted     int64       `json:"games_completed,omitempty"`
	MovesResent        int64       `json:"moves_resent,omitempty"` // tictactoe: moves no state answered within resendAfter
	Disconnects        int64       `json:"disconnects"`
	Reconnects         int64       `json:"reconnects,omitempty"` // --reconnect: disconnected players connected again
	Errors             int64       `json:"errors"`
	ErrorSamples       []string    `json:"error_samples,omitempty"`
	AuthS              float64     `json:"auth_s"`
	ConnectS           float64     `json:"connect_s"`
	BotsCPUCores       float64     `json:"bots_cpu_cores"`
	MachineBusyCores   float64     `json:"machine_busy_cores"`
	ServerCPUCores     *float64    `json:"server_cpu_cores,omitempty"`
	ServerRSSMiB       *float64    `json:"server_rss_mib,omitempty"`
	// Idle mode with a PID: the server's RSS before the sockets opened and
	// its growth per socket.
	ServerRSSBeforeMiB *float64 `json:"server_rss_before_mib,omitempty"`
	ServerKiBPerConn   *float64 `json:"server_kib_per_conn,omitempty"`
	// Auth mode: logins answered in the window, their rate and latency.
	NewAccounts     bool     `json:"new_accounts,omitempty"`
	Logins          int64    `json:"logins,omitempty"`
	LoginsPerS      float64  `json:"logins_per_s,omitempty"`
	LoginMs         *Latency `json:"login_ms,omitempty"`
	KeepsUp         bool     `json:"keeps_up"`
	KeepsUpFailures []string `json:"keeps_up_failures"`
}

// urls are the gateways of URL, a comma-separated list.
func (c *Config) urls() []string {
	var out []string
	for _, u := range strings.Split(c.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// run is the shared state of one load run.
type run struct {
	cfg     Config
	urls    []string // the gateways; player i uses urls[i % len]
	targets []target // their socket addresses
	hc      *http.Client
	start   time.Time // monotonic base of the bots' timestamps
	bots    []*bot
	readers []*reader

	window  atomic.Bool // the measurement window is open
	leaving atomic.Bool // the run is over: players leave

	disconnects atomic.Int64
	reconnected atomic.Int64 // --reconnect: players connected again after a disconnect
	rc          *reconnects  // --reconnect: the reconnections under way
	errors      atomic.Int64
	games       atomic.Int64
	resent      atomic.Int64
	seated      atomic.Int64
	connected   atomic.Int64

	errMu      sync.Mutex
	errSamples []string
}

// fail counts an error and keeps a few samples for the report.
func (r *run) fail(format string, args ...any) {
	n := r.errors.Add(1)
	if n <= 10 {
		msg := fmt.Sprintf(format, args...)
		r.errMu.Lock()
		r.errSamples = append(r.errSamples, msg)
		r.errMu.Unlock()
		r.progressf("error: %s", msg)
	}
}

func (r *run) progressf(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bots: "+format+"\n", args...)
	}
}

func (r *run) now() int64 { return int64(time.Since(r.start)) }

// Run performs one load run against a running server.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Mode == ModeAuth {
		return runAuth(ctx, cfg)
	}
	r, err := newRun(cfg)
	if err != nil {
		return nil, err
	}
	defer r.hc.CloseIdleConnections()
	defer r.closeReaders()
	res := &Result{Mode: cfg.Mode, Players: cfg.Players}

	// Readers and the progress line run for the whole run.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, rd := range r.readers {
		wg.Add(1)
		go func() { defer wg.Done(); rd.loop(stop) }()
	}
	defer func() { r.leaveAll(); r.rc.stop(); close(stop); wg.Wait(); r.closeAll() }()

	// 1. Accounts.
	t0 := time.Now()
	if err := r.authenticate(ctx); err != nil {
		return nil, err
	}
	res.AuthS = round2(time.Since(t0).Seconds())
	r.progressf("%d players authenticated in %.1fs", cfg.Players, res.AuthS)

	var rssBefore int64
	if cfg.PID > 0 && cfg.Mode == ModeIdle {
		rssBefore, _ = procRSS(cfg.PID)
	}

	// 2. Sockets.
	t0 = time.Now()
	r.connectAll(ctx)
	res.ConnectS = round2(time.Since(t0).Seconds())
	r.progressf("%d/%d sockets open in %.1fs", r.connected.Load(), cfg.Players, res.ConnectS)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// 3. Matches.
	if cfg.Mode != ModeIdle {
		if err := r.seat(ctx); err != nil {
			return nil, err
		}
		res.Matches = (cfg.Players + cfg.MatchSize - 1) / cfg.MatchSize
	}

	// 4. Inputs, warm-up, window.
	wstop := make(chan struct{})
	var wwg sync.WaitGroup
	switch cfg.Mode {
	case ModeArena:
		for i := range cfg.Writers {
			w := newWriter(r, i)
			wwg.Add(1)
			go func() { defer wwg.Done(); w.loop(wstop) }()
		}
	case ModeTicTacToe:
		wwg.Add(1)
		go func() { defer wwg.Done(); r.resendLoop(wstop) }()
	}
	defer func() {
		select {
		case <-wstop:
		default:
			close(wstop)
		}
		wwg.Wait()
	}()
	line := func() string {
		return fmt.Sprintf("%d connected, %d seated, %d disconnects, %d errors", r.connected.Load(), r.seated.Load(), r.disconnects.Load(), r.errors.Load())
	}
	if err := r.waitProgress(ctx, cfg.Warmup, "warm-up", line); err != nil {
		return nil, err
	}
	w, err := r.measure(ctx, res, line, rssBefore)
	if err != nil {
		return nil, err
	}
	close(wstop)
	wwg.Wait()

	// 5. The report.
	r.report(res, w.snap, w.snap2, w.wall)
	res.judge(cfg, w.tickErr)
	return res, nil
}

// --- sockets -----------------------------------------------------------------------

func (r *run) connectAll(ctx context.Context) {
	jobs := make(chan *bot)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, r.cfg.Players) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				s, rest, err := dial(r.targets[b.idx%len(r.targets)], r.sourceAddr(b.idx), b.token, 10*time.Second)
				if err != nil {
					r.fail("player %d: %v", b.idx, err)
					continue
				}
				b.sock = s
				b.in = rest
				rd := r.readers[b.idx%len(r.readers)]
				if err := rd.add(b); err != nil {
					closeSock(s)
					r.fail("player %d: reader: %v", b.idx, err)
					continue
				}
				if n := r.connected.Add(1); n%5000 == 0 {
					r.progressf("%d sockets open", n)
				}
			}
		}()
	}
	for _, b := range r.bots {
		if ctx.Err() != nil {
			break
		}
		jobs <- b
	}
	close(jobs)
	wg.Wait()
}

func (r *run) closeReaders() {
	for _, rd := range r.readers {
		rd.closePoll()
		rd.conns.Wait() // closeAll has closed their sockets
	}
	r.readers = nil
}

// leaveAll has every seated player leave its match, as a polite client
// does, so the server ends the matches now rather than after the
// disconnect grace period (a next run then measures only its own load).
func (r *run) leaveAll() {
	r.leaving.Store(true)
	n := 0
	for _, b := range r.bots {
		if b != nil && b.seated.Load() {
			b.sendText(map[string]any{"type": "match.leave", "cid": "bye"})
			n++
		}
	}
	if n > 0 {
		deadline := time.Now().Add(5 * time.Second)
		for r.seated.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (r *run) closeAll() {
	for _, b := range r.bots {
		if b != nil {
			b.shutdown()
		}
	}
}

// --- matches ------------------------------------------------------------------------

// seat groups the players into matches: the first of each group creates
// the match over HTTP, everyone joins it over their socket.
func (r *run) seat(ctx context.Context) error {
	params := map[string]string{}
	if r.cfg.Mode == ModeArena {
		limit := r.cfg.JoinTimeout + r.cfg.Warmup + r.cfg.Duration + 10*time.Second
		params = map[string]string{
			"max_players": strconv.Itoa(r.cfg.MatchSize),
			"min_players": strconv.Itoa(r.cfg.MatchSize),
			"tick_rate":   strconv.Itoa(r.cfg.TickRate),
			"time_limit":  limit.Round(time.Second).String(),
		}
	}
	type group struct{ members []*bot }
	var groups []group
	for i := 0; i < len(r.bots); i += r.cfg.MatchSize {
		var g group
		for _, b := range r.bots[i:min(i+r.cfg.MatchSize, len(r.bots))] {
			if b.sock != noSock {
				g.members = append(g.members, b)
			}
		}
		if len(g.members) > 0 {
			groups = append(groups, g)
		}
	}
	jobs := make(chan group)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, max(len(groups), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range jobs {
				m, err := g.members[0].api.CreateMatch(ctx, r.cfg.Mode, params)
				if err != nil {
					r.fail("create match: %v", err)
					continue
				}
				for i, b := range g.members {
					b.partner = nil
					if r.cfg.Mode == ModeTicTacToe && len(g.members) == 2 {
						b.partner = g.members[1-i]
						b.leader = i == 0
					}
					b.join(m.MatchID)
				}
			}
		}()
	}
	for _, g := range groups {
		jobs <- g
	}
	close(jobs)
	wg.Wait()
	deadline := time.Now().Add(r.cfg.JoinTimeout)
	for r.seated.Load() < r.connected.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	r.progressf("%d/%d players seated in %d matches", r.seated.Load(), r.cfg.Players, len(groups))
	return ctx.Err()
}

type counters struct{ inputs int64 }

func (r *run) snapshot() counters {
	var c counters
	for _, b := range r.bots {
		if b != nil {
			c.inputs += b.inputs.Load()
		}
	}
	return c
}

// --- one bot ------------------------------------------------------------------------

type bot struct {
	run       *run
	idx       int
	token     string
	accountID string
	api       *client.Client
	sock      sock // noSock until connected

	wmu    sync.Mutex
	out    []byte // bytes a write could not take yet
	closed bool   // under wmu

	// Reader-owned.
	in        []byte // an incomplete frame
	matchID   string
	slot      int
	lastAck   uint32
	mark      string // tictactoe: "X" or "O"
	movedAt   int    // tictactoe: the move count of the state last answered
	seenMoves int    // tictactoe: the highest move count seen in this game

	// Tictactoe pairs: the leader creates the next match; the partner
	// joins it once its own last match has closed (follow).
	partner *bot
	leader  bool
	pairMu  sync.Mutex
	inMatch bool   // in a match not closed yet (under pairMu)
	next    string // partner: the leader's next match, to join at that close (under pairMu)

	// Tictactoe: the move sent and not answered by a state yet (see
	// resendLoop), and how many resends may still draw a refusal.
	pendingMove atomic.Int32 // the cell + 1; 0: none
	pendingAt   atomic.Int64 // when it was last sent (run.now)
	resends     atomic.Int32

	joining     atomic.Pointer[string] // the match of the last join sent, for its error
	resumeToken atomic.Pointer[string] // of the match it is in (set by the reader), for a reconnection

	// Writer-owned.
	seq    uint32
	dx, dy int8
	rng    uint64

	seated  atomic.Bool
	inputs  atomic.Int64
	sentSeq [64]atomic.Uint32
	sentAt  [64]atomic.Int64
}

var errBlocked = errors.New("socket send buffer full")

// write sends one frame; bytes the socket cannot take now are kept and
// sent before the next frame.
func (b *bot) write(p []byte) error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.closed {
		return errors.New("socket closed")
	}
	if len(b.out) > 0 {
		n, err := sockWrite(b.sock, b.out)
		if n > 0 {
			b.out = b.out[:copy(b.out, b.out[n:])]
		}
		if err != nil {
			return err
		}
		if len(b.out) > 0 {
			if len(b.out) > 64<<10 {
				return errBlocked
			}
			b.out = append(b.out, p...)
			return nil
		}
	}
	n, err := sockWrite(b.sock, p)
	if err != nil {
		return err
	}
	if n < len(p) {
		b.out = append(b.out, p[n:]...)
	}
	return nil
}

func (b *bot) key() uint32 {
	b.rng ^= b.rng << 13
	b.rng ^= b.rng >> 7
	b.rng ^= b.rng << 17
	return uint32(b.rng)
}

func (b *bot) sendText(v any) {
	payload, err := json.Marshal(v)
	if err != nil {
		return
	}
	b.wmu.Lock()
	k := uint32(b.idx)*2654435761 + 0x5bd1e995
	b.wmu.Unlock()
	if err := b.write(appendFrame(nil, opText, payload, k)); err != nil {
		b.run.fail("player %d: send: %v", b.idx, err)
	}
}

func (b *bot) join(matchID string) {
	b.joining.Store(&matchID)
	b.sendText(map[string]any{"type": "match.join", "cid": "j", "payload": map[string]string{"match_id": matchID}})
}

func (b *bot) shutdown() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if !b.closed && b.sock != noSock {
		b.closed = true
		closeSock(b.sock)
	}
}

// lost is a socket the server closed or that failed.
func (b *bot) lost(why string) {
	b.wmu.Lock()
	was := b.closed
	b.closed = true
	if !was && b.sock != noSock {
		closeSock(b.sock)
	}
	b.wmu.Unlock()
	if was {
		return
	}
	b.run.connected.Add(-1)
	if b.seated.Swap(false) {
		b.run.seated.Add(-1)
	}
	n := b.run.disconnects.Add(1)
	if n <= 5 {
		b.run.progressf("player %d disconnected: %s", b.idx, why)
	}
	if b.run.cfg.Reconnect && !b.run.leaving.Load() {
		b.run.rc.start(b.reconnect)
	}
}

// newRun makes a run's targets and socket readers.
func newRun(cfg Config) (*run, error) {
	r := &run{cfg: cfg, urls: cfg.urls(), start: time.Now(), hc: newHTTPClient(cfg.Concurrency), rc: newReconnects()}
	for _, u := range r.urls {
		t, err := parseTarget(u)
		if err != nil {
			return nil, err
		}
		if cfg.SourceIPs > 1 && !t.loopback {
			return nil, errors.New("--source-ips spreads sockets over 127.0.0.x addresses: the server must be on loopback")
		}
		r.targets = append(r.targets, t)
	}
	for i := range cfg.Readers {
		rd, err := newReader(r, i)
		if err != nil {
			r.closeReaders()
			return nil, err
		}
		r.readers = append(r.readers, rd)
	}
	return r, nil
}
