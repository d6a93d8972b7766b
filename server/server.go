// Package server is the multijuego binary as a library: a studio's own
// main hands it the game modes it wrote and gets everything the stock
// `multijuego` command does — every role (gateway, auth, game,
// persistence), every configuration key (YAML file, MULTIJUEGO_*
// environment variables, flags) and every command (serve, migrate, keys,
// accounts, config, dlq, bots, version). cmd/multijuego itself is nothing
// more than a call to [Run] with the two reference games.
//
// # A studio's main
//
// A game mode is a [match.Handler] (see package match and
// docs/game-modes.md); register its [match.Factory] under a name:
//
//	package main
//
//	import (
//		"github.com/multijuego/multijuego/server"
//
//		"example.com/studio/rps"
//	)
//
//	func main() {
//		server.Run(server.Mode{Name: rps.Mode, Factory: rps.New})
//	}
//
// Build it with `go build`, then run it like the stock binary:
// `./studio serve` serves every role on the embedded default (SQLite in
// ./data, NATS embedded, 127.0.0.1:7350), `./studio serve --help` lists
// every key, `./studio migrate up` migrates a database, and so on.
// Clients create matches of the studio's modes by name, with the same API
// and realtime protocol (docs/protocol.md). examples/studio in the
// repository is a complete, tested studio module.
//
// # Choosing the entry point
//
// [Run] is the whole of a main: it stops the server gracefully on SIGINT
// or SIGTERM (a second signal kills at once) and exits the process with
// the command's code. [Main] is the same without the process around it:
// arguments, output and environment are parameters and the exit code is
// returned, so tests (and programs with their own signal handling) can
// call it in-process.
//
// # Version
//
// `version` and the start-up line ("multijuego VERSION listening on URL")
// print the build's version, "dev" unless set at link time with
// -ldflags "-X github.com/multijuego/multijuego/internal/app.Version=v1.2.3".
package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"unicode/utf8"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/match"
)

// Mode is a game mode the server offers: clients create its matches by
// Name, and the game role calls Factory once per match for a new
// [match.Handler].
type Mode struct {
	// Name is what clients pass as the mode when they create a match
	// ("tictactoe", "rps"). It is stored with every match result and
	// leaderboard row, so keep it once players have played: 1 to 64
	// bytes of UTF-8 without control characters, unique within the
	// server.
	Name string
	// Factory makes one handler per match; it must not be nil.
	Factory match.Factory
}

// Main runs one command of the server — args as they follow the program
// name, for example {"serve", "--listen", "127.0.0.1:0"} — and returns the
// process exit code: 0 on success, 1 when the command failed, 2 for a
// usage or configuration error (messages go to stderr). `serve` runs until
// ctx is cancelled, then drains and returns. environ supplies the
// MULTIJUEGO_* variables (os.Environ() in a real process). modes are the
// game modes `serve` offers; an invalid list (see [Mode]) is a usage error
// whatever the command, so a studio finds the mistake on its first run.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string, modes ...Mode) int {
	converted, err := convert(modes)
	if err != nil {
		fmt.Fprintf(stderr, "multijuego: %v\n", err)
		return 2
	}
	return app.Run(ctx, args, stdout, stderr, environ, converted...)
}

// Run is a complete main function: it runs the command in os.Args with the
// process's environment, stdout and stderr, and exits the process with the
// command's code. SIGINT or SIGTERM cancels the command (`serve` drains:
// matches get game.shutdown_grace to end, in-flight requests
// gateway.drain_timeout); a second signal kills the process at once. Run
// does not return.
func Run(modes ...Mode) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		// Restore the default handlers: an operator whose drain takes
		// too long can signal again to kill the process at once.
		stop()
	}()
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ(), modes...)
	stop()
	os.Exit(code)
}

// convert checks modes and turns them into the composition root's. The
// name rules are those the events carrying results must follow: a name the
// persistence role would refuse would lose every result of the mode, so it
// is refused here, before anything runs.
func convert(modes []Mode) ([]app.Mode, error) {
	out := make([]app.Mode, 0, len(modes))
	seen := make(map[string]bool, len(modes))
	for i, m := range modes {
		if err := checkName(m.Name); err != nil {
			return nil, fmt.Errorf("game mode %d (%q): %v", i+1, m.Name, err)
		}
		if m.Factory == nil {
			return nil, fmt.Errorf("game mode %q has no Factory", m.Name)
		}
		if seen[m.Name] {
			return nil, fmt.Errorf("game mode %q is given twice; mode names must be unique", m.Name)
		}
		seen[m.Name] = true
		out = append(out, app.Mode{Name: m.Name, Factory: m.Factory})
	}
	return out, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the name is empty")
	case len(name) > events.MaxNameLen:
		return fmt.Errorf("the name is longer than %d bytes", events.MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("the name is not valid UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("the name contains a control character")
		}
	}
	return nil
}
