// Command multijuego runs the multijuego game backend. With no arguments it
// serves every role in one process on the embedded default: SQLite in
// ./data, signing keys generated there, listening on 127.0.0.1:7350.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process at once
	}()
	code := app.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ(),
		app.Mode{Name: arena.Mode, Factory: arena.New},
		app.Mode{Name: tictactoe.Mode, Factory: tictactoe.New})
	stop()
	os.Exit(code)
}
