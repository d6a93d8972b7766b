package router

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/multijuego/multijuego/match"
)

// Control requests (create, list, get, join, leave, disconnect, end) are
// small JSON messages sent with NATS request-reply: to a node's subject for
// create and list, to the match's own subject for the rest, so whichever
// node hosts the match answers and nobody needs to know which.

const (
	opCreate     = "create"
	opList       = "list"
	opGet        = "get"
	opJoin       = "join"
	opLeave      = "leave"
	opDisconnect = "disconnect"
	opEnd        = "end"
	opAdopt      = "adopt" // take over a handed-over match (failover.go)
	opDrain      = "drain" // start draining this node
)

type request struct {
	Op       string            `json:"op"`
	Match    string            `json:"match,omitempty"`
	Mode     string            `json:"mode,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	Presence *presence         `json:"presence,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Filter   *filter           `json:"filter,omitempty"`
	Snapshot []byte            `json:"snapshot,omitempty"` // opAdopt: gamenode.EncodeSnapshot's form
}

type presence struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	Username  string `json:"username,omitempty"`
}

func toPresence(p match.Presence) *presence {
	return &presence{UserID: p.UserID, SessionID: p.SessionID, Username: p.Username}
}

func (p *presence) match() match.Presence {
	if p == nil {
		return match.Presence{}
	}
	return match.Presence{UserID: p.UserID, SessionID: p.SessionID, Username: p.Username}
}

type filter struct {
	Mode     string `json:"mode,omitempty"`
	Label    string `json:"label,omitempty"`
	OpenOnly bool   `json:"open_only,omitempty"`
	Limit    int    `json:"limit,omitempty"`
}

type info struct {
	ID         string    `json:"id"`
	Mode       string    `json:"mode"`
	Label      string    `json:"label"`
	TickRate   int       `json:"tick_rate"`
	Players    int       `json:"players"`
	MaxPlayers int       `json:"max_players"`
	Open       bool      `json:"open"`
	Created    time.Time `json:"created"`
	PlayerIDs  []string  `json:"player_ids,omitempty"`
	TickTimeNS int64     `json:"tick_time_ns,omitempty"`
	Node       string    `json:"node"`
	// The match's counters (match.Info), for the admin API.
	InputsDropped     uint64 `json:"inputs_dropped,omitempty"`
	InputsRateLimited uint64 `json:"inputs_rate_limited,omitempty"`
	FramesDropped     uint64 `json:"frames_dropped,omitempty"`
}

func toInfo(i match.Info, node string) info {
	return info{ID: i.ID, Mode: i.Mode, Label: i.Label, TickRate: i.TickRate, Players: i.Players, MaxPlayers: i.MaxPlayers,
		Open: i.Open, Created: i.Created, PlayerIDs: i.PlayerIDs, TickTimeNS: int64(i.TickTime), Node: node,
		InputsDropped: i.InputsDropped, InputsRateLimited: i.InputsRateLimited, FramesDropped: i.FramesDropped}
}

func (i info) match() match.Info {
	return match.Info{ID: i.ID, Mode: i.Mode, Label: i.Label, TickRate: i.TickRate, Players: i.Players, MaxPlayers: i.MaxPlayers,
		Open: i.Open, Created: i.Created, PlayerIDs: i.PlayerIDs, TickTime: time.Duration(i.TickTimeNS), Node: i.Node,
		InputsDropped: i.InputsDropped, InputsRateLimited: i.InputsRateLimited, FramesDropped: i.FramesDropped}
}

type reply struct {
	ID    string `json:"id,omitempty"`
	Info  *info  `json:"info,omitempty"`
	List  []info `json:"list,omitempty"`
	Error string `json:"error,omitempty"` // a name from errorNames, or "other"
	Text  string `json:"text,omitempty"`  // the error's text for "other" and "rejected"
}

// errorNames are the engine's errors a reply can carry by name, so the
// gateway translates a remote failure exactly as a local one.
var errorNames = map[string]error{
	"unknown_mode":     match.ErrUnknownMode,
	"not_found":        match.ErrNotFound,
	"not_in_match":     match.ErrNotInMatch,
	"full":             match.ErrMatchFull,
	"queue_full":       match.ErrQueueFull,
	"rate_limited":     match.ErrRateLimited,
	"input_too_large":  match.ErrInputTooLarge,
	"reserved_op":      match.ErrReservedOp,
	"unknown_op":       match.ErrUnknownOp,
	"shutting_down":    match.ErrShuttingDown,
	"too_many_matches": match.ErrTooManyMatches,
	"invalid_presence": match.ErrInvalidPresence,
	"ended":            match.ErrEnded,
	"timeout":          context.DeadlineExceeded,
	"hosted":           match.ErrHosted,
	"not_supported":    match.ErrNotSupported,
}

// errorName names err for a reply; rejected joins keep their reason, and
// anything else (a game's Init refusing its parameters) its text.
func errorName(err error) (name, text string) {
	var rej *match.RejectedError
	if errors.As(err, &rej) {
		return "rejected", rej.Reason
	}
	for n, e := range errorNames {
		if errors.Is(err, e) {
			return n, ""
		}
	}
	return "other", err.Error()
}

// errorOf turns a reply's error back into the engine's error.
func errorOf(name, text string) error {
	switch name {
	case "":
		return nil
	case "rejected":
		return &match.RejectedError{Reason: text}
	}
	if e, ok := errorNames[name]; ok {
		return e
	}
	return errors.New(text)
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v) // our own plain structs: cannot fail
	return b
}
