package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/match"
)

// Matches is the match engine as the HTTP API uses it (*match.Engine).
type Matches interface {
	Create(ctx context.Context, mode string, params match.Params) (string, error)
	Get(id string) (match.Info, bool)
	List(f match.Filter) []match.Info
}

func (s *Server) matchRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/matches", s.authenticated(s.createMatch))
	mux.HandleFunc("GET /v1/matches", s.authenticated(s.listMatches))
}

// MatchResponse is a live match as the API shows it.
type MatchResponse struct {
	MatchID    string    `json:"match_id"`
	Mode       string    `json:"mode"`
	Label      string    `json:"label"`
	TickRate   int       `json:"tick_rate"`
	Players    int       `json:"players"`
	MaxPlayers int       `json:"max_players"`
	Open       bool      `json:"open"`
	Created    time.Time `json:"created"`
}

func matchResponse(i match.Info) MatchResponse {
	return MatchResponse{MatchID: i.ID, Mode: i.Mode, Label: i.Label, TickRate: i.TickRate, Players: i.Players,
		MaxPlayers: i.MaxPlayers, Open: i.Open, Created: i.Created}
}

// matchError translates the engine's errors; this file and errors.go are
// the only places match errors become API errors.
func matchError(err error) error {
	switch {
	case errors.Is(err, match.ErrUnknownMode):
		return errcode.Field("mode", "Unknown game mode.")
	case errors.Is(err, match.ErrTooManyMatches), errors.Is(err, match.ErrShuttingDown):
		return &errcode.Error{Code: errcode.Unavailable, Message: "No game node can start a match now (all are full or draining); try again shortly.", RetryAfter: 2 * time.Second}
	case errors.Is(err, match.ErrNotFound):
		return errcode.New(errcode.NotFound, "No such match, or it has ended.")
	case errors.Is(err, match.ErrNotInMatch):
		return errcode.New(errcode.Conflict, "You have no seat in this match.")
	case errors.Is(err, match.ErrUnknownOp):
		return errcode.Field("op", "This match's game accepts no input with this op code; the input was dropped.")
	case errors.Is(err, match.ErrReservedOp):
		return errcode.Field("op", "Op codes 0xFF00 and up are reserved.")
	case errors.Is(err, match.ErrInputTooLarge):
		return &errcode.Error{Code: errcode.TooLarge, Message: "Input payload too large."}
	case errors.Is(err, context.Canceled):
		return err // the caller went away
	case timedOut(err):
		// A game node across the router may still create the match, or
		// seat the player (the callers say what follows).
		return errTimeout
	}
	// Anything else came from the game's Init, or is the engine refusing a
	// parameter the mode does not declare (match.ParamError, which names
	// it): its message is written for players. A game node across the
	// router passes the same text, so both read alike.
	return errcode.Field("params", "The game refused these parameters: %s", strings.TrimPrefix(err.Error(), "match: "))
}

// inputError is matchError for a refused input: an unknown op code is
// named, since an input has no cid to tie the answer to it.
func inputError(err error, op match.OpCode) error {
	if errors.Is(err, match.ErrUnknownOp) {
		return errcode.Field("op", "This match's game accepts no input with op code %d; the input was dropped.", op)
	}
	return matchError(err)
}

func (s *Server) createMatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Mode   string            `json:"mode"`
		Params map[string]string `json:"params"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if req.Mode == "" {
		writeError(w, r, s.log, errcode.Field("mode", "mode is required."))
		return
	}
	if len(req.Params) > 32 {
		writeError(w, r, s.log, errcode.Field("params", "At most 32 parameters."))
		return
	}
	// As a realtime match.create: a game node that does not answer within
	// gateway.control_timeout gets the client a timeout (504); the match
	// may still be made, and then ends empty after game.empty_timeout.
	// The match limits (matchlimit.go) come first: 429 rate_limited.
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ControlTimeout)
	defer cancel()
	id, err := s.createMatchFor(ctx, PrincipalFrom(r.Context()).AccountID, clientIP(r.Context()), req.Mode, match.Params(req.Params))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, matchResponse(s.created(id, req.Mode)))
}

// created returns the summary of the match just made as id. The match
// exists, but reading its summary is a second call to the game node that
// may fail where the creation did not (the node's subscription not yet
// known to the gateway's NATS server, a NATS reconnect): then the answer
// is what the creation itself tells, the id and the mode, open and empty,
// never an error or an empty id for a match the client can join.
func (s *Server) created(id, mode string) match.Info {
	if info, ok := s.matches.Get(id); ok {
		return info
	}
	s.log.Warn("match created; its summary could not be read", "match", id)
	return match.Info{ID: id, Mode: mode, Open: true}
}

func (s *Server) listMatches(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 50, 1, 500)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	q := r.URL.Query()
	list := s.matches.List(match.Filter{Mode: q.Get("mode"), Label: q.Get("label"), OpenOnly: true, Limit: limit})
	out := struct {
		Matches []MatchResponse `json:"matches"`
	}{Matches: make([]MatchResponse, 0, len(list))}
	for _, i := range list {
		out.Matches = append(out.Matches, matchResponse(i))
	}
	writeJSON(w, http.StatusOK, out)
}
