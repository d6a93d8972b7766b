// Command multijuego runs the multijuego game backend. With no arguments it
// serves every role in one process on the embedded default: SQLite in
// ./data, signing keys generated there, listening on 127.0.0.1:7350.
//
// It is the stock build of package server with the two reference games; a
// studio's own main does the same with its own modes (examples/studio).
package main

import (
	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/server"
)

func main() {
	server.Run(
		server.Mode{Name: arena.Mode, Factory: arena.New},
		server.Mode{Name: tictactoe.Mode, Factory: tictactoe.New})
}
