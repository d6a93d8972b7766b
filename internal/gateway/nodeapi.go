package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
)

// Nodes is the game-node directory as operators use it (the router).
type Nodes interface {
	// NodeList returns the live game nodes.
	NodeList(ctx context.Context) ([]NodeInfo, error)
	// DrainNode asks game node id to stop taking matches and hand its live
	// ones over to other nodes; it returns once the node has started. An
	// unknown node is an *errcode.Error (not_found).
	DrainNode(ctx context.Context, id string) error
	// PlayersOnline asks every gateway for its players online, at most
	// limit each, and returns the answers that came in time.
	PlayersOnline(ctx context.Context, limit int) ([]GatewayOnline, error)
}

// GatewayOnline is one gateway's players online: how many sockets it
// holds and the first of them.
type GatewayOnline struct {
	Node    string
	Count   int
	Players []OnlinePlayer
}

// NodeInfo is one game node of the directory.
type NodeInfo struct {
	ID         string    `json:"id"`
	Region     string    `json:"region,omitempty"`
	Zone       string    `json:"zone,omitempty"`
	Modes      []string  `json:"modes"`
	MaxMatches int       `json:"max_matches"`
	MaxPlayers int       `json:"max_players"`
	Matches    int       `json:"matches"`
	Players    int       `json:"players"`
	TickMaxMs  float64   `json:"tick_max_ms"`
	CPU        float64   `json:"cpu"`
	Draining   bool      `json:"draining"`
	Renewed    time.Time `json:"renewed"`
}

// nodeRoutes are served by every gateway with a directory, whether or not
// the auth role is in the process (these routes are more specific than the
// /v1/admin/ prefix proxied to the auth role).
func (s *Server) nodeRoutes(mux *http.ServeMux) {
	admin := func(h http.HandlerFunc) http.HandlerFunc { return s.requireRole(auth.RoleAdmin, h) }
	mux.HandleFunc("GET /v1/admin/nodes", admin(s.adminNodes))
	mux.HandleFunc("POST /v1/admin/nodes/{id}/drain", admin(s.adminDrainNode))
}

func (s *Server) adminNodes(w http.ResponseWriter, r *http.Request) {
	list, err := s.nodes.NodeList(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if list == nil {
		list = []NodeInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": list})
}

func (s *Server) adminDrainNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.nodes.DrainNode(r.Context(), id); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if s.auth != nil {
		s.auth.RecordAdminAction(r.Context(), PrincipalFrom(r.Context()), "drain_node", "", s.meta(r), map[string]any{"node": id})
	} else {
		s.log.InfoContext(r.Context(), "admin: drain node", "node", id, "admin", PrincipalFrom(r.Context()).AccountID)
	}
	w.WriteHeader(http.StatusAccepted)
}
