package server_test

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multijuego/multijuego/client"
)

// The protocol of examples/studio's rps mode (its package is in another
// module, so the test speaks the documented protocol, as any client would).
const (
	rpsMode         = "rps"
	opThrow  uint16 = 1
	opState  uint16 = 2
	opError  uint16 = 3
	rock            = 1
	paper           = 2
	scissors        = 3
)

// studioVersion is linked into the binary, as a studio's release build sets
// its version.
const studioVersion = "studio-test"

type rpsState struct {
	Status  string `json:"status"`
	Round   int    `json:"round"`
	Winner  string `json:"winner"`
	Players []struct {
		UserID string `json:"user_id"`
		Wins   int    `json:"wins"`
	} `json:"players"`
}

// TestStudioBinary builds examples/studio as a studio would, runs it as an
// operator would, and plays its own game mode with the public SDK: the mode
// is served, its results reach persistence, and SIGTERM stops it cleanly.
func TestStudioBinary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot build examples/studio")
	}
	bin := buildStudio(t, goTool)
	p := startStudio(t, bin)
	waitReady(t, p.url)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := guest(ctx, t, p.url, "studio-test-device-a"), guest(ctx, t, p.url, "studio-test-device-b")
	m, err := a.CreateMatch(ctx, rpsMode, map[string]string{"wins": "2"})
	if err != nil {
		t.Fatalf("create an rps match: %v", err)
	}
	if m.Mode != rpsMode || m.MaxPlayers != 2 {
		t.Fatalf("match %+v, want mode rps with 2 seats", m)
	}
	if _, err := a.CreateMatch(ctx, "tictactoe", nil); err == nil {
		t.Error("the studio's server created a tictactoe match; it offers only rps")
	}
	ra, rb := connect(ctx, t, a, m.MatchID), connect(ctx, t, b, m.MatchID)
	idA, idB := a.Tokens().AccountID, b.Tokens().AccountID
	waitState(t, ra, func(s rpsState) bool { return s.Status == "playing" && s.Round == 1 })

	// A refused throw is answered to its sender only.
	send(t, rb, 0)
	if got := waitError(t, rb); got != "bad_throw" {
		t.Errorf("error %q, want bad_throw", got)
	}
	send(t, ra, rock)
	send(t, rb, scissors)
	waitState(t, rb, func(s rpsState) bool { return s.Round == 2 })
	send(t, ra, paper)
	send(t, rb, rock)
	for _, r := range []*client.Realtime{ra, rb} {
		s := waitState(t, r, func(s rpsState) bool { return s.Status != "playing" })
		if s.Status != "won" || s.Winner != idA || s.Players[0].Wins != 2 || s.Players[1].Wins != 0 {
			t.Errorf("final state %+v, want won by %s 2-0", s, idA)
		}
		if got := waitClosed(t, r); got != "match_ended" {
			t.Errorf("match.closed reason %q, want match_ended", got)
		}
	}
	checkRecord(ctx, t, p.url, a.Tokens().AccessToken, m.MatchID, idA, idB)
	ra.Close()
	rb.Close()

	if code := p.stop(); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0\n%s", code, p.log())
	}
}

// buildStudio builds examples/studio's binary, with the version set the
// way a studio's release build would.
func buildStudio(t *testing.T, goTool string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "studio")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin,
		"-ldflags", "-X github.com/multijuego/multijuego/internal/app.Version="+studioVersion, ".")
	cmd.Dir = filepath.Join("..", "examples", "studio")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", cmd.Dir, err, out)
	}
	t.Logf("built examples/studio in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// studio is the running binary.
type studio struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the process has exited

	mu     sync.Mutex
	stderr bytes.Buffer
}

func (p *studio) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *studio) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startStudio starts `studio serve` on a free port with its own data
// directory, and learns its URL from the line it prints on stdout.
func startStudio(t *testing.T, bin string) *studio {
	t.Helper()
	p := &studio{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	// The operator's MULTIJUEGO_* settings must not leak into the test.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MULTIJUEGO_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Stderr = p
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("studio's log:\n%s", p.log())
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // only the first line matters; keep draining
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		prefix := "multijuego " + studioVersion + " listening on "
		u, ok := strings.CutPrefix(line, prefix)
		if !ok {
			t.Fatalf("first line %q, want %q then the URL", line, prefix)
		}
		p.url = u
	case <-p.done:
		t.Fatalf("studio exited at start\n%s", p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("studio printed no URL within 30s\n%s", p.log())
	}
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *studio) stop() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("studio did not exit within 30s of SIGTERM\n%s", p.log())
	}
	return p.cmd.ProcessState.ExitCode()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 within 30s (last: %v %v)", url, res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func guest(ctx context.Context, t *testing.T, url, device string) *client.Client {
	t.Helper()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Device(ctx, device); err != nil {
		t.Fatalf("guest login: %v", err)
	}
	return c
}

func connect(ctx context.Context, t *testing.T, c *client.Client, matchID string) *client.Realtime {
	t.Helper()
	r, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := r.Join(ctx, matchID); err != nil {
		t.Fatalf("join: %v", err)
	}
	return r
}

func send(t *testing.T, r *client.Realtime, hand byte) {
	t.Helper()
	if err := r.Send(opThrow, []byte{hand}); err != nil {
		t.Fatal(err)
	}
}

// nextFrame returns the next frame with op, within 10s.
func nextFrame(t *testing.T, r *client.Realtime, op uint16) client.Frame {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-r.Frames():
			if !ok {
				t.Fatalf("socket ended: %v", r.Err())
			}
			if f.Op == op {
				return f
			}
		case <-timeout:
			t.Fatalf("no frame with op %d within 10s", op)
		}
	}
}

func waitState(t *testing.T, r *client.Realtime, cond func(rpsState) bool) rpsState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var s rpsState
		if err := json.Unmarshal(nextFrame(t, r, opState).Payload, &s); err != nil {
			t.Fatal(err)
		}
		if cond(s) {
			return s
		}
	}
	t.Fatal("no such state within 10s")
	return rpsState{}
}

func waitError(t *testing.T, r *client.Realtime) string {
	t.Helper()
	var m struct{ Error string }
	if err := json.Unmarshal(nextFrame(t, r, opError).Payload, &m); err != nil {
		t.Fatal(err)
	}
	return m.Error
}

// waitClosed returns the reason of the socket's next match.closed.
func waitClosed(t *testing.T, r *client.Realtime) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-r.Events():
			if !ok {
				t.Fatalf("socket ended: %v", r.Err())
			}
			if e.Type == "match.closed" {
				var p struct{ Reason string }
				_ = json.Unmarshal(e.Payload, &p)
				return p.Reason
			}
		case <-timeout:
			t.Fatal("no match.closed within 10s")
		}
	}
}

// checkRecord waits until persistence has stored the match's end (GET
// /v1/matches/{id}, then its key moments) and checks what it stored.
func checkRecord(ctx context.Context, t *testing.T, url, token, matchID, winner, loser string) {
	t.Helper()
	var got struct {
		Live  bool `json:"live"`
		Match struct {
			Mode      string  `json:"mode"`
			EndedAt   *string `json:"ended_at"`
			EndReason string  `json:"end_reason"`
			Results   []struct {
				AccountID string `json:"account_id"`
				Placement int    `json:"placement"`
				Score     int64  `json:"score"`
			} `json:"results"`
		} `json:"match"`
	}
	poll(ctx, t, url+"/v1/matches/"+matchID, token, &got, func() bool { return !got.Live && got.Match.EndedAt != nil })
	m := got.Match
	if m.Mode != rpsMode || m.EndReason != "winner" || len(m.Results) != 2 ||
		m.Results[0].AccountID != winner || m.Results[0].Placement != 1 || m.Results[0].Score != 2 ||
		m.Results[1].AccountID != loser || m.Results[1].Placement != 2 || m.Results[1].Score != 0 {
		t.Errorf("stored match %+v, want rps won by %s (placement 1, score 2) over %s", m, winner, loser)
	}
	var evs struct {
		Events []struct{ Name string } `json:"events"`
	}
	poll(ctx, t, url+"/v1/matches/"+matchID+"/events", token, &evs, func() bool { return len(evs.Events) >= 2 })
	for _, e := range evs.Events {
		if e.Name != "round" {
			t.Errorf("stored key moment %q, want round", e.Name)
		}
	}
}

// poll GETs url into out until done says so or ctx ends; 404 means "not
// stored yet".
func poll(ctx context.Context, t *testing.T, url, token string, out any, done func() bool) {
	t.Helper()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			last = fmt.Sprintf("%d %s", res.StatusCode, body)
			if res.StatusCode == http.StatusOK {
				if err := json.Unmarshal(body, out); err != nil {
					t.Fatalf("GET %s: %v", url, err)
				}
				if done() {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s: not there before the deadline; last answer: %s %v", url, last, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
