package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
)

// The live routes of the admin API (GET /v1/admin/matches, POST
// /v1/admin/matches/{id}/end, GET /v1/admin/players/online) are served by
// the process that reaches the matches and holds sockets: any gateway. With the auth role in the process the end is
// written to the audit log in-process after it is done; a gateway run
// without it (whose other /v1/admin/* routes go to the auth role) writes
// the audit row first, through the auth role (POST
// /v1/admin/audit/match-end, with the operator's own token), and ends
// nothing if that fails: no operator action without its row.

// matchEndAudit writes an operator's end of match id to the audit log:
// before the end (remote, where a failure stops it) or after (local).
type matchEndAudit interface {
	before(r *http.Request, id, reason string) error
	after(r *http.Request, id, reason string)
}

// localAudit is the auth service in this process.
type localAudit struct{ s *Server }

func (localAudit) before(*http.Request, string, string) error { return nil }

func (a localAudit) after(r *http.Request, id, reason string) {
	a.s.auth.RecordAdminAction(r.Context(), PrincipalFrom(r.Context()), "end_match", "", a.s.meta(r), map[string]any{"match_id": id, "reason": reason})
}

// remoteAudit is the auth role at base, reached through hc.
type remoteAudit struct {
	base string
	hc   *http.Client
}

func (a remoteAudit) before(r *http.Request, id, reason string) error {
	body, err := json.Marshal(map[string]string{"match_id": id, "reason": reason})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, strings.TrimSuffix(a.base, "/")+"/v1/admin/audit/match-end", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set("X-Forwarded-For", clientIP(r.Context())) // as the proxy says it (proxyTo)
	req.Header.Set("X-Request-ID", requestID(r.Context()))
	req.Header.Set("User-Agent", r.UserAgent()) // the operator's, for the row
	res, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return fmt.Errorf("the auth role answered %s", res.Status)
	}
	return nil
}

func (remoteAudit) after(*http.Request, string, string) {}

func (s *Server) adminMatchRoutes(mux *http.ServeMux) {
	admin := func(h http.HandlerFunc) http.HandlerFunc { return s.requireRole(auth.RoleAdmin, h) }
	mux.HandleFunc("GET /v1/admin/matches", admin(s.adminMatches))
	mux.HandleFunc("POST /v1/admin/matches/{id}/end", admin(s.adminEndMatch))
	mux.HandleFunc("GET /v1/admin/players/online", admin(s.adminOnline)) // every gateway's sockets
}

func (s *Server) adminEndMatch(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.reasonBody(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := s.endAudit.before(r, id, reason); err != nil {
		s.log.ErrorContext(r.Context(), "admin: the end of a match not written to the audit log; not ended", "match", id, "err", err, "request_id", requestID(r.Context()))
		writeError(w, r, s.log, &errcode.Error{Code: errcode.Unavailable, Message: "The audit log cannot be written now, so the match was not ended; try again shortly.", RetryAfter: 2 * time.Second})
		return
	}
	why := "ended_by_operator"
	if reason != "" {
		why += ": " + reason
	}
	if err := s.matches.End(r.Context(), id, why); err != nil {
		writeError(w, r, s.log, matchError(err))
		return
	}
	s.endAudit.after(r, id, reason)
	w.WriteHeader(http.StatusNoContent)
}

// adminAuditMatchEnd is the auth role's side of remoteAudit: it writes
// the row of an end a gateway is about to carry out, as the operator
// whose token the gateway passed on.
func (s *Server) adminAuditMatchEnd(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MatchID string `json:"match_id"`
		Reason  string `json:"reason"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	switch {
	case req.MatchID == "" || len(req.MatchID) > 64:
		writeError(w, r, s.log, errcode.Field("match_id", "Required, at most 64 bytes."))
		return
	case len(req.Reason) > 200:
		writeError(w, r, s.log, errcode.Field("reason", "At most 200 bytes."))
		return
	}
	s.auth.RecordAdminAction(r.Context(), PrincipalFrom(r.Context()), "end_match", "", s.meta(r), map[string]any{"match_id": req.MatchID, "reason": req.Reason})
	w.WriteHeader(http.StatusNoContent)
}

// newMatchEndAudit is the audit of match ends for a gateway with deps d.
func newMatchEndAudit(s *Server, cfg Config, d Deps) matchEndAudit {
	if d.Auth != nil {
		return localAudit{s}
	}
	if cfg.AuthURL == "" {
		return nil
	}
	return remoteAudit{base: cfg.AuthURL, hc: &http.Client{Transport: d.AuthTransport, Timeout: cfg.ControlTimeout}}
}
