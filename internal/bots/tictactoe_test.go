//go:build linux

package bots

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multijuego/multijuego/games/tictactoe"
)

// serverFrame is a match frame as the gateway sends it: a binary WebSocket
// frame holding kind 0x01, op, tick, the match id and the payload.
func serverFrame(s tictactoe.State, errCode string) []byte {
	code, payload := uint16(tictactoe.OpState), []byte(nil)
	if errCode != "" {
		code = uint16(tictactoe.OpError)
		payload, _ = json.Marshal(tictactoe.ErrorMessage{Error: errCode})
	} else {
		payload, _ = json.Marshal(s)
	}
	id := "m1"
	f := []byte{0x01}
	f = binary.LittleEndian.AppendUint16(f, code)
	f = binary.LittleEndian.AppendUint64(f, 1)
	f = append(append(append(f, byte(len(id))), id...), payload...)
	return append([]byte{0x80 | opBinary, byte(len(f))}, f...)
}

// written calls fn with each client frame (unmasked) written to the
// server's end of the socket since the last call.
func written(t *testing.T, fd int, fn func(f []byte, op byte, payload []byte, err error)) {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err == unix.EAGAIN {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for b := buf[:n]; len(b) > 0; {
		f := unmask(t, b)
		_, op, payload, size, err := parseFrame(f)
		if err == nil && size == 0 {
			err = errors.New("incomplete frame")
		}
		fn(f, op, payload, err)
		if err != nil {
			return
		}
		b = b[size+4:] // the mask key
	}
}

// sent returns the cells of the moves written to the server's end of the
// socket since the last call.
func sent(t *testing.T, fd int) []byte {
	t.Helper()
	var cells []byte
	written(t, fd, func(f []byte, op byte, payload []byte, err error) {
		if err != nil || op != opBinary || len(payload) != 3 || payload[0] != byte(tictactoe.OpMove) {
			t.Fatalf("not a move: % x (%v)", f, err)
		}
		cells = append(cells, payload[2])
	})
	return cells
}

// TestTicTacToeResend: a move no state answers (an input lost while its
// match moved between game nodes) is sent again once resendAfter has
// passed, and again after as long; the refusal of a resent move that had
// arrived after all is not an error, a refusal beyond the resends is; a
// state answering the move stops the resends.
func TestTicTacToeResend(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	r := &run{cfg: Config{Mode: ModeTicTacToe}, start: time.Now()}
	rd, err := newReader(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.readers = []*reader{rd}
	defer r.closeReaders()
	b := &bot{run: r, sock: sock{fd: fds[0]}, slot: -1, movedAt: -1, accountID: "me"}
	r.bots = []*bot{b}
	defer b.shutdown()

	state := tictactoe.State{Board: ".........", X: "me", O: "other", Turn: "X", Status: tictactoe.StatusPlaying}
	rd.consume(b, serverFrame(state, ""), 0)
	move := sent(t, fds[1])
	if len(move) != 1 {
		t.Fatalf("moves sent for the first state: %v", move)
	}
	r.resendDue(int64(resendAfter) - 1)
	if got := sent(t, fds[1]); got != nil {
		t.Fatalf("resent before resendAfter: %v", got)
	}
	for i := int64(1); i <= 2; i++ {
		r.resendDue(i * int64(resendAfter))
		if got := sent(t, fds[1]); len(got) != 1 || got[0] != move[0] {
			t.Fatalf("resend %d: %v, want %v", i, got, move)
		}
	}
	rd.consume(b, serverFrame(state, tictactoe.ErrNotYourTurn), 0)
	rd.consume(b, serverFrame(state, tictactoe.ErrNotYourTurn), 0)
	if r.errors.Load() != 0 || r.resent.Load() != 2 {
		t.Fatalf("refusals of the 2 resent moves: %d errors, %d resent", r.errors.Load(), r.resent.Load())
	}
	rd.consume(b, serverFrame(state, tictactoe.ErrNotYourTurn), 0)
	if r.errors.Load() != 1 {
		t.Fatalf("a refusal beyond the resends: %d errors, want 1", r.errors.Load())
	}

	// The move is applied: the opponent's turn, nothing pending.
	board := []byte(state.Board)
	board[move[0]] = 'X'
	state.Board, state.Turn, state.Moves = string(board), "O", 1
	rd.consume(b, serverFrame(state, ""), 0)
	r.resendDue(10 * int64(resendAfter))
	if got := sent(t, fds[1]); got != nil {
		t.Fatalf("resent an answered move: %v", got)
	}
}

// textFrame is a control envelope as the gateway sends it.
func textFrame(typ, cid, matchID, reason string) []byte {
	payload, _ := json.Marshal(map[string]any{"type": typ, "cid": cid,
		"payload": map[string]string{"match_id": matchID, "reason": reason}})
	return append([]byte{0x80 | opText, byte(len(payload))}, payload...)
}

// joins returns the match ids of the joins written to the server's end of
// the socket since the last call.
func joins(t *testing.T, fd int) []string {
	t.Helper()
	var ids []string
	written(t, fd, func(f []byte, op byte, payload []byte, err error) {
		var env struct {
			Type    string
			Payload struct {
				MatchID string `json:"match_id"`
			}
		}
		if err != nil || op != opText || json.Unmarshal(payload, &env) != nil || env.Type != "match.join" {
			t.Fatalf("not a join: %q (%v)", f, err)
		}
		ids = append(ids, env.Payload.MatchID)
	})
	return ids
}

// TestTicTacToePartnerWaitsForItsClose: the partner joins the leader's
// next match only once its own last match has closed (its gateway refuses
// a join before), or at once if it has.
func TestTicTacToePartnerWaitsForItsClose(t *testing.T) {
	r := &run{cfg: Config{Mode: ModeTicTacToe}, start: time.Now()}
	rd, err := newReader(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.readers = []*reader{rd}
	defer r.closeReaders()
	var peers [2]int
	for i := range 2 {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[1])
		peers[i] = fds[1]
		r.bots = append(r.bots, &bot{run: r, idx: i, sock: sock{fd: fds[0]}, slot: -1, movedAt: -1})
		defer r.bots[i].shutdown()
	}
	leader, partner := r.bots[0], r.bots[1]
	leader.partner, leader.leader, partner.partner = partner, true, leader
	rd.consume(leader, textFrame("match.joined", "j", "m1", ""), 0)
	rd.consume(partner, textFrame("match.joined", "j", "m1", ""), 0)

	// m1 ends; the leader hears of it first and is in m2 already.
	rd.consume(leader, textFrame("match.closed", "", "m1", "match_ended"), 0)
	rd.consume(leader, textFrame("match.joined", "next", "m2", ""), 0)
	if got := joins(t, peers[1]); got != nil {
		t.Fatalf("the partner joined %v before its match closed", got)
	}
	rd.consume(partner, textFrame("match.closed", "", "m1", "match_ended"), 0)
	if got := joins(t, peers[1]); len(got) != 1 || got[0] != "m2" {
		t.Fatalf("the partner's joins at its close: %v, want [m2]", got)
	}
	rd.consume(partner, textFrame("match.joined", "j", "m2", ""), 0)

	// m2 ends; the partner hears of it first: it joins m3 at once.
	rd.consume(partner, textFrame("match.closed", "", "m2", "match_ended"), 0)
	rd.consume(leader, textFrame("match.closed", "", "m2", "match_ended"), 0)
	rd.consume(leader, textFrame("match.joined", "next", "m3", ""), 0)
	if got := joins(t, peers[1]); len(got) != 1 || got[0] != "m3" {
		t.Fatalf("the partner's joins: %v, want [m3]", got)
	}
	if r.errors.Load() != 0 {
		t.Fatalf("%d errors", r.errors.Load())
	}
}
