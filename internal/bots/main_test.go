package bots

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad flags are refused with exit code 2 (parse errors) or 1 (values),
// and a message naming the flag.
func TestMainBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--players", "x"}, 2, "invalid value"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"--mode", "arena"}, 1, "--url is required"},
		{[]string{"--url", "http://127.0.0.1:1", "--mode", "chess"}, 1, "--mode must be"},
		{[]string{"--url", "http://127.0.0.1:1", "--players", "0"}, 1, "--players must be at least 1"},
		{[]string{"--url", "ws://127.0.0.1:1"}, 1, "--url must be http://HOST:PORT or https://"},
		{[]string{"--url", "http://127.0.0.1:1,ftp://127.0.0.1:2"}, 1, "--url must be http://HOST:PORT or https://"},
		// https:// is accepted: the run gets as far as a login over HTTPS.
		{[]string{"--url", "https://127.0.0.1:1", "--players", "1", "--quiet"}, 1, `device login of player 0: Post "https://127.0.0.1:1/v1/auth/device"`},
		{[]string{"--url", "http://127.0.0.1:1", "--mode", "tictactoe", "--match-size", "3"}, 1, "--match-size must be 2"},
		{[]string{"--url", "http://127.0.0.1:1", "--tick-rate", "500"}, 1, "--tick-rate must be 1..128"},
		{[]string{"--url", "http://192.0.2.1:80", "--source-ips", "3"}, 1, "must be on loopback"},
		{[]string{"--url", "http://127.0.0.1:1", "--mode", "flood", "--flood-kind", "udp"}, 1, "--flood-kind must be http or ws-control"},
		{[]string{"--url", "http://127.0.0.1:1", "--mode", "flood", "--flood-rps", "-1"}, 1, "--flood-rps must be 0"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}
