package bots

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

const usage = `Usage: multijuego bots --url http://HOST:PORT --mode arena --players N --duration 30s [flags]

Simulated players authenticate (device login), open real WebSockets to a
running server, sit in matches of the mode (arena: 8 per match, 10 inputs/s
each; tictactoe: pairs playing real moves, game after game, a move no
state answers within a second sent again; idle: sockets that only answer
pings) and the tool reports what they received. Progress goes to stderr;
with --json the last line of stdout is one JSON object.

--mode auth is a login storm, no sockets: --concurrency clients (default
50) log devices in over and over, as fast as the server answers, and the
tool reports logins/s, latency p50/p90/p99/max, errors and (with --pid)
the server's CPU. By default --players devices (default 1000) log in once
each before the clock starts and are then logged in again round-robin;
with --new-accounts every login is a new device's first (a new guest
account each), which the sign-up limit below counts. Against a server other
than the embedded default on loopback, start it with --limits-ip-auth off
(the storm comes from one address) and, for --new-accounts,
--auth-signup-ip-limit 100000000.

An https:// URL plays over wss://: the server's certificate must verify
against the system roots (on Linux, SSL_CERT_FILE names a PEM file read in
place of the system's CA file, e.g. a self-signed test certificate). On Linux
plain sockets are served by epoll loops (--readers) and TLS sockets each
by a goroutine, which costs the tool more CPU and memory per player.

The server must allow the new accounts: its auth.signup_ip_limit (default
20 an hour per client IP) counts the first run of a --prefix, except on the
embedded default listening on loopback, which does not limit sign-ups from
loopback. Elsewhere start it with --auth-signup-ip-limit 1000000 for load
tests, or keep the --prefix between runs to log the same accounts in again.

--mode flood is one abusive client instead of players: one request over
and over on --flood-conns keep-alive connections (--flood-kind http; with
--flood-for ADDR it claims to be ADDR through a Forwarded header, which the
server believes when this tool's address is in gateway.trusted_proxies), or
control messages on sockets (--flood-kind ws-control), as fast as they go or
at --flood-rps. It reports requests answered and rejected (429 or
rate_limited) per second, and with --pid the server's CPU per answered
request. Run it beside an arena run to see what a flood costs the players
(scripts/bench-flood.sh).

Flags:
`

// Main is `multijuego bots`. It returns the process exit code: 0 when the
// run completed (whether or not it kept up), 1 when it could not run, 2 for
// bad flags.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("multijuego bots", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var c Config
	var fc FloodConfig
	var asJSON, quiet bool
	fs.StringVar(&c.URL, "url", "", "the server, http://HOST:PORT or https://HOST:PORT (wss://); several gateways of one deployment comma-separated (players are spread over them)")
	fs.StringVar(&c.Mode, "mode", ModeArena, "arena, tictactoe, idle, auth or flood (one abusive client; the --flood-* flags)")
	fs.IntVar(&c.Players, "players", 8, fmt.Sprintf("simulated players (auth: existing devices, default %d)", authDevices))
	fs.BoolVar(&c.NewAccounts, "new-accounts", false, "auth: every login is a new device's first (a new guest account)")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measurement window, after the warm-up")
	fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "traffic before the measurement window opens")
	fs.IntVar(&c.MatchSize, "match-size", 0, "players per match (default: arena 8, tictactoe 2)")
	fs.IntVar(&c.TickRate, "tick-rate", 20, "arena tick rate asked for, Hz")
	fs.IntVar(&c.InputHz, "input-hz", 10, "arena inputs per player per second")
	fs.IntVar(&c.Concurrency, "concurrency", 32, fmt.Sprintf("parallel logins, connects and match creations (auth: clients logging in, default %d)", authConcurrency))
	fs.IntVar(&c.SourceIPs, "source-ips", 0, "spread sockets over 127.0.0.1..127.0.0.N (default: 1, or one per 20,000 sockets past 25,000)")
	fs.IntVar(&c.Readers, "readers", 1, "epoll loops reading the plain sockets (Linux; TLS sockets, and every socket elsewhere, have their own goroutine)")
	fs.IntVar(&c.Writers, "writers", 1, "goroutines writing the inputs")
	fs.StringVar(&c.Prefix, "prefix", "mjbot-", "device id prefix: the same prefix logs the same accounts in again")
	fs.IntVar(&c.PID, "pid", 0, "the server's process id, to report its CPU and memory")
	fs.StringVar(&c.MetricsURL, "metrics-url", "", "the server's Prometheus endpoint (default the first URL's /metrics; - for none); the game nodes' endpoints comma-separated for a split deployment")
	fs.DurationVar(&c.JoinTimeout, "join-timeout", 0, "time allowed to seat every player (default 30s + 1ms per player)")
	fs.BoolVar(&c.Reconnect, "reconnect", false, "a player whose socket the server closes (a gateway drained or restarted) connects again, to the next --url first, and resumes its match; the run then fails only on players that do not come back")
	fs.StringVar(&fc.Kind, "flood-kind", FloodHTTP, "flood: http (one request over and over) or ws-control (control messages on sockets)")
	fs.IntVar(&fc.RPS, "flood-rps", 0, "flood: requests or messages per second (0: as fast as the connections go)")
	fs.IntVar(&fc.Conns, "flood-conns", 4, "flood: connections (http: keep-alive connections; ws-control: sockets, one device each)")
	fs.StringVar(&fc.For, "flood-for", "", "flood, http: the client address to claim in a Forwarded header (the server must trust this tool's address in gateway.trusted_proxies); e.g. 192.0.2.1 to flood as a non-loopback client")
	fs.StringVar(&fc.Method, "flood-method", "POST", "flood, http: request method")
	fs.StringVar(&fc.Path, "flood-path", "/v1/auth/login", "flood, http: request path")
	fs.StringVar(&fc.Body, "flood-body", "", "flood, http: request body (default for POST: a login with a wrong password)")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object, the last line of stdout")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "multijuego bots: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if c.Mode == ModeAuth {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["players"] {
			c.Players = authDevices
		}
		if !set["concurrency"] {
			c.Concurrency = authConcurrency
		}
	}
	if !quiet {
		c.Progress = stderr
	}
	if c.Mode == ModeFlood {
		fc.URL, fc.Duration, fc.Warmup, fc.PID, fc.Progress, fc.Device = c.URL, c.Duration, c.Warmup, c.PID, c.Progress, c.Prefix+"flooder"
		return report(stdout, stderr, asJSON, func() (any, string, error) {
			res, err := RunFlood(ctx, fc)
			if err != nil {
				return nil, "", err
			}
			return res, FloodSummary(res), nil
		})
	}
	return report(stdout, stderr, asJSON, func() (any, string, error) {
		res, err := Run(ctx, c)
		if err != nil {
			return nil, "", err
		}
		return res, Summary(res), nil
	})
}

// report runs one measurement and prints its result, as JSON or as text.
func report(stdout, stderr io.Writer, asJSON bool, run func() (any, string, error)) int {
	res, text, err := run()
	if err != nil {
		fmt.Fprintf(stderr, "multijuego bots: %v\n", err)
		return 1
	}
	if asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	fmt.Fprint(stdout, text)
	return 0
}

// FloodSummary is a human-readable report of a flood.
func FloodSummary(r *FloodResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "flood %s of %s, %d connections", r.Kind, r.Target, r.Conns)
	if r.For != "" {
		fmt.Fprintf(&b, " as %s", r.For)
	}
	fmt.Fprintf(&b, ", window %.1fs\n", r.WindowS)
	fmt.Fprintf(&b, "answered %.0f/s, rejected %.0f/s (answers %v), transport errors %d", r.RequestsPerS, r.RejectionsPerS, r.Answers, r.Errors)
	if r.Reconnects > 0 {
		fmt.Fprintf(&b, ", sockets reopened %d", r.Reconnects)
	}
	fmt.Fprintf(&b, "\nlatency p50 %.2f  p99 %.2f  max %.2f ms\n", r.LatencyMs.P50, r.LatencyMs.P99, r.LatencyMs.Max)
	fmt.Fprintf(&b, "cpu: flood %.2f cores", r.FloodCPUCores)
	if r.ServerCPUCores != nil {
		fmt.Fprintf(&b, ", server %.2f cores", *r.ServerCPUCores)
	}
	if r.ServerCPUUsPerRequest != nil {
		fmt.Fprintf(&b, " (%.1f us of server CPU per answered request)", *r.ServerCPUUsPerRequest)
	}
	b.WriteString("\n")
	return b.String()
}

// Summary is a human-readable report of a run.
func Summary(r *Result) string {
	if r.Mode == ModeAuth {
		return authSummary(r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s: %d players, %d connected, %d in %d matches, window %.1fs\n", r.Mode, r.Players, r.PlayersConnected, r.PlayersInMatches, r.Matches, r.WindowS)
	fmt.Fprintf(&b, "inputs sent %.0f/s, states received %.0f/s of %.0f/s expected (delivery %.3f)\n", r.InputsSentPerS, r.StatesRecvPerS, r.StatesExpectedPerS, r.DeliveryRatio)
	lat := func(name string, l Latency) {
		fmt.Fprintf(&b, "%-17s p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms (%d samples)\n", name, l.P50, l.P90, l.P99, l.Max, l.Count)
	}
	lat("input to state", r.InputToStateMs)
	lat("tick to client", r.TickToClientMs)
	if r.ServerTickMs != nil {
		fmt.Fprintf(&b, "server tick       p50 %.2f  p90 %.2f  p99 %.2f ms (%.0f ticks)\n", r.ServerTickMs.P50, r.ServerTickMs.P90, r.ServerTickMs.P99, r.ServerTickMs.Ticks)
	}
	if r.GamesCompleted > 0 {
		fmt.Fprintf(&b, "games completed %d\n", r.GamesCompleted)
	}
	fmt.Fprintf(&b, "disconnects %d, errors %d\n", r.Disconnects, r.Errors)
	fmt.Fprintf(&b, "cpu: bots %.2f cores, machine busy %.2f cores", r.BotsCPUCores, r.MachineBusyCores)
	if r.ServerCPUCores != nil {
		fmt.Fprintf(&b, ", server %.2f cores", *r.ServerCPUCores)
	}
	b.WriteString("\n")
	if r.ServerRSSMiB != nil {
		fmt.Fprintf(&b, "server rss %.1f MiB", *r.ServerRSSMiB)
		if r.ServerKiBPerConn != nil {
			fmt.Fprintf(&b, " (%.1f MiB before the sockets; %.2f KiB per socket)", *r.ServerRSSBeforeMiB, *r.ServerKiBPerConn)
		}
		b.WriteString("\n")
	}
	if r.KeepsUp {
		b.WriteString("keeps up: yes\n")
	} else {
		fmt.Fprintf(&b, "keeps up: no (%s)\n", strings.Join(r.KeepsUpFailures, "; "))
	}
	return b.String()
}
