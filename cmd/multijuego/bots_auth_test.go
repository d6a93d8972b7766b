package main_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestLoadToolAuth runs `multijuego bots --mode auth` against the stock
// binary for a second, with existing devices and with new accounts, and
// checks its JSON report: logins answered, none failed, the latency
// percentiles and the server's CPU.
func TestLoadToolAuth(t *testing.T) {
	p := start(t, "--data-dir", t.TempDir(), "--auth-signup-ip-limit", "100000")
	pid := strconv.Itoa(p.cmd.Process.Pid)
	for name, extra := range map[string][]string{"existing": nil, "new": {"--new-accounts"}} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"bots", "--url", p.url, "--mode", "auth", "--players", "20", "--concurrency", "4",
				"--duration", "1s", "--warmup", "200ms", "--pid", pid, "--prefix", "auth-", "--json"}, extra...)
			cmd := exec.Command(binary, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("bots: %v\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			var res struct {
				Mode        string             `json:"mode"`
				NewAccounts bool               `json:"new_accounts"`
				Logins      int64              `json:"logins"`
				LoginsPerS  float64            `json:"logins_per_s"`
				LoginMs     map[string]float64 `json:"login_ms"`
				Errors      int64              `json:"errors"`
				ServerCPU   *float64           `json:"server_cpu_cores"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
				t.Fatalf("the last line of stdout is not JSON: %v\n%s", err, out)
			}
			if res.Mode != "auth" || res.NewAccounts != (extra != nil) || res.Logins == 0 || res.LoginsPerS <= 0 || res.Errors != 0 || res.ServerCPU == nil {
				t.Fatalf("report %+v; want logins, no errors and the server's CPU\n%s", res, stderr.String())
			}
			for _, q := range []string{"p50", "p90", "p99", "max"} {
				if v, ok := res.LoginMs[q]; !ok || v <= 0 {
					t.Errorf("login_ms.%s = %v", q, res.LoginMs)
				}
			}
		})
	}
}
