package arena_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/internal/protocoltest"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// The arena's layouts as docs/protocol.md documents them (TestDocLayouts
// checks the document's tables are these); the golden test decodes the
// server's frames with them, not with the package's own decoders.
var (
	inputMessage = protocoltest.Layout(`
		0  2  uint16  op
		2  …  bytes   payload
	`)
	inputLayout = protocoltest.Layout(`
		0  4  uint32  seq
		4  1  int8    dx
		5  1  int8    dy
		6  2  uint16  reserved
	`)
	stateHeader = protocoltest.Layout(`
		0   8  uint64  tick
		8   8  int64   server_time_ms
		16  4  uint32  time_left_ms
		20  1  uint8   phase
		21  1  uint8   count
	`)
	playerRecord = protocoltest.Layout(`
		0   1  uint8    slot
		1   1  uint8    flags
		2   2  uint16   score
		4   4  uint32   last_seq
		8   4  float32  x
		12  4  float32  y
		16  4  float32  vx
		20  4  float32  vy
	`)
	rosterFields = []string{"players", "players[].slot", "players[].user_id", "players[].username"}
)

const (
	stateHeaderSize  = 22 // the documented sizes
	playerRecordSize = 24
	inputMessageSize = 10 // op code and the 8-byte input
)

func TestDocLayouts(t *testing.T) {
	protocoltest.CheckDocLayout(t, "Input message", inputMessage)
	protocoltest.CheckDocLayout(t, "Arena input (op 1)", inputLayout)
	protocoltest.CheckDocLayout(t, "Arena state header (op 2)", stateHeader)
	protocoltest.CheckDocLayout(t, "Arena player record", playerRecord)
	var roster []string
	for _, r := range protocoltest.DocRows(t, "Arena roster (op 3)") {
		roster = append(roster, protocoltest.Name(r[0]))
	}
	if !slices.Equal(roster, rosterFields) {
		t.Errorf("roster fields documented %v, want %v", roster, rosterFields)
	}
	if arena.StateHeaderSize != stateHeaderSize || arena.PlayerStateSize != playerRecordSize || arena.InputSize != inputMessageSize-2 {
		t.Errorf("sizes: header %d record %d input %d", arena.StateHeaderSize, arena.PlayerStateSize, arena.InputSize)
	}
}

// clientInput builds an input message by the documented layout: op code,
// then seq, dx, dy and two zero bytes.
func clientInput(seq uint32, dx, dy int8) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(arena.OpInput))
	b = binary.LittleEndian.AppendUint32(b, seq)
	return append(b, byte(dx), byte(dy), 0, 0)
}

// send hands a client message to the engine as the gateway does: the op
// code (first two bytes), then the payload.
func (w *world) send(u string, msg []byte) {
	w.t.Helper()
	op := protocoltest.Decode(w.t, msg, inputMessage)["op"].(uint64)
	if err := w.e.Input(w.id, pres(u), match.OpCode(op), msg[2:]); err != nil {
		w.t.Fatal(err)
	}
}

// stateOf decodes a state payload by the documented layout.
func stateOf(t *testing.T, payload []byte) (header map[string]any, players []map[string]any) {
	t.Helper()
	header = protocoltest.Decode(t, payload, stateHeader)
	n := int(header["count"].(uint64))
	if len(payload) != stateHeaderSize+n*playerRecordSize {
		t.Fatalf("state of %d players is %d bytes", n, len(payload))
	}
	for i := range n {
		players = append(players, protocoltest.Decode(t, payload[stateHeaderSize+i*playerRecordSize:], playerRecord))
	}
	return header, players
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// The frames a client gets, as the real handler and engine produce them on
// the fake clock, are the golden frames byte for byte, and decoded by the
// documented layouts they say what the document says: a waiting state, the
// roster when the second player joins, a playing state after one input
// each.
func TestGoldenFrames(t *testing.T) {
	snd := &matchtest.Sender{}
	w := newWorld(t, snd, match.Params{arena.ParamMaxPlayers: "2"}, "ana")
	startMs := start.UnixMilli()

	// Waiting for a second player: a state every tick, phase 0, the whole
	// time limit left, nobody "it".
	w.ticks(1)
	f, _ := snd.Last("ana", arena.OpState)
	h, ps := stateOf(t, f.Payload)
	equal(t, "waiting header", h, map[string]any{"tick": uint64(1), "server_time_ms": startMs + 50, "time_left_ms": uint64(60_000), "phase": uint64(0), "count": uint64(1)})
	equal(t, "waiting player", ps[0], map[string]any{"slot": uint64(0), "flags": uint64(0), "score": uint64(0), "last_seq": uint64(0),
		"x": float32(850), "y": float32(500), "vx": float32(0), "vy": float32(0)})
	if in, _ := w.e.Get(w.id); in.Label != "waiting" {
		t.Errorf("label %q while waiting", in.Label)
	}

	// The second player joins: everyone gets the roster.
	if err := w.e.Join(context.Background(), w.id, pres("bo"), nil); err != nil {
		t.Fatal(err)
	}
	f, _ = snd.Last("bo", arena.OpRoster)
	roster := protocoltest.Golden(t, "testdata/roster.golden", "arena roster frame (op 3) sent at tick 1 when the second player joins\n"+regen,
		protocoltest.StableFrame(t, f.Bytes, w.id, arena.OpRoster))
	protocoltest.CheckDocHex(t, "the arena roster frame", roster)
	if g, _ := snd.Last("ana", arena.OpRoster); !slices.Equal(g.Bytes, f.Bytes) {
		t.Error("the players got different rosters")
	}
	equal(t, "roster frame header", protocoltest.Decode(t, roster, protocoltest.FrameHeader),
		map[string]any{"kind": uint64(1), "op": uint64(3), "tick": uint64(1), "n": uint64(32)})
	var r map[string]any
	if err := json.Unmarshal(protocoltest.FramePayload(t, roster), &r); err != nil {
		t.Fatal(err)
	}
	equal(t, "roster fields", protocoltest.JSONPaths(r, ""), rosterFields)
	equal(t, "roster", r, map[string]any{"players": []any{
		map[string]any{"slot": 0.0, "user_id": "ana", "username": "ana"},
		map[string]any{"slot": 1.0, "user_id": "bo", "username": "bo"},
	}})
	if in, _ := w.e.Get(w.id); in.Label != "playing" {
		t.Errorf("label %q once playing", in.Label)
	}

	// One input each, built by the documented layout; then a tick.
	right, up := clientInput(7, 127, 0), clientInput(3, 0, -127)
	if len(right) != inputMessageSize || !slices.Equal(right[2:], arena.AppendInput(nil, arena.Input{Seq: 7, DX: 127})) {
		t.Fatalf("input message % x", right)
	}
	w.send("ana", right)
	w.send("bo", up)
	w.ticks(1)
	f, _ = snd.Last("ana", arena.OpState)
	state := protocoltest.Golden(t, "testdata/state.golden", "arena state frame (op 2) at tick 2: two players, ana is \"it\"\n"+regen,
		protocoltest.StableFrame(t, f.Bytes, w.id, arena.OpState))
	protocoltest.CheckDocHex(t, "the arena state frame", state)
	equal(t, "state frame header", protocoltest.Decode(t, state, protocoltest.FrameHeader),
		map[string]any{"kind": uint64(1), "op": uint64(2), "tick": uint64(2), "n": uint64(32)})
	h, ps = stateOf(t, protocoltest.FramePayload(t, state))
	equal(t, "playing header", h, map[string]any{"tick": uint64(2), "server_time_ms": startMs + 100, "time_left_ms": uint64(59_950), "phase": uint64(1), "count": uint64(2)})
	equal(t, "ana", ps[0], map[string]any{"slot": uint64(0), "flags": uint64(arena.FlagIt), "score": uint64(0), "last_seq": uint64(7),
		"x": float32(865), "y": float32(500), "vx": float32(300), "vy": float32(0)})
	equal(t, "bo", ps[1], map[string]any{"slot": uint64(1), "flags": uint64(0), "score": uint64(0), "last_seq": uint64(3),
		"x": float32(150), "y": float32(485), "vx": float32(0), "vy": float32(-300)})
}

const regen = "match id replaced by protocoltest.FixedMatchID; shown in docs/protocol.md\nregenerate: go test ./games/arena -run TestGoldenFrames -update"
