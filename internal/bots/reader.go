package bots

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/games/tictactoe"
)

// reader serves a share of the sockets (an epoll loop for the raw sockets
// on Linux, a goroutine per net.Conn socket) and keeps their statistics.
type reader struct {
	run *run
	poll
	conns sync.WaitGroup // the reader goroutines of its net.Conn sockets (conn.go)

	mu           sync.Mutex // guards the stats below against the final read
	windowStates int64
	tickToClient *histogram
	inputToState *histogram
	rng          uint64
}

func newReader(r *run, i int) (*reader, error) {
	rd := &reader{run: r, tickToClient: newHistogram(), inputToState: newHistogram(), rng: uint64(i) + 7}
	if err := rd.openPoll(); err != nil {
		return nil, err
	}
	return rd, nil
}

// add starts serving b. It holds rd.mu, which the epoll loop takes to
// handle events: an event on b's raw socket orders the loop after b was
// set up, but the race detector sees no such order through epoll.
func (rd *reader) add(b *bot) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.addLocked(b)
}

// addLocked is add with rd.mu held.
func (rd *reader) addLocked(b *bot) error {
	if len(b.in) > 0 {
		// Bytes that came with the handshake answer: parse them first.
		rest := b.in
		b.in = nil
		b.in = append([]byte(nil), rd.consume(b, rest, rd.run.now())...)
	}
	return rd.watch(b)
}

// received handles bytes read from b's socket; the caller holds rd.mu.
func (rd *reader) received(b *bot, data []byte, now int64) {
	if len(b.in) > 0 {
		b.in = append(b.in, data...)
		data = b.in
	}
	rest := rd.consume(b, data, now)
	switch {
	case len(rest) == 0:
		if cap(b.in) > 4096 {
			b.in = nil
		} else {
			b.in = b.in[:0]
		}
	case len(b.in) > 0:
		b.in = b.in[:copy(b.in, rest)]
	default:
		b.in = append(b.in[:0], rest...)
	}
}

// consume handles every whole frame in data and returns the incomplete
// rest.
func (rd *reader) consume(b *bot, data []byte, now int64) []byte {
	for {
		fin, op, payload, n, err := parseFrame(data)
		if err != nil {
			rd.run.fail("player %d: %v", b.idx, err)
			b.lost(err.Error())
			return nil
		}
		if n == 0 {
			return data
		}
		data = data[n:]
		if !fin || op == opCont {
			rd.run.fail("player %d: fragmented message (the server sends whole messages)", b.idx)
			continue
		}
		switch op {
		case opBinary:
			rd.onFrame(b, payload, now)
		case opText:
			rd.onText(b, payload)
		case opPing:
			_ = b.write(appendFrame(nil, opPong, payload, uint32(now)))
		case opPong:
		case opClose:
			code, reason := 1005, ""
			if len(payload) >= 2 {
				code, reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
			}
			b.lost(fmt.Sprintf("close %d %s", code, reason))
			return nil
		default:
			rd.run.fail("player %d: unknown opcode %d", b.idx, op)
		}
	}
}

// onFrame handles a match frame: kind 0x01, op u16, tick u64, id, payload.
func (rd *reader) onFrame(b *bot, f []byte, now int64) {
	if len(f) < 12 || f[0] != 0x01 || len(f) < 12+int(f[11]) {
		rd.run.fail("player %d: malformed match frame", b.idx)
		return
	}
	op := binary.LittleEndian.Uint16(f[1:])
	payload := f[12+int(f[11]):]
	switch rd.run.cfg.Mode {
	case ModeArena:
		switch op {
		case uint16(arena.OpState):
			rd.onArenaState(b, payload, now)
		case uint16(arena.OpRoster):
			var ros arena.Roster
			if json.Unmarshal(payload, &ros) != nil {
				rd.run.fail("player %d: malformed roster", b.idx)
				return
			}
			for _, e := range ros.Players {
				if e.UserID == b.accountID {
					b.slot = e.Slot
				}
			}
		}
	case ModeTicTacToe:
		switch op {
		case uint16(tictactoe.OpState):
			rd.onTicTacToe(b, payload, now)
		case uint16(tictactoe.OpError):
			if b.resends.Load() > 0 {
				b.resends.Add(-1) // a resent move that had arrived after all
				return
			}
			rd.run.fail("player %d: tictactoe refused a move: %s", b.idx, payload)
		}
	}
}

func (rd *reader) onArenaState(b *bot, p []byte, now int64) {
	if len(p) < arena.StateHeaderSize {
		rd.run.fail("player %d: short arena state", b.idx)
		return
	}
	if !rd.run.window.Load() {
		return
	}
	rd.windowStates++
	serverMs := int64(binary.LittleEndian.Uint64(p[8:]))
	recvUs := rd.run.start.Add(time.Duration(now)).UnixMicro()
	rd.tickToClient.record(recvUs - serverMs*1000)
	if b.slot < 0 {
		return
	}
	n := int(p[21])
	recs := p[arena.StateHeaderSize:]
	for i := 0; i < n && len(recs) >= arena.PlayerStateSize; i, recs = i+1, recs[arena.PlayerStateSize:] {
		if int(recs[0]) != b.slot {
			continue
		}
		seq := binary.LittleEndian.Uint32(recs[4:])
		if seq > b.lastAck {
			b.lastAck = seq
			k := seq % 64
			if b.sentSeq[k].Load() == seq && rd.run.window.Load() {
				rd.inputToState.record((now - b.sentAt[k].Load()) / 1000)
			}
		}
		return
	}
}

func (rd *reader) onTicTacToe(b *bot, p []byte, now int64) {
	var s tictactoe.State
	if err := json.Unmarshal(p, &s); err != nil {
		rd.run.fail("player %d: malformed tictactoe state", b.idx)
		return
	}
	if s.Moves != b.movedAt || s.Status != tictactoe.StatusPlaying {
		b.pendingMove.Store(0) // answered, or moot
	}
	if s.Moves > b.seenMoves {
		// One state per applied move reaches each player: that is what
		// the delivery ratio counts; the move's author also measures its
		// move's round trip.
		b.seenMoves = s.Moves
		if rd.run.window.Load() {
			rd.windowStates++
			if b.movedAt >= 0 && s.Moves == b.movedAt+1 && b.sentSeq[0].Load() == 1 {
				b.sentSeq[0].Store(0)
				rd.inputToState.record((now - b.sentAt[0].Load()) / 1000)
			}
		}
	}
	switch {
	case s.X == b.accountID:
		b.mark = "X"
	case s.O == b.accountID:
		b.mark = "O"
	}
	switch s.Status {
	case tictactoe.StatusPlaying:
		if s.Turn != b.mark || s.Moves == b.movedAt || rd.run.leaving.Load() {
			return // not our turn, answered already, or the run is over (we left)
		}
		var free []int
		for i := range 9 {
			if s.Board[i] == '.' {
				free = append(free, i)
			}
		}
		if len(free) == 0 {
			return
		}
		rd.rng ^= rd.rng << 13
		rd.rng ^= rd.rng >> 7
		rd.rng ^= rd.rng << 17
		cell := free[rd.rng%uint64(len(free))]
		b.movedAt = s.Moves
		b.sentAt[0].Store(now)
		b.sentSeq[0].Store(1)
		b.pendingAt.Store(now)
		b.pendingMove.Store(int32(cell) + 1)
		if err := b.write(moveFrame(byte(cell), uint32(rd.rng))); err != nil {
			rd.run.fail("player %d: send move: %v", b.idx, err)
			return
		}
		if rd.run.window.Load() {
			b.inputs.Add(1)
		}
	case tictactoe.StatusWon, tictactoe.StatusDraw, tictactoe.StatusForfeit:
		if b.leader && b.movedAt != -2 {
			b.movedAt = -2 // count each game once
			if rd.run.window.Load() {
				rd.run.games.Add(1)
			}
		}
	}
}

func (rd *reader) onText(b *bot, p []byte) {
	var env struct {
		Type    string          `json:"type"`
		CID     string          `json:"cid"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(p, &env); err != nil {
		rd.run.fail("player %d: malformed envelope: %v", b.idx, err)
		return
	}
	switch env.Type {
	case "session.started":
	case "match.joined":
		var j struct {
			MatchID     string `json:"match_id"`
			ResumeToken string `json:"resume_token"`
		}
		_ = json.Unmarshal(env.Payload, &j)
		b.matchID = j.MatchID
		b.resumeToken.Store(&j.ResumeToken)
		b.movedAt, b.seenMoves = -1, 0
		b.pendingMove.Store(0)
		b.resends.Store(0)
		if !b.seated.Swap(true) {
			rd.run.seated.Add(1)
		}
		b.pairMu.Lock()
		b.inMatch = true
		b.pairMu.Unlock()
		if b.leader && b.partner != nil && env.CID == "next" {
			b.partner.follow(j.MatchID)
		}
	case "match.left":
		b.matchID, b.slot = "", -1
		b.resumeToken.Store(nil)
		b.leftMatch()
		if b.seated.Swap(false) {
			rd.run.seated.Add(-1)
		}
	case "match.created":
		var m struct {
			MatchID string `json:"match_id"`
		}
		_ = json.Unmarshal(env.Payload, &m)
		b.joining.Store(&m.MatchID)
		b.sendText(map[string]any{"type": "match.join", "cid": "next", "payload": map[string]string{"match_id": m.MatchID}})
	case "match.closed":
		var c struct {
			MatchID string `json:"match_id"`
			Reason  string `json:"reason"`
		}
		_ = json.Unmarshal(env.Payload, &c)
		if c.MatchID != b.matchID {
			return
		}
		b.matchID, b.slot = "", -1
		b.pendingMove.Store(0)
		b.leftMatch()
		if rd.run.cfg.Mode == ModeTicTacToe && c.Reason == "match_ended" {
			// Play the next game: the leader opens it, the partner
			// follows when the leader is in.
			if b.leader {
				b.sendText(map[string]any{"type": "match.create", "cid": "c", "payload": map[string]string{"mode": tictactoe.Mode}})
			}
			return
		}
		if b.seated.Swap(false) {
			rd.run.seated.Add(-1)
		}
		if !rd.run.leaving.Load() {
			rd.run.fail("player %d: out of match %s: %s", b.idx, c.MatchID, c.Reason)
		}
	case "error":
		switch env.CID {
		case "bye":
			return // leaving a match that already ended as the others left
		case "j", "next":
			if id := b.joining.Load(); id != nil {
				rd.run.fail("player %d: join %s: server error: %s", b.idx, *id, env.Payload)
				return
			}
		case "r":
			rd.run.fail("player %d: resume %s after reconnecting: server error: %s", b.idx, b.matchID, env.Payload)
			return
		}
		rd.run.fail("player %d: server error: %s", b.idx, env.Payload)
	}
}
