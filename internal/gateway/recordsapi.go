package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
)

// Records is the durable side of matches as the read API uses it
// (*store.Store): what the persistence role wrote.
type Records interface {
	Match(ctx context.Context, id string) (store.MatchRecord, error)
	PlayerMatches(ctx context.Context, accountID, before string, limit int) ([]store.MatchRecord, string, error)
	MatchEvents(ctx context.Context, matchID, after string, limit int) ([]store.MatchEventRecord, string, error)
	Leaderboards(ctx context.Context) ([]store.Leaderboard, error)
	LeaderboardTop(ctx context.Context, boardID string, now time.Time, limit int) ([]store.RankedRecord, error)
	LeaderboardAround(ctx context.Context, boardID, accountID string, now time.Time, n int) ([]store.RankedRecord, error)
}

func (s *Server) recordRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/players/{id}/matches", s.authenticated(s.playerMatches))
	mux.HandleFunc("GET /v1/matches/{id}/events", s.authenticated(s.matchEvents))
	mux.HandleFunc("GET /v1/leaderboards", s.authenticated(s.leaderboards))
	mux.HandleFunc("GET /v1/leaderboards/{id}", s.authenticated(s.leaderboardTop))
	mux.HandleFunc("GET /v1/leaderboards/{id}/around/{player_id}", s.authenticated(s.leaderboardAround))
}

// recordError translates the store's errors for the read API.
func recordError(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errcode.New(errcode.NotFound, "No such %s.", what)
	}
	return err
}

// MatchRecordResponse is a match as persistence stored it.
type MatchRecordResponse struct {
	MatchID    string           `json:"match_id"`
	Mode       string           `json:"mode"`
	Label      string           `json:"label"`
	Node       string           `json:"node"`
	Live       bool             `json:"live"`
	StartedAt  time.Time        `json:"started_at"`
	EndedAt    *time.Time       `json:"ended_at,omitempty"`
	DurationMs int64            `json:"duration_ms,omitempty"`
	EndReason  string           `json:"end_reason,omitempty"`
	Results    []ResultResponse `json:"results"`
}

// ResultResponse is one player's result in a match.
type ResultResponse struct {
	AccountID string             `json:"account_id"`
	Placement int                `json:"placement"`
	Score     int64              `json:"score"`
	Stats     map[string]float64 `json:"stats,omitempty"`
}

func matchRecordResponse(m store.MatchRecord) MatchRecordResponse {
	out := MatchRecordResponse{MatchID: m.ID, Mode: m.Mode, Label: m.Label, Node: m.Node, StartedAt: m.StartedAt,
		DurationMs: m.DurationMs, EndReason: m.EndReason, Results: make([]ResultResponse, 0, len(m.Results))}
	if m.Ended() {
		t := m.EndedAt
		out.EndedAt = &t
	}
	for _, r := range m.Results {
		out.Results = append(out.Results, ResultResponse{AccountID: r.AccountID, Placement: r.Placement, Score: r.Score, Stats: r.Stats})
	}
	return out
}

// getMatch answers GET /v1/matches/{id}: the live match when this node
// runs it, else its stored record (with results once it has ended).
func (s *Server) getMatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.matches != nil {
		if info, ok := s.matches.Get(id); ok {
			writeJSON(w, http.StatusOK, map[string]any{"live": true, "match": matchResponse(info)})
			return
		}
	}
	if s.records == nil {
		writeError(w, r, s.log, errcode.New(errcode.NotFound, "No such match, or it has ended."))
		return
	}
	m, err := s.records.Match(r.Context(), id)
	if err != nil {
		writeError(w, r, s.log, recordError(err, "match"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"live": false, "match": matchRecordResponse(m)})
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, errcode.Field(name, "%s must be an integer from %d to %d.", name, lo, hi)
	}
	return n, nil
}

// playerID resolves "me" to the caller.
func playerID(r *http.Request, v string) string {
	if v == "me" {
		return PrincipalFrom(r.Context()).AccountID
	}
	return v
}

func (s *Server) playerMatches(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 20, 1, 100)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	before := r.URL.Query().Get("before")
	if len(before) > 64 {
		writeError(w, r, s.log, errcode.Field("before", "before is a cursor from a previous page."))
		return
	}
	list, next, err := s.records.PlayerMatches(r.Context(), playerID(r, r.PathValue("id")), before, limit)
	if err != nil {
		writeError(w, r, s.log, recordError(err, "player"))
		return
	}
	out := make([]MatchRecordResponse, 0, len(list))
	for _, m := range list {
		out = append(out, matchRecordResponse(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"matches": out, "next": next})
}

// MatchEventResponse is a key moment of a match, as its game emitted it.
// A personal event (personal.go) names its Owner and says in Personal
// whether Data is shown.
type MatchEventResponse struct {
	EventID  string          `json:"event_id"`
	Name     string          `json:"name"`
	At       time.Time       `json:"at"`
	Data     json.RawMessage `json:"data,omitempty"`
	Owner    string          `json:"owner,omitempty"`
	Personal string          `json:"personal,omitempty"`
}

func (s *Server) matchEvents(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	after := r.URL.Query().Get("after")
	if len(after) > 64 {
		writeError(w, r, s.log, errcode.Field("after", "after is a cursor from a previous page."))
		return
	}
	list, next, err := s.records.MatchEvents(r.Context(), r.PathValue("id"), after, limit)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": s.eventResponses(r.Context(), list), "next": next})
}

// RankResponse is one leaderboard row.
type RankResponse struct {
	Rank      int       `json:"rank"`
	AccountID string    `json:"account_id"`
	Value     int64     `json:"value"`
	UpdatedAt time.Time `json:"updated_at"`
}

func rankResponses(rs []store.RankedRecord) []RankResponse {
	out := make([]RankResponse, 0, len(rs))
	for _, x := range rs {
		out = append(out, RankResponse{Rank: x.Rank, AccountID: x.AccountID, Value: x.Value, UpdatedAt: x.UpdatedAt})
	}
	return out
}

func (s *Server) leaderboards(w http.ResponseWriter, r *http.Request) {
	boards, err := s.records.Leaderboards(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := make([]map[string]string, 0, len(boards))
	for _, b := range boards {
		out = append(out, map[string]string{"id": b.ID, "mode": b.Mode, "metric": b.Metric, "operator": b.Operator, "reset": b.Reset})
	}
	writeJSON(w, http.StatusOK, map[string]any{"leaderboards": out})
}

func (s *Server) leaderboardTop(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 10, 1, 100)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	rows, err := s.records.LeaderboardTop(r.Context(), r.PathValue("id"), time.Now(), limit)
	if err != nil {
		writeError(w, r, s.log, recordError(err, "leaderboard"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"leaderboard_id": r.PathValue("id"), "records": rankResponses(rows)})
}

func (s *Server) leaderboardAround(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "n", 5, 0, 50)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	rows, err := s.records.LeaderboardAround(r.Context(), r.PathValue("id"), playerID(r, r.PathValue("player_id")), time.Now(), n)
	if err != nil {
		writeError(w, r, s.log, recordError(err, "leaderboard, or no record of this player on it"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"leaderboard_id": r.PathValue("id"), "records": rankResponses(rows)})
}
