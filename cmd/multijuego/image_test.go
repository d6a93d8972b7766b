package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/repotest"
)

// imageSizeLimit guards the image's uncompressed size: the issue's "under
// 40 MB", in decimal megabytes. docs/deploy.md ("Container image") gives
// the size measured and what takes the space.
const imageSizeLimit = 40_000_000

// TestImage builds the OCI image with scripts/image.sh, runs it with podman
// as the Helm chart runs it (read-only root filesystem, user 65532, the
// state on a volume), waits for /readyz and plays tic-tac-toe through it
// with the load tool. buildah and podman need root here; with CI=true a
// missing tool or a non-root user fails the test.
func TestImage(t *testing.T) {
	t.Parallel()
	need := func(ok bool, why string) {
		if ok {
			return
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (required in CI; scripts/test.sh installs buildah, podman and runc)", why)
		}
		t.Skip(why)
	}
	for _, tool := range []string{"buildah", "podman", "runc"} {
		_, err := exec.LookPath(tool)
		need(err == nil, tool+" is not installed")
	}
	need(os.Geteuid() == 0, "buildah and podman run as root in this test")

	// podman's default ulimits are refused on this kind of machine, and
	// crun fails on its cgroups: no ulimits, runc.
	conf := filepath.Join(t.TempDir(), "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	image, name := "localhost/multijuego-test:"+suffix, "multijuego-test-"+suffix
	podman := func(args ...string) (string, error) {
		cmd := exec.Command("podman", append([]string{"--runtime", "runc"}, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}

	build := exec.Command(filepath.Join(repotest.Root(t), "scripts", "image.sh"), "v0.0.0-test")
	build.Env = append(os.Environ(), "IMAGE="+image, "CONTAINERS_CONF="+conf)
	t.Cleanup(func() {
		if out, err := podman("rmi", "--force", image); err != nil {
			t.Errorf("podman rmi: %v\n%s", err, out)
		}
	})
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	checkImageConfig(t, podman, image)

	// The state directory: a fresh host directory the image's user owns,
	// mounted where the image keeps its volume.
	state := t.TempDir()
	if err := os.Chown(state, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := podman("logs", name)
			t.Logf("container log:\n%s", out)
		}
		if out, err := podman("rm", "--force", name); err != nil {
			t.Errorf("podman rm: %v\n%s", err, out)
		}
	})
	if out, err := podman("run", "--detach", "--name", name, "--network", "host", "--read-only", "--user", "65532",
		"--volume", state+":/var/lib/multijuego", image, "serve", "--listen", addr, "--auth-hash-concurrency", "1"); err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	url := "http://" + addr
	waitContainerReady(t, podman, name, url)

	// The server runs as 65532, not root.
	pid, err := podman("inspect", "--format", "{{.State.Pid}}", name)
	if err != nil {
		t.Fatalf("podman inspect: %v\n%s", err, pid)
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t65532\t65532\t65532\t65532\n") {
		t.Errorf("the server's process does not run as 65532:\n%s", status)
	}

	playTicTacToe(t, url)

	// Its state went to the volume, and SIGTERM drains it to a clean exit.
	if _, err := os.Stat(filepath.Join(state, "data", "multijuego.db")); err != nil {
		t.Errorf("no database on the volume: %v", err)
	}
	if out, err := podman("stop", "--time", "30", name); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, out)
	}
	if code, err := podman("inspect", "--format", "{{.State.ExitCode}}", name); err != nil || code != "0" {
		t.Errorf("exit code after SIGTERM = %q (%v), want 0", code, err)
	}
}

// checkImageConfig checks what the chart relies on: the user, the
// entrypoint and command, the volume, and the size.
func checkImageConfig(t *testing.T, podman func(...string) (string, error), image string) {
	t.Helper()
	out, err := podman("image", "inspect", image)
	if err != nil {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	var got []struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			WorkingDir string
			Volumes    map[string]struct{}
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	c := got[0].Config
	for _, check := range []struct {
		what, got, want string
	}{
		{"user", c.User, "65532:65532"},
		{"entrypoint", strings.Join(c.Entrypoint, " "), "/usr/local/bin/multijuego"},
		{"cmd", strings.Join(c.Cmd, " "), "serve"},
		{"working directory", c.WorkingDir, "/var/lib/multijuego"},
		{"version label", c.Labels["org.opencontainers.image.version"], "v0.0.0-test"},
	} {
		if check.got != check.want {
			t.Errorf("image %s = %q, want %q", check.what, check.got, check.want)
		}
	}
	if _, ok := c.Volumes["/var/lib/multijuego"]; !ok {
		t.Errorf("image volumes = %v, want /var/lib/multijuego", c.Volumes)
	}
	t.Logf("image size %d bytes uncompressed (%.1f MiB)", got[0].Size, float64(got[0].Size)/(1<<20))
	if got[0].Size >= imageSizeLimit {
		t.Errorf("image size %d bytes, want under %d (40 MB)", got[0].Size, imageSizeLimit)
	}
}

// freeLoopbackAddr borrows a free loopback port: the container shares the
// host's network.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitContainerReady polls /readyz until it answers 200, failing early if the
// container exits.
func waitContainerReady(t *testing.T, podman func(...string) (string, error), name, url string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := hc.Get(url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if state, err := podman("inspect", "--format", "{{.State.Status}}", name); err != nil || state == "exited" {
			t.Fatalf("the container stopped before it was ready: %s %v", state, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s/readyz not 200 within 60s", url)
}

// playTicTacToe runs `multijuego bots --mode tictactoe` (the host's build)
// against the container: two players, seated together, at least one game
// played to its end, no error and no disconnect. Whether the server keeps
// up with a benchmark's bar is not this test's question.
func playTicTacToe(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "bots", "--url", url, "--mode", "tictactoe", "--players", "2",
		"--duration", "3s", "--warmup", "1s", "--prefix", "image-", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bots: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		PlayersInMatches int   `json:"players_in_matches"`
		GamesCompleted   int64 `json:"games_completed"`
		Disconnects      int64 `json:"disconnects"`
		Errors           int64 `json:"errors"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("the last line of stdout is not JSON: %v\n%s", err, out)
	}
	if res.PlayersInMatches != 2 || res.Disconnects != 0 || res.Errors != 0 {
		t.Errorf("bots: %d players seated, %d disconnects, %d errors; want 2, 0, 0\n%s",
			res.PlayersInMatches, res.Disconnects, res.Errors, lines[len(lines)-1])
	}
	if res.GamesCompleted < 1 {
		t.Errorf("bots: no tic-tac-toe game completed\n%s", lines[len(lines)-1])
	}
}
