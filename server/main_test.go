package server_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/server"
)

func TestMainVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := server.Main(context.Background(), []string{"version"}, &stdout, &stderr, nil,
		server.Mode{Name: tictactoe.Mode, Factory: tictactoe.New})
	if code != 0 {
		t.Fatalf("exit code %d, want 0; stderr: %s", code, &stderr)
	}
	if v, ok := strings.CutPrefix(stdout.String(), "multijuego "); !ok || strings.TrimSpace(v) == "" || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want \"multijuego VERSION\" and nothing on stderr", &stdout, &stderr)
	}
}

func TestMainRefusals(t *testing.T) {
	ok := server.Mode{Name: tictactoe.Mode, Factory: tictactoe.New}
	var nilFactory match.Factory
	for _, tc := range []struct {
		name  string
		args  []string
		modes []server.Mode
		want  string // on stderr
	}{
		{"unknown flag", []string{"serve", "--no-such-flag"}, []server.Mode{ok}, "multijuego: flag provided but not defined: -no-such-flag"},
		{"unknown command", []string{"frobnicate"}, []server.Mode{ok}, `multijuego: unknown command "frobnicate"`},
		{"bad value", []string{"serve", "--listen", "nowhere"}, []server.Mode{ok}, "listen"},
		// Mode mistakes are refused whatever the command, so a studio sees
		// them on its first run.
		{"empty mode name", []string{"version"}, []server.Mode{{Factory: tictactoe.New}}, `game mode 1 (""): the name is empty`},
		{"long mode name", []string{"version"}, []server.Mode{ok, {Name: strings.Repeat("m", 65), Factory: tictactoe.New}},
			"the name is longer than 64 bytes"},
		{"control character", []string{"version"}, []server.Mode{{Name: "tic\ntac", Factory: tictactoe.New}}, "control character"},
		{"bad UTF-8", []string{"version"}, []server.Mode{{Name: "\xff", Factory: tictactoe.New}}, "not valid UTF-8"},
		{"no factory", []string{"version"}, []server.Mode{{Name: "rps", Factory: nilFactory}}, `game mode "rps" has no Factory`},
		{"twice", []string{"version"}, []server.Mode{ok, ok}, `game mode "tictactoe" is given twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := server.Main(ctx, tc.args, &stdout, &stderr, nil, tc.modes...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want it to contain %q", &stderr, tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", &stdout)
			}
		})
	}
}
