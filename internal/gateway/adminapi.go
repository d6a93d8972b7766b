package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/persist"
	"github.com/multijuego/multijuego/match"
)

// The operators' API beyond accounts (authapi.go): live matches, players
// online, the dead-letter queue. Every route needs the admin role; every
// action is written to the audit log. The admin console at /admin uses
// exactly these routes.

// DeadLetters is the persistence service's dead-letter queue
// (*persist.DLQ) as the admin API uses it.
type DeadLetters interface {
	List(ctx context.Context, limit int) ([]persist.DeadLetter, error)
	Get(ctx context.Context, seq uint64) (persist.DeadLetter, error)
	Replay(ctx context.Context, seq uint64) error
	ReplayAll(ctx context.Context) (int, error)
}

// CloseKicked closes a socket an administrator closed (kick or ban), on
// every gateway (the kick is a deny-list entry: realtime_sessions.go).
// Clients must not reconnect on their own after it.
const CloseKicked = 4003

func (s *Server) adminRoutes(mux *http.ServeMux) {
	admin := func(h http.HandlerFunc) http.HandlerFunc { return s.requireRole(auth.RoleAdmin, h) }
	// A gateway without the auth role writes an operator's end of a
	// match here (adminmatches.go).
	mux.HandleFunc("POST /v1/admin/audit/match-end", admin(s.adminAuditMatchEnd))
	// A kick reaches every gateway through the deny list, so this process
	// needs no socket of its own.
	mux.HandleFunc("POST /v1/admin/players/{id}/kick", admin(s.adminKick))
	// Without an event queue in the process the routes answer 503.
	dlq := func(h http.HandlerFunc) http.HandlerFunc {
		return admin(func(w http.ResponseWriter, r *http.Request) {
			if s.dlq == nil {
				writeError(w, r, s.log, errNoQueue)
				return
			}
			h(w, r)
		})
	}
	mux.HandleFunc("GET /v1/admin/dlq", dlq(s.adminDLQList))
	mux.HandleFunc("GET /v1/admin/dlq/{seq}", dlq(s.adminDLQGet))
	mux.HandleFunc("POST /v1/admin/dlq/{seq}/replay", dlq(s.adminDLQReplay))
	mux.HandleFunc("POST /v1/admin/dlq/replay", dlq(s.adminDLQReplayAll))
}

// AdminMatchResponse is a live match as operators see it.
type AdminMatchResponse struct {
	MatchResponse
	Node      string   `json:"node"`
	PlayerIDs []string `json:"player_ids"`
	TickMs    float64  `json:"tick_ms"` // recent time one tick takes
	// Counters since the match started.
	InputsDropped     uint64 `json:"inputs_dropped"`
	InputsRateLimited uint64 `json:"inputs_rate_limited"`
	FramesDropped     uint64 `json:"frames_dropped"`
}

func (s *Server) adminMatches(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 200, 1, 5000)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	q := r.URL.Query()
	list := s.matches.List(match.Filter{Mode: q.Get("mode"), Label: q.Get("label"), Limit: limit})
	out := struct {
		Matches []AdminMatchResponse `json:"matches"`
	}{Matches: make([]AdminMatchResponse, 0, len(list))}
	for _, i := range list {
		ids := i.PlayerIDs
		if ids == nil {
			ids = []string{}
		}
		out.Matches = append(out.Matches, AdminMatchResponse{
			MatchResponse: matchResponse(i), Node: cmp.Or(i.Node, s.node), PlayerIDs: ids,
			TickMs:        float64(i.TickTime.Microseconds()) / 1000,
			InputsDropped: i.InputsDropped, InputsRateLimited: i.InputsRateLimited, FramesDropped: i.FramesDropped,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// reasonBody reads the optional {"reason": "..."} of an admin action.
func (s *Server) reasonBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &req, s.cfg.MaxBodyBytes, true); err != nil {
		writeError(w, r, s.log, err)
		return "", false
	}
	if len(req.Reason) > 200 {
		writeError(w, r, s.log, errcode.Field("reason", "At most 200 bytes."))
		return "", false
	}
	return req.Reason, true
}

// OnlinePlayer is one account with an open realtime socket on this node.
type OnlinePlayer struct {
	AccountID   string    `json:"account_id"`
	MatchID     string    `json:"match_id"` // "" when in no match
	ConnectedAt time.Time `json:"connected_at"`
	Node        string    `json:"node"` // the gateway that holds the socket
}

// GatewayCount is one gateway's number of sockets in the players online.
type GatewayCount struct {
	Node  string `json:"node"`
	Count int    `json:"count"`
}

// adminOnline lists the players online on every gateway that answers in
// time (router.OnlineWindow), oldest connection first; this gateway's
// alone when the others cannot be asked.
func (s *Server) adminOnline(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 500, 1, 20000)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	var answers []GatewayOnline
	if s.nodes != nil {
		if answers, err = s.nodes.PlayersOnline(r.Context(), limit); err != nil {
			s.log.Warn("players online: other gateways not asked", "err", err)
			answers = nil
		}
	}
	if !slices.ContainsFunc(answers, func(a GatewayOnline) bool { return a.Node == s.node }) {
		all := s.rt.online()
		answers = append(answers, GatewayOnline{Node: s.node, Count: len(all), Players: all[:min(limit, len(all))]})
	}
	out := struct {
		Count    int            `json:"count"`
		Node     string         `json:"node"`
		Gateways []GatewayCount `json:"gateways"`
		Players  []OnlinePlayer `json:"players"`
	}{Node: s.node, Gateways: []GatewayCount{}, Players: []OnlinePlayer{}}
	for _, a := range answers {
		out.Count += a.Count
		out.Gateways = append(out.Gateways, GatewayCount{a.Node, a.Count})
		out.Players = append(out.Players, a.Players...)
	}
	slices.SortFunc(out.Gateways, func(a, b GatewayCount) int { return cmpString(a.Node, b.Node) })
	sortOnline(out.Players)
	out.Players = out.Players[:min(limit, len(out.Players))]
	writeJSON(w, http.StatusOK, out)
}

// Online is this gateway's players as the router sends them to the
// gateway that asks (router.Local): the count, and the first limit as JSON.
func (rt *realtime) Online(limit int) (int, json.RawMessage) {
	all := rt.online()
	b, err := json.Marshal(all[:min(max(limit, 0), len(all))])
	if err != nil {
		return len(all), json.RawMessage("[]")
	}
	return len(all), b
}

func (s *Server) adminKick(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.reasonBody(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := s.auth.Kick(r.Context(), id); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.auth.RecordAdminAction(r.Context(), PrincipalFrom(r.Context()), "kick", id, s.meta(r), map[string]any{"reason": reason})
	w.WriteHeader(http.StatusNoContent)
}

// --- dead-letter queue ---

var errNoQueue = &errcode.Error{Code: errcode.Unavailable, Message: "This process has no event queue (it runs neither the game nor the persistence role)."}

// DeadLetterResponse is a dead-lettered event.
type DeadLetterResponse struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Subject    string    `json:"subject"`
	StreamSeq  uint64    `json:"stream_seq"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	MatchID    string    `json:"match_id"`
	Error      string    `json:"error"`
	Deliveries int       `json:"deliveries"`
	Size       int       `json:"size"`
	Payload    *string   `json:"payload,omitempty"` // only for one message
}

func deadLetterResponse(d persist.DeadLetter, withPayload bool) DeadLetterResponse {
	out := DeadLetterResponse{Seq: d.Seq, Time: d.Time, Subject: d.Subject, StreamSeq: d.StreamSeq, EventID: d.EventID,
		Type: d.Type, MatchID: d.MatchID, Error: d.Error, Deliveries: d.Deliveries, Size: len(d.Payload)}
	if withPayload {
		p := string(d.Payload) // JSON text, or whatever a poison message held
		out.Payload = &p
	}
	return out
}

// dlqError translates the dead-letter queue's errors.
func (s *Server) dlqError(err error) error {
	switch {
	case errors.Is(err, persist.ErrNotFound):
		return errcode.New(errcode.NotFound, "No such dead letter.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	s.log.Warn("dead-letter queue", "err", err)
	return &errcode.Error{Code: errcode.Unavailable, Message: "The event queue did not answer; try again shortly.", RetryAfter: 2 * time.Second}
}

func (s *Server) dlqSeq(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, r, s.log, errcode.Field("seq", "seq must be a dead letter's sequence number (a positive integer)."))
		return 0, false
	}
	return seq, true
}

func (s *Server) adminDLQList(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", persist.DefaultListLimit, 1, 1000)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	list, err := s.dlq.List(r.Context(), limit)
	if err != nil {
		writeError(w, r, s.log, s.dlqError(err))
		return
	}
	out := struct {
		Messages []DeadLetterResponse `json:"messages"`
	}{Messages: make([]DeadLetterResponse, 0, len(list))}
	for _, d := range list {
		out.Messages = append(out.Messages, deadLetterResponse(d, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminDLQGet(w http.ResponseWriter, r *http.Request) {
	seq, ok := s.dlqSeq(w, r)
	if !ok {
		return
	}
	d, err := s.dlq.Get(r.Context(), seq)
	if err != nil {
		writeError(w, r, s.log, s.dlqError(err))
		return
	}
	writeJSON(w, http.StatusOK, deadLetterResponse(d, true))
}

func (s *Server) adminDLQReplay(w http.ResponseWriter, r *http.Request) {
	seq, ok := s.dlqSeq(w, r)
	if !ok {
		return
	}
	if err := s.dlq.Replay(r.Context(), seq); err != nil {
		writeError(w, r, s.log, s.dlqError(err))
		return
	}
	s.auth.RecordAdminAction(r.Context(), PrincipalFrom(r.Context()), "dlq_replay", "", s.meta(r), map[string]any{"seq": seq})
	writeJSON(w, http.StatusOK, map[string]int{"replayed": 1})
}

func (s *Server) adminDLQReplayAll(w http.ResponseWriter, r *http.Request) {
	n, err := s.dlq.ReplayAll(r.Context())
	if err != nil && n == 0 {
		writeError(w, r, s.log, s.dlqError(err))
		return
	}
	s.auth.RecordAdminAction(r.Context(), PrincipalFrom(r.Context()), "dlq_replay_all", "", s.meta(r), map[string]any{"replayed": n})
	if err != nil {
		s.log.Warn("dead-letter replay stopped part way", "replayed", n, "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
}

// --- realtime side ---

// online lists the accounts with an open socket, oldest connection first.
func (rt *realtime) online() []OnlinePlayer {
	rt.mu.Lock()
	ss := make([]*session, 0, len(rt.byAccount))
	for _, s := range rt.byAccount {
		ss = append(ss, s)
	}
	rt.mu.Unlock()
	out := make([]OnlinePlayer, 0, len(ss))
	for _, s := range ss {
		out = append(out, OnlinePlayer{AccountID: s.p.AccountID, MatchID: s.currentMatch(), ConnectedAt: s.since, Node: rt.gw.node})
	}
	sortOnline(out)
	return out
}

// sortOnline orders players by connection, oldest first.
func sortOnline(ps []OnlinePlayer) {
	slices.SortFunc(ps, func(a, b OnlinePlayer) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return cmpString(a.AccountID, b.AccountID)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
