package match_test

import (
	"context"
	"fmt"
	"time"

	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// counter is a tiny game: every player input adds its payload length to a
// shared total, broadcast every tick; at 10 the match ends.
type counter struct {
	total int
}

func (c *counter) Init(d *match.Dispatcher, params match.Params) (match.Settings, error) {
	return match.Settings{TickRate: 10, MaxPlayers: 4, Label: "counting"}, nil
}

func (c *counter) JoinAttempt(d *match.Dispatcher, p match.Presence, meta map[string]string) error {
	if meta["role"] == "spectator" {
		return fmt.Errorf("no spectators")
	}
	return nil
}

func (c *counter) Join(d *match.Dispatcher, p match.Presence) {}

func (c *counter) Leave(d *match.Dispatcher, p match.Presence, reason match.Reason) {}

func (c *counter) Loop(d *match.Dispatcher, inputs []match.Input) {
	for _, in := range inputs {
		c.total += len(in.Data)
	}
	_ = d.Broadcast(1, []byte(fmt.Sprint(c.total)))
	if c.total >= 10 {
		_ = d.End(match.Results{Reason: "target_reached"})
	}
}

func (c *counter) Terminate(d *match.Dispatcher, grace time.Duration) {
	_ = d.End(match.Results{Reason: "shutdown"})
}

func Example() {
	clock := matchtest.NewClock(time.Unix(0, 0))
	sender := &matchtest.Sender{} // the gateway, in production
	engine, _ := match.NewEngine(match.Config{
		Sender: sender,
		Clock:  clock,
		OnEnd:  func(s match.Summary) { fmt.Println("ended:", s.Results.Reason, "after", s.Ticks, "ticks") },
	})
	_ = engine.Register("counter", func() match.Handler { return &counter{} })

	ctx := context.Background()
	id, _ := engine.Create(ctx, "counter", nil)
	alice := match.Presence{UserID: "u1", SessionID: "s1", Username: "alice"}
	_ = engine.Join(ctx, id, alice, nil)
	err := engine.Join(ctx, id, match.Presence{UserID: "u2", SessionID: "s2"}, map[string]string{"role": "spectator"})
	fmt.Println("spectator:", err)

	_ = engine.Input(id, alice, 1, []byte("hello"))
	clock.Advance(100 * time.Millisecond) // one tick, fully processed on return
	_ = engine.Input(id, alice, 1, []byte("world"))
	clock.Advance(100 * time.Millisecond)

	for _, f := range sender.To("u1") {
		fmt.Printf("tick %d op %d: %s\n", f.Tick, f.Op, f.Payload)
	}
	fmt.Println("closed:", sender.Closed()[0].Reason)
	// Output:
	// spectator: match: join rejected: no spectators
	// ended: target_reached after 2 ticks
	// tick 1 op 1: 5
	// tick 2 op 1: 10
	// closed: match_ended
}
