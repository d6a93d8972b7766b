package bots

// Tic-tac-toe pairs: what the bots do beyond answering each state with a
// move (reader.onTicTacToe).

import (
	"time"

	"github.com/multijuego/multijuego/games/tictactoe"
)

// follow has a tic-tac-toe partner join the leader's next match: now if it
// is out of its last match, else when that match closes. Its gateway would
// refuse the join before: the close of a match reaches the partner's
// gateway independently of the leader's, possibly after the leader is in
// the next match.
func (b *bot) follow(matchID string) {
	b.pairMu.Lock()
	if b.inMatch {
		b.next = matchID
		b.pairMu.Unlock()
		return
	}
	b.pairMu.Unlock()
	b.join(matchID)
}

// leftMatch records that the bot left its match, and joins the leader's next
// match if it came meanwhile (not once the run is over).
func (b *bot) leftMatch() {
	b.pairMu.Lock()
	b.inMatch = false
	next := b.next
	b.next = ""
	b.pairMu.Unlock()
	if next != "" && !b.run.leaving.Load() {
		b.join(next)
	}
}

// resendAfter is how long a tic-tac-toe bot waits for the state answering
// its move before it sends the move again: an input that reaches a match
// while the match moves between game nodes (a drain, a crash) is lost, and
// a player sends it again. The game answers in a tick (100 ms).
const resendAfter = time.Second

// moveFrame is a tic-tac-toe move as the client sends it.
func moveFrame(cell byte, key uint32) []byte {
	return appendFrame(nil, opBinary, []byte{byte(tictactoe.OpMove), byte(tictactoe.OpMove >> 8), cell}, key)
}

// resendLoop sends again, until stop, the tic-tac-toe moves no state has
// answered within resendAfter.
func (r *run) resendLoop(stop <-chan struct{}) {
	t := time.NewTicker(resendAfter / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.resendDue(r.now())
	}
}

// resendDue resends the moves pending since resendAfter before now. A move
// that was applied after all (its state was only slow) is refused the
// second time: the bot expects that refusal and does not count it.
func (r *run) resendDue(now int64) {
	for _, b := range r.bots {
		if b == nil {
			continue
		}
		cell := b.pendingMove.Load()
		if cell == 0 || now-b.pendingAt.Load() < int64(resendAfter) {
			continue
		}
		b.pendingAt.Store(now)
		b.resends.Add(1)
		r.resent.Add(1)
		if err := b.write(moveFrame(byte(cell-1), uint32(now))); err != nil {
			r.fail("player %d: resend move: %v", b.idx, err)
		}
	}
}
