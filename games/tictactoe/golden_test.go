package tictactoe_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/protocoltest"
	"github.com/multijuego/multijuego/match"
)

// The tic-tac-toe messages as docs/protocol.md documents them
// (TestDocLayouts checks the document's tables are these).
var (
	moveLayout = protocoltest.Layout(`
		0  1  uint8  cell
	`)
	stateFields = []string{"board", "x", "o", "turn", "status", "winner", "moves"}
	errorFields = []string{"error"}
)

func TestDocLayouts(t *testing.T) {
	protocoltest.CheckDocLayout(t, "Tic-tac-toe move (op 1)", moveLayout)
	for heading, want := range map[string][]string{"Tic-tac-toe state (op 2)": stateFields, "Tic-tac-toe error (op 3)": errorFields} {
		var got []string
		for _, r := range protocoltest.DocRows(t, heading) {
			got = append(got, protocoltest.Name(r[0]))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: documented %v, want %v", heading, got, want)
		}
	}
}

// golden checks the last frame of op sent to p against the golden file and
// the document, and returns its tick and JSON payload.
func (g *game) golden(p match.Presence, op match.OpCode, file, comment string) (uint64, map[string]any) {
	g.t.Helper()
	f, ok := g.sender.Last(p.UserID, op)
	if !ok {
		g.t.Fatalf("no frame of op %d for %s", op, p.UserID)
	}
	b := protocoltest.Golden(g.t, file, comment+"\nmatch id replaced by protocoltest.FixedMatchID; shown in docs/protocol.md\nregenerate: go test ./games/tictactoe -run TestGoldenFrames -update",
		protocoltest.StableFrame(g.t, f.Bytes, g.id, op))
	protocoltest.CheckDocHex(g.t, file, b)
	var v map[string]any
	if err := json.Unmarshal(protocoltest.FramePayload(g.t, b), &v); err != nil {
		g.t.Fatal(err)
	}
	return protocoltest.Decode(g.t, b, protocoltest.FrameHeader)["tick"].(uint64), v
}

// The state after X's first move and the error X gets for moving again
// are the golden frames byte for byte, and say what the document says.
func TestGoldenFrames(t *testing.T) {
	g := start(t)
	move := protocoltest.Decode(t, []byte{4}, moveLayout)
	if move["cell"] != uint64(4) {
		t.Fatalf("move %v", move)
	}
	g.play(g.x, 4)
	tick, s := g.golden(g.o, tictactoe.OpState, "testdata/state.golden", "tic-tac-toe state frame (op 2) at tick 1, after X took the centre")
	want := map[string]any{"board": "....X....", "x": "ux", "o": "uo", "turn": "O", "status": "playing", "moves": 1.0}
	if tick != 1 || !reflect.DeepEqual(s, want) {
		t.Errorf("state at tick %d: %v, want %v", tick, s, want)
	}
	if got := protocoltest.JSONPaths(s, ""); !slices.Equal(got, []string{"board", "moves", "o", "status", "turn", "x"}) {
		t.Errorf("state fields %v (winner is left out until there is one)", got)
	}
	if x, _ := g.sender.Last(g.x.UserID, tictactoe.OpState); x.Tick != 1 {
		t.Errorf("X's last state is from tick %d", x.Tick)
	}

	g.play(g.x, 0) // not X's turn
	tick, e := g.golden(g.x, tictactoe.OpError, "testdata/error.golden", "tic-tac-toe error frame (op 3) at tick 2, to X only: not its turn")
	if tick != 2 || !reflect.DeepEqual(e, map[string]any{"error": tictactoe.ErrNotYourTurn}) {
		t.Errorf("error at tick %d: %v", tick, e)
	}
	if _, ok := g.sender.Last(g.o.UserID, tictactoe.OpError); ok {
		t.Error("O got X's error")
	}
}
