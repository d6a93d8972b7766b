package kvtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/repotest"
)

// installMu serialises the npm install of the tests of one process.
var installMu sync.Mutex

// Dynalite starts a private dynalite (a local DynamoDB, in memory) on a
// free loopback port and returns its endpoint, e.g. "http://127.0.0.1:41234".
// It is killed when the test ends. dynalite comes from scripts/dynalite
// (installed there with npm ci when node_modules is missing). Without node
// and npm the test is skipped, or fails when CI=true.
func Dynalite(t testing.TB) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI for the DynamoDB tests: %v", tool, err)
			}
			t.Skipf("%s not installed, DynamoDB tests skipped (set CI=true to make this fatal): %v", tool, err)
		}
	}
	dir := filepath.Join(repotest.Root(t), "scripts", "dynalite")
	cli := filepath.Join(dir, "node_modules", "dynalite", "cli.js")
	install(t, dir, cli)

	// The port is free when chosen but could be taken before node binds it:
	// try a few.
	var lastErr error
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		endpoint, err := startDynalite(t, cli, port)
		if err == nil {
			return endpoint
		}
		lastErr = err
	}
	t.Fatalf("dynalite: %v", lastErr)
	return ""
}

// install runs npm ci (the versions of package-lock.json) when dynalite is
// not installed yet.
func install(t testing.TB, dir, cli string) {
	t.Helper()
	installMu.Lock()
	defer installMu.Unlock()
	if _, err := os.Stat(cli); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Skipf("npm ci in %s failed, DynamoDB tests skipped (set CI=true to make this fatal): %v\n%s", dir, err, out)
}

// startDynalite runs dynalite on port and waits until it answers HTTP.
func startDynalite(t testing.TB, cli string, port int) (string, error) {
	var out limitedBuffer
	cmd := exec.Command("node", cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "50", "--deleteTableMs", "50", "--updateTableMs", "50")
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() { // ends when node exits: killed at cleanup at the latest
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("exited early: %s", out.String())
		default:
		}
		resp, err := client.Get(endpoint)
		if err == nil {
			resp.Body.Close()
			t.Cleanup(stop)
			return endpoint, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("no answer on %s after 30s: %v\n%s", endpoint, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// limitedBuffer keeps the first 64 KiB of a process's output and drops the
// rest.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const outputLimit = 64 << 10

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := outputLimit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
