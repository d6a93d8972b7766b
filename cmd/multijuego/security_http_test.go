package main_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/tlstest"
)

// trickle sends prefix on a new connection to addr, then payload one byte
// every gap, and reports how many bytes of payload the server took before
// it answered or cut the connection, and the first line of its answer
// (empty: none, only the close). A connection still open after give is
// reported with os.ErrDeadlineExceeded.
func trickle(addr, prefix, payload string, gap, give time.Duration) (sent int, answer string, err error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	if _, err := io.WriteString(c, prefix); err != nil {
		return 0, "", err
	}
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range len(payload) {
			select {
			case <-stop:
				return
			case <-time.After(gap):
			}
			if _, err := c.Write([]byte{payload[i]}); err != nil {
				return
			}
			mu.Lock()
			sent = i + 1
			mu.Unlock()
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(give))
	line, rerr := bufio.NewReader(c).ReadString('\n')
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		return sent, line, rerr
	}
	return sent, strings.TrimSpace(line), nil
}

// Slowloris: requests whose headers arrive one byte at a time, or whose
// body trickles in, hold a connection only for
// gateway.read_header_timeout or gateway.read_timeout, and other clients
// are served meanwhile.
func TestSecuritySlowloris(t *testing.T) {
	t.Parallel()
	p := start(t, "--data-dir", t.TempDir(), "--gateway-read-header-timeout", "1s", "--gateway-read-timeout", "2s")
	addr := strings.TrimPrefix(p.url, "http://")
	const gap, give = 100 * time.Millisecond, 8 * time.Second
	headers := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 100) + "\r\n\r\n"
	body := `{"username":"nobody","password":"` + strings.Repeat("b", 100) + `"}`
	bodyReq := fmt.Sprintf("POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))

	type result struct {
		kind   string
		sent   int
		answer string
		err    error
	}
	results := make(chan result, 20)
	for range 10 {
		go func() {
			sent, answer, err := trickle(addr, "", headers, gap, give)
			results <- result{"headers", sent, answer, err}
		}()
		go func() {
			sent, answer, err := trickle(addr, bodyReq, body, gap, give)
			results <- result{"body", sent, answer, err}
		}()
	}
	// Meanwhile a normal client is served.
	time.Sleep(500 * time.Millisecond)
	hc := &http.Client{Timeout: 2 * time.Second}
	for range 5 {
		res, err := hc.Get(p.url + "/healthz")
		if err != nil {
			t.Fatalf("a normal request during the slowloris: %v", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("a normal request during the slowloris: %d", res.StatusCode)
		}
	}
	for range 20 {
		r := <-results
		switch {
		case r.err != nil:
			t.Errorf("%s trickle: %v after %d bytes; want the server to cut it", r.kind, r.err, r.sent)
		default:
			t.Logf("%s trickle: cut after %d bytes, answer %q", r.kind, r.sent, r.answer)
		case r.kind == "headers" && r.sent >= len(headers):
			t.Errorf("headers trickle: all %d bytes taken (answer %q)", r.sent, r.answer)
		case r.kind == "body" && (r.sent >= len(body) || strings.HasPrefix(r.answer, "HTTP/1.1 2")):
			t.Errorf("body trickle: %d of %d bytes taken, answer %q", r.sent, len(body), r.answer)
		}
	}
}

// series counts the samples /metrics shows (lines that are not comments).
func series(t *testing.T, p *proc) (n, size int) {
	t.Helper()
	res, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, l := range strings.Split(string(raw), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n, len(raw)
}

// Finding 5: 5,000 made-up methods grew /metrics from 95 KB to 10 MB.
// Now 5,000 requests with made-up methods and paths add a bounded number
// of series (each label folds unknown values into one).
func TestSecurityMetricsBounded(t *testing.T) {
	t.Parallel()
	p := start(t, "--data-dir", t.TempDir())
	// One of each known answer first, so the count below only grows by
	// what made-up values could add.
	hc := &http.Client{Timeout: 5 * time.Second}
	send := func(method, path string) {
		req, _ := http.NewRequest(method, p.url+path, nil)
		res, err := hc.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	send("FROB1", "/v1/nothing/1")
	send("GET", "/v1/nothing/1")
	before, size := series(t, p)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1250 {
				n := w*1250 + i
				send(fmt.Sprintf("M%04dX", n), fmt.Sprintf("/v1/made-up-%d/%d", n, n))
			}
		}()
	}
	wg.Wait()
	after, sizeAfter := series(t, p)
	if after-before > 20 || sizeAfter > 2*size {
		t.Fatalf("5,000 made-up methods and paths: /metrics went from %d series (%d bytes) to %d (%d bytes)", before, size, after, sizeAfter)
	}
}

// A TLS handshake trickled a byte at a time (a ClientHello record that
// never completes) is cut after gateway.read_header_timeout, as plain
// HTTP headers are: wss:// sockets leave crypto/tls for the realtime
// transport (wsnet.ListenTLS), and the handshake must stay bounded.
func TestSecuritySlowTLSHandshake(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _ := tlstest.Files(t, t.TempDir())
	p := start(t, "--data-dir", t.TempDir(), "--gateway-read-header-timeout", "1s",
		"--gateway-tls-cert-file", certFile, "--gateway-tls-key-file", keyFile)
	hello := "\x16\x03\x01\x00\xc8" + strings.Repeat("\x01", 200) // a handshake record of 200 bytes
	sent, answer, err := trickle(strings.TrimPrefix(p.url, "https://"), "", hello, 100*time.Millisecond, 8*time.Second)
	if err != nil || sent >= len(hello) {
		t.Fatalf("trickled ClientHello: %d of %d bytes taken, answer %q, %v; want the server to cut it", sent, len(hello), answer, err)
	}
	t.Logf("trickled ClientHello cut after %d bytes", sent)
}

// The load tool's flood (scripts/bench-flood.sh measures what it costs
// arena players) against the binary: one client claiming a non-loopback
// address through the trusted proxy is refused by the per-address rate
// limits, nearly every request a 429. The warm-up spends the attempts the
// limits let through (wrong passwords, each an argon2id hash: 25 to 140 ms
// on a loaded machine, which made a 200 ms warm-up let some reach the
// window: 4 of 21 answers in one CI run), so the window sees the refusals.
func TestSecurityFloodTool(t *testing.T) {
	t.Parallel()
	p, _ := secServer(t)
	out, err := exec.Command(binary, "bots", "--url", p.url, "--mode", "flood", "--flood-for", "192.0.2.1",
		"--flood-conns", "2", "--flood-rps", "500", "--duration", "1s", "--warmup", "1s", "--json", "--quiet").Output()
	if err != nil {
		t.Fatalf("bots --mode flood: %v", err)
	}
	var res struct {
		RequestsPerS   float64        `json:"requests_per_s"`
		RejectionsPerS float64        `json:"rejections_per_s"`
		Answers        map[string]int `json:"answers"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	if res.Answers["429"] == 0 || res.RejectionsPerS < 0.9*res.RequestsPerS {
		t.Fatalf("flood of POST /v1/auth/login from one address: %+v, want nearly all 429", res)
	}
}
