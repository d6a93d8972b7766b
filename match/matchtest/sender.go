package matchtest

import (
	"slices"
	"sync"

	"github.com/multijuego/multijuego/match"
)

// Sent is one frame as a [Sender] recorded it.
type Sent struct {
	To      match.Presence // the recipient
	MatchID string         // the frame's match id
	Op      match.OpCode   // the frame's op code
	Tick    uint64         // the frame's tick
	Payload []byte         // a copy
	Bytes   []byte         // a copy of the whole encoded frame
}

// Closed is one [match.Sender.Close] call as a [Sender] recorded it.
type Closed struct {
	Who     match.Presence // the player closed
	MatchID string         // the match it left
	Reason  match.Reason   // why
}

// Sender is a [match.Sender] that records every frame and close, copying the
// frames and releasing them at once. Set Full to make Send refuse frames for
// some players. It is safe for concurrent use.
type Sender struct {
	// Full, if set, is asked before each Send; true refuses the frame
	// (as a full queue would).
	Full func(p match.Presence) bool

	mu     sync.Mutex
	sent   []Sent
	closed []Closed
}

// Send records a copy of f for p and releases f.
func (s *Sender) Send(p match.Presence, f *match.Frame) bool {
	if s.Full != nil && s.Full(p) {
		return false
	}
	rec := Sent{
		To: p, MatchID: f.MatchID(), Op: f.Op(), Tick: f.Tick(),
		Payload: slices.Clone(f.Payload()), Bytes: slices.Clone(f.Bytes()),
	}
	if rec.Payload == nil {
		rec.Payload = []byte{}
	}
	f.Release()
	s.mu.Lock()
	s.sent = append(s.sent, rec)
	s.mu.Unlock()
	return true
}

// Close records the close.
func (s *Sender) Close(p match.Presence, matchID string, reason match.Reason) {
	s.mu.Lock()
	s.closed = append(s.closed, Closed{p, matchID, reason})
	s.mu.Unlock()
}

// Sent returns the frames recorded so far, in order.
func (s *Sender) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// To returns the frames recorded for userID, optionally only those with one
// of ops.
func (s *Sender) To(userID string, ops ...match.OpCode) []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Sent
	for _, f := range s.sent {
		if f.To.UserID == userID && (len(ops) == 0 || slices.Contains(ops, f.Op)) {
			out = append(out, f)
		}
	}
	return out
}

// Last returns the last frame recorded for userID with op, if any.
func (s *Sender) Last(userID string, op match.OpCode) (Sent, bool) {
	fs := s.To(userID, op)
	if len(fs) == 0 {
		return Sent{}, false
	}
	return fs[len(fs)-1], true
}

// Closed returns the closes recorded so far, in order.
func (s *Sender) Closed() []Closed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.closed)
}

// Reset forgets everything recorded.
func (s *Sender) Reset() {
	s.mu.Lock()
	s.sent, s.closed = nil, nil
	s.mu.Unlock()
}

// Discard is a [match.Sender] that accepts and immediately releases every
// frame, like a gateway writing instantly; for benchmarks.
type Discard struct{}

// Send releases f.
func (Discard) Send(_ match.Presence, f *match.Frame) bool { f.Release(); return true }

// Close does nothing.
func (Discard) Close(match.Presence, string, match.Reason) {}
