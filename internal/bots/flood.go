package bots

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/client"
)

// ModeFlood is one abusive client instead of players: requests from one
// address, as fast as Flood.Conns connections go (or at Flood.RPS),
// counting what the server refuses. Run it beside an arena run to see what
// a flood does to the players (scripts/bench-flood.sh).
const ModeFlood = "flood"

// Flood kinds.
const (
	// FloodHTTP sends one HTTP request over and over (Flood.Method,
	// Flood.Path, Flood.Body) on keep-alive connections; a refusal is a
	// 429.
	FloodHTTP = "http"
	// FloodWSControl opens sockets (one per connection) and sends control
	// messages (match.list) on them without waiting; a refusal is an
	// error envelope rate_limited. A socket the server closes (4005) is
	// opened again.
	FloodWSControl = "ws-control"
)

// FloodConfig is one flood.
type FloodConfig struct {
	URL      string
	Kind     string        // http or ws-control (default http)
	RPS      int           // requests (or messages) per second over all connections; 0: as fast as they go
	Conns    int           // connections (default 4)
	For      string        // http: the client address a trusted proxy names in Forwarded (empty: none)
	Method   string        // http: default POST
	Path     string        // http: default /v1/auth/login
	Body     string        // http: default a login with a wrong password
	Device   string        // ws-control: the flooder's device id
	Duration time.Duration // measurement window, after the warm-up
	Warmup   time.Duration
	PID      int       // the server's process, for its CPU (0: none)
	Progress io.Writer // progress lines (nil: none)
}

func (c *FloodConfig) defaults() error {
	if c.URL == "" {
		return errors.New("--url is required")
	}
	if _, err := parseHTTPURL(c.URL); err != nil {
		return err
	}
	switch c.Kind {
	case "":
		c.Kind = FloodHTTP
	case FloodHTTP, FloodWSControl:
	default:
		return fmt.Errorf("--flood-kind must be http or ws-control, got %q", c.Kind)
	}
	if c.Conns <= 0 {
		c.Conns = 4
	}
	if c.RPS < 0 {
		return fmt.Errorf("--flood-rps must be 0 (as fast as possible) or more, got %d", c.RPS)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("--duration must be positive, got %s", c.Duration)
	}
	if c.Method == "" {
		c.Method = http.MethodPost
	}
	if c.Path == "" {
		c.Path = "/v1/auth/login"
	}
	if c.Body == "" && c.Method == http.MethodPost {
		c.Body = `{"username":"flood-target","password":"not the password"}`
	}
	if c.Device == "" {
		c.Device = "mjbot-flooder-device"
	}
	return nil
}

// FloodResult is what a flood measured in its window. The JSON names are
// fixed: scripts read them.
type FloodResult struct {
	Mode           string         `json:"mode"`
	Kind           string         `json:"kind"`
	Target         string         `json:"target"`
	For            string         `json:"for,omitempty"`
	Conns          int            `json:"conns"`
	WindowS        float64        `json:"window_s"`
	RequestsPerS   float64        `json:"requests_per_s"`   // sent and answered
	RejectionsPerS float64        `json:"rejections_per_s"` // 429 or rate_limited
	Answers        map[string]int `json:"answers"`          // by HTTP status or error code ("ok" for a success)
	Reconnects     int64          `json:"reconnects,omitempty"`
	Errors         int64          `json:"errors"` // transport failures
	LatencyMs      Latency        `json:"latency_ms"`
	FloodCPUCores  float64        `json:"flood_cpu_cores"`
	ServerCPUCores *float64       `json:"server_cpu_cores,omitempty"`
	// ServerCPUUsPerRequest is the server's CPU time over the window per
	// answered request: the cost of a rejection when the server does
	// nothing else (run the flood alone for it).
	ServerCPUUsPerRequest *float64 `json:"server_cpu_us_per_request,omitempty"`
}

// flood is the state of one flood run.
type flood struct {
	cfg    FloodConfig
	window atomic.Bool
	errors atomic.Int64
	reconn atomic.Int64

	mu      sync.Mutex
	answers map[string]int
	hist    *histogram
}

// record counts one answer taken in the window.
func (f *flood) record(answer string, took time.Duration) {
	if !f.window.Load() {
		return
	}
	f.mu.Lock()
	f.answers[answer]++
	f.hist.record(took.Microseconds())
	f.mu.Unlock()
}

// pace waits for the connection's next slot at cfg.RPS (shared by the
// connections); a connection behind its schedule does not burst.
func (f *flood) pace(ctx context.Context, next *time.Time) bool {
	if f.cfg.RPS == 0 {
		return ctx.Err() == nil
	}
	gap := time.Duration(f.cfg.Conns) * time.Second / time.Duration(f.cfg.RPS)
	now := time.Now()
	if next.Before(now) {
		*next = now
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(*next)):
	}
	*next = next.Add(gap)
	return true
}

// RunFlood floods a running server from one client and reports what it
// refused.
func RunFlood(ctx context.Context, cfg FloodConfig) (*FloodResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	f := &flood{cfg: cfg, answers: map[string]int{}, hist: newHistogram()}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	work := f.httpConn
	if cfg.Kind == FloodWSControl {
		work = f.wsConn
	}
	hc := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Conns, MaxConnsPerHost: cfg.Conns}}
	defer hc.CloseIdleConnections()
	for i := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(ctx, hc, i)
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	progressf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bots: flood: "+format+"\n", args...)
		}
	}
	progressf("%s flood of %s from %d connections (warm-up %s)", cfg.Kind, cfg.URL, cfg.Conns, cfg.Warmup)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Warmup):
	}
	cpu0, srv0, t0 := selfCPU(), time.Duration(0), time.Now()
	if cfg.PID > 0 {
		srv0, _ = procCPU(cfg.PID)
	}
	f.window.Store(true)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Duration):
	}
	f.window.Store(false)
	win := time.Since(t0).Seconds()
	res := &FloodResult{Mode: ModeFlood, Kind: cfg.Kind, Target: cfg.URL, For: cfg.For, Conns: cfg.Conns, WindowS: round2(win),
		Errors: f.errors.Load(), Reconnects: f.reconn.Load(), FloodCPUCores: round2((selfCPU() - cpu0).Seconds() / win)}
	if cfg.Kind == FloodHTTP {
		res.Target = cfg.Method + " " + strings.TrimSuffix(cfg.URL, "/") + cfg.Path
	}
	f.mu.Lock()
	total, rejected := 0, 0
	for k, n := range f.answers {
		total += n
		if k == "429" || k == "rate_limited" {
			rejected += n
		}
	}
	res.Answers = f.answers
	res.LatencyMs = f.hist.latency()
	f.mu.Unlock()
	res.RequestsPerS = round2(float64(total) / win)
	res.RejectionsPerS = round2(float64(rejected) / win)
	if cfg.PID > 0 {
		if srv1, err := procCPU(cfg.PID); err == nil {
			cores := round2((srv1 - srv0).Seconds() / win)
			res.ServerCPUCores = &cores
			if total > 0 {
				us := round2(float64((srv1 - srv0).Microseconds()) / float64(total))
				res.ServerCPUUsPerRequest = &us
			}
		}
	}
	progressf("%.0f requests/s, %.0f rejections/s", res.RequestsPerS, res.RejectionsPerS)
	return res, nil
}

// httpConn sends the flood's request over and over on one keep-alive
// connection of hc until ctx ends.
func (f *flood) httpConn(ctx context.Context, hc *http.Client, _ int) {
	url := strings.TrimSuffix(f.cfg.URL, "/") + f.cfg.Path
	var next time.Time
	for f.pace(ctx, &next) {
		req, err := http.NewRequestWithContext(ctx, f.cfg.Method, url, strings.NewReader(f.cfg.Body))
		if err != nil {
			f.errors.Add(1)
			return
		}
		if f.cfg.Body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if f.cfg.For != "" {
			req.Header.Set("Forwarded", "for="+f.cfg.For)
		}
		start := time.Now()
		res, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				f.errors.Add(1)
				time.Sleep(10 * time.Millisecond) // a server that went away is not spun on
			}
			continue
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		f.record(strconv.Itoa(res.StatusCode), time.Since(start))
	}
}

// wsConn keeps one socket open and sends control messages on it until ctx
// ends, opening it again when the server closes it. The server keeps one
// socket per account, so each connection logs in its own device: Device
// plus the connection's number.
func (f *flood) wsConn(ctx context.Context, hc *http.Client, i int) {
	c, err := client.New(f.cfg.URL, client.WithHTTPClient(hc))
	if err != nil {
		f.errors.Add(1)
		return
	}
	if _, err := c.Device(ctx, fmt.Sprintf("%s-%d", f.cfg.Device, i)); err != nil {
		if ctx.Err() == nil {
			f.errors.Add(1)
		}
		return
	}
	var next time.Time
	for opened := false; ctx.Err() == nil; opened = true {
		rt, err := c.Connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				f.errors.Add(1)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		if opened {
			f.reconn.Add(1)
		}
		f.wsMessages(ctx, rt, &next)
		rt.Close()
	}
}

// wsMessages sends match.list requests on rt, each answered on its own
// goroutine (the socket is not waited on), until rt ends or ctx does.
// At most 64 requests wait for an answer per socket.
func (f *flood) wsMessages(ctx context.Context, rt *client.Realtime, next *time.Time) {
	slots := make(chan struct{}, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	for f.pace(ctx, next) {
		select {
		case <-rt.Done():
			return
		case slots <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := rt.ListMatches(rctx, "arena", "")
			var ae *client.APIError
			switch {
			case err == nil:
				f.record("ok", time.Since(start))
			case errors.As(err, &ae):
				f.record(ae.Code, time.Since(start))
			}
		}()
	}
}
