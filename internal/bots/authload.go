package bots

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/client"
)

// ModeAuth is a login storm: clients that only log in, as fast as the
// server answers, from Concurrency goroutines (default 50). Existing
// devices (Players of them, logged in once each before the clock starts)
// are logged in again round-robin; with NewAccounts every login is a new
// device's first (a new guest account). No sockets. The clients are
// lean HTTP/1.1 keep-alive connections of their own (authconn.go), not
// the SDK's, so that the tool takes less of the CPU the server needs; the
// warm-up logs in with the SDK.
const ModeAuth = "auth"

// authLoginSLO is the p99 a login storm must stay under to keep up.
const authLoginSLO = 50 // ms

// authWorker is one client goroutine's share of the storm.
type authWorker struct {
	lc     *loginConn
	hist   *histogram // logins answered in the window
	ok     int64      // in the window
	errors int64      // in the window
}

// runAuth is Run for ModeAuth.
func runAuth(ctx context.Context, cfg Config) (*Result, error) {
	r := &run{cfg: cfg, urls: cfg.urls(), start: time.Now(), hc: newHTTPClient(cfg.Concurrency)}
	defer r.hc.CloseIdleConnections()
	res := &Result{Mode: cfg.Mode, Players: cfg.Players, NewAccounts: cfg.NewAccounts}

	// Device ids: the existing ones are the --prefix's, as the game modes
	// name them (a run of another mode with the same prefix reuses them);
	// new ones carry a nonce of this run, so no two runs collide.
	bodies := newDeviceBodies(cfg.Prefix, "-device")
	if cfg.NewAccounts {
		nonce := make([]byte, 6)
		_, _ = rand.Read(nonce)
		bodies = newDeviceBodies(cfg.Prefix+hex.EncodeToString(nonce)+"-", "")
	} else {
		// Warm-up, not timed: every device logs in once (its account is
		// created the first time the prefix is used).
		t0 := time.Now()
		if err := r.authenticate(ctx); err != nil {
			return nil, err
		}
		res.AuthS = round2(time.Since(t0).Seconds())
		r.progressf("%d devices logged in once in %.1fs", cfg.Players, res.AuthS)
	}

	targets := make([]target, len(r.urls))
	for i, u := range r.urls {
		t, err := parseTarget(u)
		if err != nil {
			return nil, err
		}
		targets[i] = t
	}
	workers := make([]*authWorker, cfg.Concurrency)
	for i := range workers {
		j := i % len(r.urls)
		workers[i] = &authWorker{lc: newLoginConn(targets[j], strings.TrimRight(r.urls[j], "/")), hist: newHistogram()}
	}
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { r.authLoop(ctx, w, stop, &next, bodies) })
	}
	stopped := false
	halt := func() {
		if !stopped {
			close(stop)
			wg.Wait()
			stopped = true
		}
	}
	defer func() {
		halt()
		for _, w := range workers {
			w.lc.close()
		}
	}()

	line := func() string { return fmt.Sprintf("%d logins, %d errors", next.Load(), r.errors.Load()) }
	if err := r.waitProgress(ctx, cfg.Warmup, "warm-up", line); err != nil {
		return nil, err
	}
	u0 := sampleUsage(cfg.PID)
	r.window.Store(true)
	err := r.waitProgress(ctx, cfg.Duration, "measuring", line)
	r.window.Store(false)
	u1 := sampleUsage(cfg.PID)
	halt()
	if err != nil {
		return nil, err
	}

	wall := u0.cores(res, u1)
	res.WindowS = round2(wall)
	if res.ServerCPUCores != nil {
		if rss, err := procRSS(cfg.PID); err == nil {
			m := round2(float64(rss) / (1 << 20))
			res.ServerRSSMiB = &m
		}
	}
	r.authResult(res, workers, wall)
	return res, nil
}

// authResult fills in the logins, their latency, the errors and whether
// the server kept up.
func (r *run) authResult(res *Result, workers []*authWorker, wall float64) {
	hist := newHistogram()
	for _, w := range workers {
		hist.merge(w.hist)
		res.Logins += w.ok
		res.Errors += w.errors
	}
	res.LoginsPerS = round2(float64(res.Logins) / wall)
	lat := hist.latency()
	res.LoginMs = &lat
	r.errMu.Lock()
	res.ErrorSamples = append([]string(nil), r.errSamples...)
	r.errMu.Unlock()
	var f []string
	if res.Errors > 0 {
		f = append(f, fmt.Sprintf("%d errors", res.Errors))
	}
	if lat.Count == 0 || lat.P99 >= authLoginSLO {
		f = append(f, fmt.Sprintf("login p99 %.2f ms >= %d ms", lat.P99, authLoginSLO))
	}
	res.KeepsUp = len(f) == 0
	res.KeepsUpFailures = append([]string{}, f...)
}

// authLoop logs devices in, one after another, until stop; in the window it
// records each answer's latency and counts it.
func (r *run) authLoop(ctx context.Context, w *authWorker, stop <-chan struct{}, next *atomic.Int64, bodies deviceBodies) {
	var body []byte
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		n := next.Add(1) - 1
		if !r.cfg.NewAccounts {
			n %= int64(r.cfg.Players)
		}
		body = bodies.appendBody(body[:0], n)
		t0 := time.Now()
		err := w.lc.login(ctx, body, t0)
		us := time.Since(t0).Microseconds()
		if !r.window.Load() {
			if err != nil && ctx.Err() == nil {
				r.fail("%s", loginError(err))
			}
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				w.errors++
				r.fail("%s", loginError(err))
			}
			continue
		}
		w.ok++
		w.hist.record(us)
	}
}

// loginError names the settings to lift when the server rate-limited the
// tool's address (its message names the limit).
func loginError(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code == "rate_limited" {
		return fmt.Sprintf("device login: %v (%s)", err, authLimitsHint)
	}
	return fmt.Sprintf("device login: %v", err)
}

// authLimitsHint says which server flags a login storm from one address
// needs.
const authLimitsHint = "a login storm comes from one address: unless the server is the embedded default listening on loopback " +
	"(which exempts loopback clients), start it with --limits-ip-auth off, and --auth-signup-ip-limit 100000000 for --new-accounts"

// deviceBodies writes the login bodies of the storm's devices: device i's
// id is prefix, i in decimal, then suffix.
type deviceBodies struct{ head, tail []byte }

func newDeviceBodies(prefix, suffix string) deviceBodies {
	p, _ := json.Marshal(prefix)
	q, _ := json.Marshal(suffix)
	return deviceBodies{
		head: append([]byte(`{"device_id":`), p[:len(p)-1]...),
		tail: append(q[1:], '}'),
	}
}

// appendBody appends device i's login body, {"device_id":"..."}.
func (d deviceBodies) appendBody(dst []byte, i int64) []byte {
	dst = append(dst, d.head...)
	dst = strconv.AppendInt(dst, i, 10)
	return append(dst, d.tail...)
}

// waitProgress waits d, writing phase and what line says every 5 s.
func (r *run) waitProgress(ctx context.Context, d time.Duration, phase string, line func() string) error {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, 5*time.Second)):
		}
		r.progressf("%s: %s", phase, line())
	}
}

// authSummary is Summary for ModeAuth.
func authSummary(r *Result) string {
	var b strings.Builder
	kind := "existing devices"
	if r.NewAccounts {
		kind = "new accounts"
	}
	fmt.Fprintf(&b, "mode auth (%s): %d logins in %.1fs: %.0f logins/s\n", kind, r.Logins, r.WindowS, r.LoginsPerS)
	if l := r.LoginMs; l != nil {
		fmt.Fprintf(&b, "login             p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms (%d samples)\n", l.P50, l.P90, l.P99, l.Max, l.Count)
	}
	fmt.Fprintf(&b, "errors %d\n", r.Errors)
	fmt.Fprintf(&b, "cpu: bots %.2f cores, machine busy %.2f cores", r.BotsCPUCores, r.MachineBusyCores)
	if r.ServerCPUCores != nil {
		fmt.Fprintf(&b, ", server %.2f cores", *r.ServerCPUCores)
	}
	b.WriteString("\n")
	if r.KeepsUp {
		b.WriteString("keeps up: yes\n")
	} else {
		fmt.Fprintf(&b, "keeps up: no (%s)\n", strings.Join(r.KeepsUpFailures, "; "))
	}
	return b.String()
}
