package main_test

import (
	"bytes"
	"encoding/json"
	"github.com/multijuego/multijuego/internal/tlstest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestLoadToolTLS runs `multijuego bots` over https:// and wss:// against
// the stock binary serving a self-signed certificate, trusted through
// SSL_CERT_FILE as scripts/bench-split.sh TLS=1 does. On Linux this is the
// tool's net.Conn path beside its epoll loops. The server speaks HTTPS
// only, so every login, socket and metrics scrape of a run went over TLS.
// A run that does not keep up on the shared machine (its server tick p99
// is the first to suffer) is tried up to 3 times before the test fails.
func TestLoadToolTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := tlstest.Files(t, dir)
	p := start(t, "--data-dir", t.TempDir(), "--auth-signup-ip-limit", "1000",
		"--gateway-tls-cert-file", certFile, "--gateway-tls-key-file", keyFile)
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("server URL %s, want https://", p.url)
	}
	for _, tc := range []struct {
		mode    string
		players int
	}{{"arena", 8}, {"tictactoe", 4}} {
		t.Run(tc.mode, func(t *testing.T) {
			type report struct {
				PlayersConnected int      `json:"players_connected"`
				PlayersInMatches int      `json:"players_in_matches"`
				StatesRecvPerS   float64  `json:"states_recv_per_s"`
				DeliveryRatio    float64  `json:"delivery_ratio"`
				InputsSentPerS   float64  `json:"inputs_sent_per_s"`
				GamesCompleted   int      `json:"games_completed"`
				Disconnects      int      `json:"disconnects"`
				Errors           int      `json:"errors"`
				ErrorSamples     []string `json:"error_samples"`
				KeepsUp          bool     `json:"keeps_up"`
				KeepsUpFailures  []string `json:"keeps_up_failures"`
			}
			var res report
			for attempt := 1; attempt <= 3; attempt++ {
				cmd := exec.Command(binary, "bots", "--url", p.url, "--mode", tc.mode, "--players", strconv.Itoa(tc.players),
					"--duration", "3s", "--warmup", "1s", "--prefix", "tls-"+tc.mode+"-", "--json")
				cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+certFile)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("bots: %v\n%s", err, stderr.String())
				}
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				res = report{}
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
					t.Fatalf("the last line of stdout is not JSON: %v\n%s", err, out)
				}
				if res.KeepsUp {
					break
				}
				t.Logf("attempt %d did not keep up: %v\n%s", attempt, res.KeepsUpFailures, stderr.String())
			}
			if !res.KeepsUp {
				t.Fatalf("did not keep up 3 times: %+v", res)
			}
			if res.PlayersConnected != tc.players || res.PlayersInMatches != tc.players {
				t.Errorf("connected %d, in matches %d, want %d", res.PlayersConnected, res.PlayersInMatches, tc.players)
			}
			if res.Errors != 0 || res.Disconnects != 0 {
				t.Errorf("errors %d %v, disconnects %d; want none", res.Errors, res.ErrorSamples, res.Disconnects)
			}
			if res.StatesRecvPerS <= 0 || res.InputsSentPerS <= 0 {
				t.Errorf("states received %v/s, inputs sent %v/s; want both above 0", res.StatesRecvPerS, res.InputsSentPerS)
			}
			switch tc.mode {
			case "arena":
				// 8 players, 20 states/s each.
				if res.StatesRecvPerS < 140 || res.DeliveryRatio < 0.95 {
					t.Errorf("states received %v/s (delivery %v), want about 160", res.StatesRecvPerS, res.DeliveryRatio)
				}
			case "tictactoe":
				if res.GamesCompleted < 1 {
					t.Errorf("no game completed: %+v", res)
				}
			}
		})
	}
}
