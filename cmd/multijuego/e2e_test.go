package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/multijuego/multijuego/client"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "multijuego-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "multijuego")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is the real binary, started as an operator would.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	args    []string // start's arguments, for a restart
	url     string
	version string // as the binary printed it at start
	stderr  *bytes.Buffer
	mu      *sync.Mutex
	done    chan error
}

type lockedBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startBinary(t, binary, args...)
}

// startBinary is start with the executable bin (another build, say).
func startBinary(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, args: args, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--auth-hash-concurrency", "1"}, args...)...)
	p.cmd.Env = append(os.Environ(), "MULTIJUEGO_LOG_FORMAT=json")
	p.cmd.Stderr = lockedBuffer{p.mu, p.stderr}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, u, ok := strings.Cut(sc.Text(), " listening on "); ok {
				urlc <- [2]string{strings.TrimPrefix(v, "multijuego "), u}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", p.log())
		}
	})
	select {
	case vu := <-urlc:
		p.version, p.url = vu[0], vu[1]
	case err := <-p.done:
		t.Fatalf("server exited at start: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not print its URL\n%s", p.log())
	}
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("server did not exit within 30s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) call(method, path, token string, body any) (int, map[string]any) {
	p.t.Helper()
	code, _, out := p.callWith(nil, method, path, token, body)
	return code, out
}

// callWith is call with extra request headers (a trusted proxy's
// Forwarded, say), also returning the response headers.
func (p *proc) callWith(hdr http.Header, method, path, token string, body any) (int, http.Header, map[string]any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			p.t.Fatalf("%s %s: %d, body not JSON: %s", method, path, res.StatusCode, raw)
		}
	}
	return res.StatusCode, res.Header, out
}

// inFlight reads multijuego_http_requests_in_flight from /metrics.
func (p *proc) inFlight() int {
	res, err := http.Get(p.url + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "multijuego_http_requests_in_flight "); ok {
			var n float64
			fmt.Sscan(v, &n)
			return int(n)
		}
	}
	return 0
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func TestEndToEndSQLite(t *testing.T) {
	t.Parallel()
	endToEnd(t, "--data-dir", t.TempDir())
}

func TestEndToEndPostgres(t *testing.T) {
	t.Parallel()
	endToEnd(t, "--data-dir", t.TempDir(), "--database-url", storetest.PostgresURL(t))
}

func endToEnd(t *testing.T, args ...string) {
	p := start(t, args...)
	if code, body := p.call("GET", "/readyz", "", nil); code != 200 || str(body, "status") != "ready" {
		t.Fatalf("readyz: %d %v", code, body)
	}
	code, reg := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "alice", "email": "alice@example.com", "password": "correct horse battery"})
	if code != 201 || str(reg, "token_type") != "Bearer" {
		t.Fatalf("register: %d %v", code, reg)
	}
	code, login := p.call("POST", "/v1/auth/login", "", map[string]string{"email": "alice@example.com", "password": "correct horse battery"})
	if code != 200 {
		t.Fatalf("login: %d %v", code, login)
	}
	access := str(login, "access_token")
	verifyWithThirdParty(t, p, access, str(login, "account_id"))

	code, acc := p.call("GET", "/v1/account", access, nil)
	if code != 200 || str(acc, "username") != "alice" {
		t.Fatalf("account: %d %v", code, acc)
	}
	code, next := p.call("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": str(login, "refresh_token")})
	if code != 200 || str(next, "refresh_token") == str(login, "refresh_token") {
		t.Fatalf("refresh: %d %v", code, next)
	}
	// Reusing the old refresh token revokes the family: the new one dies too.
	if code, body := p.call("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": str(login, "refresh_token")}); code != 401 {
		t.Fatalf("reused refresh token: %d %v", code, body)
	}
	if code, _ := p.call("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": str(next, "refresh_token")}); code != 401 {
		t.Fatalf("refresh token of a revoked family: %d", code)
	}
	// Log out: the access token is refused from then on.
	regAccess := str(reg, "access_token")
	if code, _ := p.call("GET", "/v1/account", regAccess, nil); code != 200 {
		t.Fatalf("before logout: %d", code)
	}
	if code, body := p.call("POST", "/v1/auth/logout", regAccess, nil); code != 204 {
		t.Fatalf("logout: %d %v", code, body)
	}
	if code, body := p.call("GET", "/v1/account", regAccess, nil); code != 401 {
		t.Fatalf("after logout: %d %v", code, body)
	}

	// In-flight requests finish when SIGTERM arrives: fire logins (each one
	// a full argon2id hash; the server was started with one hash slot, so
	// they queue), signal once the server reports them all in flight, and
	// every one must succeed.
	var wg sync.WaitGroup
	codes := make(chan int, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(map[string]string{"username": "alice", "password": "correct horse battery"})
			res, err := http.Post(p.url+"/v1/auth/login", "application/json", bytes.NewReader(b))
			if err != nil {
				codes <- -1
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.inFlight() < 5 { // the 4 logins + this /metrics request
		if time.Now().After(deadline) {
			t.Fatal("the logins were never in flight together")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("in-flight login during drain: %d, want 200", c)
		}
	}
	if !strings.Contains(p.log(), `"msg":"request"`) || !strings.Contains(p.log(), `"request_id"`) {
		t.Error("no JSON access log lines with request ids")
	}
}

// verifyWithThirdParty checks the access token with go-jose, a JWT library
// we do not use ourselves, against the published JWKS.
func verifyWithThirdParty(t *testing.T, p *proc, token, accountID string) {
	t.Helper()
	res, err := http.Get(p.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		t.Fatalf("headers: %+v", tok.Headers)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS %+v", tok.Headers[0].KeyID, set)
	}
	var claims josejwt.Claims
	var extra struct {
		Roles []string `json:"roles"`
	}
	if err := tok.Claims(keys[0].Key, &claims, &extra); err != nil {
		t.Fatalf("third-party verification failed: %v", err)
	}
	if err := claims.Validate(josejwt.Expected{Issuer: "multijuego", AnyAudience: josejwt.Audience{"multijuego"}, Subject: accountID, Time: time.Now()}); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if claims.ID == "" || claims.IssuedAt == nil || claims.NotBefore == nil || len(extra.Roles) != 1 || extra.Roles[0] != "player" {
		t.Fatalf("claims incomplete: %+v %+v", claims, extra)
	}
	if typ, _ := tok.Headers[0].ExtraHeaders["typ"].(string); typ != "at+jwt" {
		t.Fatalf("typ header = %q", typ)
	}
}

// With no configuration at all, serve uses ./data and 127.0.0.1:7350.
func TestZeroConfigDefaults(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "config", "print")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("config print: %v\n%s", err, out)
	}
	for _, want := range []string{`data_dir: "./data"`, `listen: "127.0.0.1:7350"`, `database_url: ""`, `roles: "all"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("defaults lack %s:\n%s", want, out)
		}
	}
	// Bad configuration stops the process with the key named.
	cmd = exec.Command(binary, "serve", "--listen", "nowhere")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "listen:") {
		t.Fatalf("bad listen: %v\n%s", err, out)
	}
}

func TestCommands(t *testing.T) {
	dataDir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binary, append(args, "--data-dir", dataDir)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	migrations, err := store.Migrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	n := len(migrations)
	if out := run("migrate", "status"); !strings.Contains(out, "0001") || !strings.Contains(out, fmt.Sprintf("0 applied, %d pending", n)) {
		t.Fatalf("status before migrating:\n%s", out)
	}
	if out := run("migrate", "up"); !strings.Contains(out, fmt.Sprintf("applied %d", n)) {
		t.Fatalf("migrate up:\n%s", out)
	}
	if out := run("migrate", "status"); !strings.Contains(out, fmt.Sprintf("%d applied, 0 pending", n)) {
		t.Fatalf("status after migrating:\n%s", out)
	}
	run("keys", "rotate")
	run("keys", "rotate")
	if out := run("keys", "list"); strings.Count(out, "signing") != 1 || strings.Count(out, "retired") != 1 {
		t.Fatalf("keys list after two rotations (first rotation creates the only key):\n%s", out)
	}

	p := start(t, "--data-dir", dataDir)
	if code, _ := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "boss", "password": "boss-password"}); code != 201 {
		t.Fatal("register boss")
	}
	if out := run("accounts", "set-roles", "boss", "player,admin"); !strings.Contains(out, "player,admin") {
		t.Fatalf("set-roles:\n%s", out)
	}
	_, login := p.call("POST", "/v1/auth/login", "", map[string]string{"username": "boss", "password": "boss-password"})
	if code, body := p.call("GET", "/v1/admin/accounts", str(login, "access_token"), nil); code != 200 {
		t.Fatalf("admin after set-roles: %d %v", code, body)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	out, err := exec.Command(binary, "accounts", "set-roles", "nobody", "admin", "--data-dir", dataDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nobody") {
		t.Fatalf("set-roles of a missing account: %v\n%s", err, out)
	}
}

// The stock binary offers the reference games over realtime sockets; the
// public Go SDK drives it as a game client would.
func TestRealtimeWithSDK(t *testing.T) {
	t.Parallel()
	p := start(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	c, err := client.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Device(ctx, "e2e-sdk-device-1"); err != nil {
		t.Fatal(err)
	}
	rt, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, mode := range []string{"arena", "tictactoe"} {
		m, err := rt.CreateMatch(ctx, mode, nil)
		if err != nil || m.Mode != mode {
			t.Fatalf("create %s: %+v %v", mode, m, err)
		}
	}
	list, err := c.ListMatches(ctx, "arena", "")
	if err != nil || len(list) != 1 {
		t.Fatalf("arena matches: %+v %v", list, err)
	}
	if _, err := rt.Join(ctx, list[0].MatchID); err != nil {
		t.Fatal(err)
	}
	// Arena broadcasts its state every tick (20 Hz) once a player is in.
	select {
	case f, ok := <-rt.Frames():
		if !ok || f.MatchID != list[0].MatchID {
			t.Fatalf("first frame: %+v %v (%v)", f, ok, rt.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no arena frame within 5s")
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestLoadTool runs `multijuego bots` against the stock binary, as the
// benchmarks do, for a few players and a few seconds, and checks its JSON
// report. The run shares a noisy machine with the rest of the suite, so a
// run that does not keep up is tried once more before the test fails.
func TestLoadTool(t *testing.T) {
	p := start(t, "--data-dir", t.TempDir(), "--auth-signup-ip-limit", "1000")
	pid := strconv.Itoa(p.cmd.Process.Pid)
	for _, tc := range []struct {
		mode    string
		players int
	}{{"arena", 16}, {"tictactoe", 4}, {"idle", 10}} {
		t.Run(tc.mode, func(t *testing.T) {
			var res map[string]any
			for attempt := 1; attempt <= 2; attempt++ {
				args := []string{"bots", "--url", p.url, "--mode", tc.mode, "--players", strconv.Itoa(tc.players),
					"--duration", "3s", "--warmup", "1s", "--pid", pid, "--prefix", tc.mode + "-", "--json"}
				if tc.mode == "idle" {
					// Sockets spread over 127.0.0.1..3 as sources (as past
					// 25,000 sockets).
					args = append(args, "--source-ips", "3")
				}
				cmd := exec.Command(binary, args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("bots: %v\n%s", err, stderr.String())
				}
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				res = nil
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
					t.Fatalf("the last line of stdout is not JSON: %v\n%s", err, out)
				}
				for _, k := range []string{"players_connected", "players_in_matches", "matches", "inputs_sent_per_s", "states_recv_per_s",
					"states_expected_per_s", "delivery_ratio", "input_to_state_ms", "tick_to_client_ms", "disconnects", "errors",
					"bots_cpu_cores", "machine_busy_cores", "keeps_up", "server_cpu_cores", "server_rss_mib"} {
					if _, ok := res[k]; !ok {
						t.Errorf("the report lacks %q: %s", k, lines[len(lines)-1])
					}
				}
				for _, k := range []string{"input_to_state_ms", "tick_to_client_ms"} {
					l, _ := res[k].(map[string]any)
					for _, q := range []string{"p50", "p90", "p99", "max"} {
						if _, ok := l[q].(float64); !ok {
							t.Errorf("%s.%s missing: %v", k, q, res[k])
						}
					}
				}
				if res["keeps_up"] == true {
					break
				}
				t.Logf("attempt %d did not keep up: %v\n%s", attempt, res["keeps_up_failures"], stderr.String())
			}
			if res["keeps_up"] != true {
				t.Fatalf("did not keep up twice: %v", res)
			}
			if got := res["players_connected"].(float64); got != float64(tc.players) {
				t.Errorf("players_connected = %v, want %d", got, tc.players)
			}
			switch tc.mode {
			case "arena":
				if res["players_in_matches"].(float64) != 16 || res["matches"].(float64) != 2 {
					t.Errorf("arena seating: %v", res)
				}
				// 16 players at 10 inputs/s, 20 states/s each.
				if v := res["inputs_sent_per_s"].(float64); v < 140 || v > 180 {
					t.Errorf("inputs_sent_per_s = %v, want about 160", v)
				}
				if v := res["states_expected_per_s"].(float64); v != 320 {
					t.Errorf("states_expected_per_s = %v, want 320", v)
				}
				if res["server_tick_ms"] == nil {
					t.Errorf("no server tick durations: %v", res)
				}
			case "tictactoe":
				if res["games_completed"].(float64) < 1 {
					t.Errorf("no game completed: %v", res)
				}
			case "idle":
				if res["server_kib_per_conn"] == nil {
					t.Errorf("idle run without memory per socket: %v", res)
				}
			}
		})
	}
}

// TestArenaResultPersisted plays an arena match over real sockets on the
// embedded default (SQLite, embedded NATS JetStream): when it ends, its
// result goes through the queue to the persistence role, and the match
// record, each player's history and the leaderboards show it through the
// API.
func TestArenaResultPersisted(t *testing.T) {
	t.Parallel()
	p := start(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	type player struct {
		c  *client.Client
		rt *client.Realtime
		id string
	}
	var ps []player
	for i := range 2 {
		c, err := client.New(p.url)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.Device(ctx, fmt.Sprintf("e2e-persist-device-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		rt, err := c.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close()
		ps = append(ps, player{c, rt, tok.AccountID})
	}
	m, err := ps[0].rt.CreateMatch(ctx, "arena", map[string]string{"time_limit": "10s", "max_players": "2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range ps {
		if _, err := pl.rt.Join(ctx, m.MatchID); err != nil {
			t.Fatal(err)
		}
	}
	// Both run at each other (arena input: seq u32, dx, dy, 0, 0), so
	// someone gets tagged, until the time limit ends the match.
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var seq uint32
	ended := false
	for !ended {
		select {
		case <-deadline:
			t.Fatal("the match did not end within 30s")
		case ev := <-ps[0].rt.Events():
			ended = ev.Type == "match.closed"
		case <-ps[0].rt.Frames():
		case <-ps[1].rt.Frames():
		case <-tick.C:
			seq++
			for i, pl := range ps {
				dx := byte(127)
				if i == 1 {
					dx = byte(0x81) // -127
				}
				in := []byte{byte(seq), byte(seq >> 8), byte(seq >> 16), byte(seq >> 24), dx, 0, 0, 0}
				_ = pl.rt.Send(1, in)
			}
		}
	}

	token := ps[0].c.Tokens().AccessToken
	var rec map[string]any
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		status, body := p.call("GET", "/v1/matches/"+m.MatchID, token, nil)
		if status == 200 && body["live"] == false {
			rec = body["match"].(map[string]any)
			if _, ok := rec["ended_at"]; ok {
				break
			}
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("no stored result 15s after the end: %d %v", status, body)
		}
	}
	results := rec["results"].([]any)
	if rec["mode"] != "arena" || rec["end_reason"] != "time_limit" || len(results) != 2 {
		t.Fatalf("stored match: %v", rec)
	}
	for _, pl := range ps {
		status, body := p.call("GET", "/v1/players/me/matches", pl.c.Tokens().AccessToken, nil)
		list, _ := body["matches"].([]any)
		if status != 200 || len(list) != 1 || list[0].(map[string]any)["match_id"] != m.MatchID {
			t.Fatalf("history of %s: %d %v", pl.id, status, body)
		}
		status, body = p.call("GET", "/v1/leaderboards/arena_best_score/around/me", pl.c.Tokens().AccessToken, nil)
		if status != 200 {
			t.Fatalf("arena_best_score around %s: %d %v", pl.id, status, body)
		}
	}
	status, body := p.call("GET", "/v1/leaderboards/arena_best_score?limit=10", token, nil)
	if recs, _ := body["records"].([]any); status != 200 || len(recs) != 2 {
		t.Fatalf("arena_best_score: %d %v", status, body)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// The dlq commands, against a NATS server of the test's own: listing an
// empty queue, and clear errors for a missing address, a bad or unknown
// number, an unconfirmed purge and an unknown subcommand.
func TestDLQCommands(t *testing.T) {
	t.Parallel()
	srv := eventstest.StartServer(t)
	dlq := func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(binary, append([]string{"dlq"}, args...)...)
		cmd.Env = append(os.Environ(), "MULTIJUEGO_NATS_URL=")
		cmd.Stdin = strings.NewReader(stdin)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	url := "--nats-url=" + srv.URL()
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"", []string{"list"}, 1, "dlq needs the queue's address"},
		{"", []string{"list", url}, 0, "0 dead letters"},
		{"", []string{"show", "abc", url}, 1, "SEQ must be a dead letter's number"},
		{"", []string{"show", "7", url}, 1, "not found"},
		{"", []string{"replay", url}, 1, "usage: multijuego dlq replay SEQ"},
		{"no\n", []string{"purge", url}, 1, "not confirmed; nothing deleted"},
		{"purge\n", []string{"purge", url}, 0, "purged 0 dead letters"},
		{"", []string{"purge", "--yes", url}, 0, "purged 0 dead letters"},
		{"", []string{"replay", "--all", url}, 0, "replayed 0 dead letters"},
		{"", []string{"frob", url}, 1, "unknown command 'dlq frob'"},
		{"", []string{}, 2, "missing subcommand"},
	} {
		out, code := dlq(tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("dlq %v: exit %d\n%s\nwant exit %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}
