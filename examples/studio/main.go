// Command studio is a studio's game server: the whole multijuego server
// (every role, flag and command of the stock binary) hosting the studio's
// own game mode, rock-paper-scissors (package rps), instead of the
// reference games.
//
//	go build -o studio . && ./studio serve
package main

import (
	"github.com/multijuego/multijuego/server"

	"example.com/studio/rps"
)

func main() {
	server.Run(server.Mode{Name: rps.Mode, Factory: rps.New})
}
