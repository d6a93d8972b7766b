package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/multijuego/multijuego/client"
)

// Log in as a guest and start a tic-tac-toe match on a server started with
// `multijuego serve`.
func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:7350")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Device(ctx, "my-device-id-123"); err != nil {
		log.Fatal(err)
	}
	m, err := c.CreateMatch(ctx, "tictactoe", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("match", m.MatchID, "waiting for", m.MaxPlayers-m.Players, "players")
}
