package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
)

func (s *Server) authRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
	mux.HandleFunc("POST /v1/auth/register", s.register)
	mux.HandleFunc("POST /v1/auth/login", s.login)
	mux.HandleFunc("POST /v1/auth/device", s.device)
	mux.HandleFunc("POST /v1/auth/oidc", s.oidcLogin)
	mux.HandleFunc("POST /v1/auth/refresh", s.refresh)
	mux.HandleFunc("POST /v1/auth/logout", s.authenticated(s.logout))
	mux.HandleFunc("GET /v1/account", s.authenticated(s.account))
	mux.HandleFunc("POST /v1/account/link", s.authenticated(s.link))
	mux.HandleFunc("POST /v1/account/password", s.authenticated(s.changePassword))
	mux.HandleFunc("DELETE /v1/account", s.authenticated(s.deleteAccount))
	mux.HandleFunc("GET /v1/account/identities", s.authenticated(s.identities))
	mux.HandleFunc("POST /v1/account/identities", s.authenticated(s.linkIdentity))
	mux.HandleFunc("DELETE /v1/account/identities", s.authenticated(s.unlinkIdentity))
	mux.HandleFunc("GET /v1/admin/accounts", s.requireRole(auth.RoleAdmin, s.adminListAccounts))
	mux.HandleFunc("GET /v1/admin/accounts/{id}", s.requireRole(auth.RoleAdmin, s.adminGetAccount))
	mux.HandleFunc("POST /v1/admin/accounts/{id}/ban", s.requireRole(auth.RoleAdmin, s.adminBan))
	mux.HandleFunc("POST /v1/admin/accounts/{id}/unban", s.requireRole(auth.RoleAdmin, s.adminUnban))
	mux.HandleFunc("PUT /v1/admin/accounts/{id}/roles", s.requireRole(auth.RoleAdmin, s.adminSetRoles))
	mux.HandleFunc("DELETE /v1/admin/accounts/{id}", s.requireRole(auth.RoleAdmin, s.adminDeleteAccount))
	mux.HandleFunc("GET /v1/admin/audit", s.requireRole(auth.RoleAdmin, s.adminAudit))
	mux.HandleFunc("GET /v1/admin/audit/verify", s.requireRole(auth.RoleAdmin, s.adminAuditVerify))
}

// TokenResponse is the body of every successful login, registration and
// refresh.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	AccountID    string `json:"account_id"`
}

// AccountResponse is an account as the API shows it.
type AccountResponse = auth.Profile

func accountResponse(a store.Account) AccountResponse { return auth.ProfileOf(a) }

func (s *Server) meta(r *http.Request) auth.Meta {
	return auth.Meta{IP: clientIP(r.Context()), UserAgent: r.UserAgent()}
}

// decode reads the JSON body into dst, answering the error itself.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if err := decodeJSON(r, dst, s.cfg.MaxBodyBytes, false); err != nil {
		writeError(w, r, s.log, err)
		return false
	}
	return true
}

func (s *Server) tokens(w http.ResponseWriter, r *http.Request, status int, p auth.TokenPair, err error) {
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, TokenResponse{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, TokenType: "Bearer", ExpiresIn: p.ExpiresIn, AccountID: p.AccountID})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(s.auth.Keys().JWKS())
}

// credentials is the body of register, login and link.
type credentials struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req credentials
	if !s.decode(w, r, &req) {
		return
	}
	p, err := s.auth.Register(r.Context(), auth.RegisterRequest{Username: req.Username, Email: req.Email, Password: req.Password}, s.meta(r))
	s.tokens(w, r, http.StatusCreated, p, err)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req credentials
	if !s.decode(w, r, &req) {
		return
	}
	p, err := s.auth.Login(r.Context(), auth.LoginRequest{Username: req.Username, Email: req.Email, Password: req.Password}, s.meta(r))
	s.tokens(w, r, http.StatusOK, p, err)
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DeviceID string `json:"device_id"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	p, err := s.auth.Device(r.Context(), req.DeviceID, s.meta(r))
	status := http.StatusOK
	if p.Created {
		status = http.StatusCreated
	}
	s.tokens(w, r, status, p, err)
}

// oidcRequest is the body of an external sign-in or link: an ID token or
// access token, and optionally the configured name of its issuer.
type oidcRequest struct {
	Token  string `json:"token"`
	Issuer string `json:"issuer"`
}

func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request) {
	var req oidcRequest
	if !s.decode(w, r, &req) {
		return
	}
	p, err := s.auth.OIDCLogin(r.Context(), auth.OIDCRequest{Token: req.Token, Issuer: req.Issuer}, s.meta(r))
	status := http.StatusOK
	if p.Created {
		status = http.StatusCreated
	}
	s.tokens(w, r, status, p, err)
}

// IdentityResponse is a linked external identity.
type IdentityResponse struct {
	Issuer    string    `json:"issuer"`
	Subject   string    `json:"subject"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) identities(w http.ResponseWriter, r *http.Request) {
	ids, err := s.auth.Identities(r.Context(), PrincipalFrom(r.Context()))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Identities []IdentityResponse `json:"identities"`
	}{Identities: []IdentityResponse{}}
	for _, id := range ids {
		out.Identities = append(out.Identities, IdentityResponse{Issuer: id.Issuer, Subject: id.Subject, CreatedAt: id.CreatedAt})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) linkIdentity(w http.ResponseWriter, r *http.Request) {
	var req oidcRequest
	if !s.decode(w, r, &req) {
		return
	}
	id, err := s.auth.LinkIdentity(r.Context(), PrincipalFrom(r.Context()), auth.OIDCRequest{Token: req.Token, Issuer: req.Issuer}, s.meta(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, IdentityResponse{Issuer: id.Issuer, Subject: id.Subject, CreatedAt: id.CreatedAt})
}

func (s *Server) unlinkIdentity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("issuer") == "" || q.Get("subject") == "" {
		writeError(w, r, s.log, errcode.Field("issuer", "issuer and subject query parameters are required."))
		return
	}
	if err := s.auth.UnlinkIdentity(r.Context(), PrincipalFrom(r.Context()), q.Get("issuer"), q.Get("subject"), s.meta(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if req.RefreshToken == "" {
		writeError(w, r, s.log, errcode.Field("refresh_token", "refresh_token is required."))
		return
	}
	p, err := s.auth.Refresh(r.Context(), req.RefreshToken, s.meta(r))
	s.tokens(w, r, http.StatusOK, p, err)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.auth.Logout(r.Context(), PrincipalFrom(r.Context()), s.meta(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	p, err := s.auth.Profile(r.Context(), PrincipalFrom(r.Context()).AccountID)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) link(w http.ResponseWriter, r *http.Request) {
	var req credentials
	if !s.decode(w, r, &req) {
		return
	}
	a, err := s.auth.Link(r.Context(), PrincipalFrom(r.Context()), auth.LinkRequest{Username: req.Username, Email: req.Email, Password: req.Password}, s.meta(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, accountResponse(a))
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	p, err := s.auth.ChangePassword(r.Context(), PrincipalFrom(r.Context()), req.CurrentPassword, req.NewPassword, s.meta(r))
	s.tokens(w, r, http.StatusOK, p, err)
}

// deleteAccount erases the caller's account (204). The body, which a guest
// account may leave out, gives the password of an account that has one.
func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CurrentPassword string `json:"current_password"`
	}
	if err := decodeJSON(r, &req, s.cfg.MaxBodyBytes, true); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := s.auth.DeleteAccount(r.Context(), PrincipalFrom(r.Context()), req.CurrentPassword, s.meta(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminDeleteAccount(w http.ResponseWriter, r *http.Request) {
	if err := s.auth.AdminDeleteAccount(r.Context(), PrincipalFrom(r.Context()), r.PathValue("id"), s.meta(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func queryInt(r *http.Request, name string, def, min, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, errcode.Field(name, "%s must be an integer between %d and %d.", name, min, max)
	}
	return n, nil
}

func (s *Server) adminListAccounts(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 50, 1, 500)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	q := r.URL.Query()
	list, err := s.auth.ListAccounts(r.Context(), store.AccountQuery{Search: q.Get("q"), After: q.Get("after"), Limit: limit})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Accounts []AccountResponse `json:"accounts"`
		Next     string            `json:"next,omitempty"`
	}{Accounts: []AccountResponse{}}
	for _, a := range list {
		out.Accounts = append(out.Accounts, accountResponse(a))
	}
	if len(list) == limit {
		out.Next = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminGetAccount(w http.ResponseWriter, r *http.Request) {
	p, err := s.auth.Profile(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) adminBan(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &req, s.cfg.MaxBodyBytes, true); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	a, err := s.auth.Ban(r.Context(), PrincipalFrom(r.Context()), r.PathValue("id"), req.Reason, s.meta(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	// The ban is a kick too: every gateway closes the account's socket.
	writeJSON(w, http.StatusOK, accountResponse(a))
}

func (s *Server) adminUnban(w http.ResponseWriter, r *http.Request) {
	a, err := s.auth.Unban(r.Context(), PrincipalFrom(r.Context()), r.PathValue("id"), s.meta(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, accountResponse(a))
}

func (s *Server) adminSetRoles(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Roles []string `json:"roles"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	a, err := s.auth.SetRoles(r.Context(), PrincipalFrom(r.Context()), r.PathValue("id"), req.Roles, s.meta(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, accountResponse(a))
}

// AuditResponse is one audit event as the API shows it.
type AuditResponse struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Kind      string    `json:"kind"`
	AccountID string    `json:"account_id,omitempty"`
	ActorID   string    `json:"actor_id,omitempty"`
	IP        string    `json:"ip,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	ChainSeq  int64     `json:"chain_seq,omitempty"` // the row's place in the hash chain; absent until chained
}

func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 50, 1, 500)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	before, err := queryInt(r, "before", 0, 0, int(^uint(0)>>1))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	q := r.URL.Query()
	events, err := s.auth.Audit(r.Context(), store.AuditQuery{AccountID: q.Get("account_id"), Kind: q.Get("kind"), Before: int64(before), Limit: limit})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Events []AuditResponse `json:"events"`
		Next   int64           `json:"next,omitempty"`
	}{Events: []AuditResponse{}}
	for _, e := range events {
		out.Events = append(out.Events, AuditResponse{ID: e.ID, At: e.At, Kind: e.Kind, AccountID: e.AccountID, ActorID: e.ActorID, IP: e.IP, Detail: e.Detail, ChainSeq: e.ChainSeq})
	}
	if len(events) == limit {
		out.Next = events[len(events)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// AuditProblemResponse is one place where the audit chain does not hold.
type AuditProblemResponse struct {
	Kind   string `json:"kind"`
	Seq    int64  `json:"seq"`
	ID     int64  `json:"id,omitempty"`
	Detail string `json:"detail"`
}

// AuditVerifyResponse is the result of walking the audit chain.
type AuditVerifyResponse struct {
	OK              bool                   `json:"ok"`
	Chained         int64                  `json:"chained"`
	Head            string                 `json:"head,omitempty"` // SEQ:HASH, to keep as an anchor
	Unchained       int64                  `json:"unchained"`
	OldestUnchained *time.Time             `json:"oldest_unchained,omitempty"`
	ProblemCount    int64                  `json:"problem_count"`
	Problems        []AuditProblemResponse `json:"problems"`
}

func (s *Server) adminAuditVerify(w http.ResponseWriter, r *http.Request) {
	var anchor store.AuditHead
	if a := r.URL.Query().Get("anchor"); a != "" {
		var err error
		if anchor, err = store.ParseAuditHead(a); err != nil {
			writeError(w, r, s.log, errcode.Field("anchor", "anchor must be SEQ:HASH, as a verification's head."))
			return
		}
	}
	rep, err := s.auth.VerifyAudit(r.Context(), anchor)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := AuditVerifyResponse{OK: rep.OK(), Chained: rep.Chained, Unchained: rep.Unchained, ProblemCount: rep.ProblemCount, Problems: []AuditProblemResponse{}}
	if rep.Chained > 0 {
		out.Head = rep.Head.String()
	}
	if !rep.OldestUnchained.IsZero() {
		out.OldestUnchained = &rep.OldestUnchained
	}
	for _, p := range rep.Problems {
		out.Problems = append(out.Problems, AuditProblemResponse{Kind: p.Kind, Seq: p.Seq, ID: p.ID, Detail: p.Detail})
	}
	writeJSON(w, http.StatusOK, out)
}
