package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/router"
	"github.com/multijuego/multijuego/match"
)

// nodeID is the configured node id, or the host name made safe for NATS
// subjects plus a random suffix, so two processes on one host never
// share an id by accident.
func nodeID(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "node"
	}
	h = strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '-'
	}, h)
	if len(h) > 48 {
		h = h[:48]
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return h + "-" + hex.EncodeToString(b), nil
}

// openVerifier is the token check of a gateway without the auth role: the
// auth role's JWKS and the shared deny list.
func openVerifier(ctx context.Context, m *Main, hc *http.Client) (*auth.Verifier, error) {
	profiles := cache.NewTyped[auth.Profile](m.volatile.cache, "account", 1,
		cache.TypedOptions{Metrics: m.volatile.metrics, Name: "account", Logger: m.Logger})
	return auth.NewVerifier(ctx, m.Config.Auth, auth.VerifierDeps{
		JWKSURL: strings.TrimRight(m.Config.Gateway.AuthURL, "/") + "/.well-known/jwks.json", HTTPClient: hc,
		Store: m.store, Profiles: profiles, ProfileTTL: m.Config.Cache.AccountTTL, Logger: m.Logger,
	})
}

// authTransport carries every call a gateway without the auth role makes
// to it (proxied routes, JWKS, readiness): TLS as gateway.auth_tls says,
// with a client certificate for mutual TLS.
func authTransport(c Config) (*http.Transport, error) {
	tlsCfg, err := c.Gateway.AuthTLS.Config("")
	if err != nil {
		return nil, fmt.Errorf("gateway.auth_tls: %w", err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if tlsCfg != nil {
		t.TLSClientConfig = tlsCfg
	}
	return t, nil
}

// openRouter connects this process's gateway and game node to the others
// over the event bus's NATS connection, and makes it the engine's Sender.
func openRouter(m *Main) (*router.Router, error) {
	c := m.Config.Game
	cfg := router.Config{NodeID: m.nodeID, Region: c.Region, Zone: c.Zone, MaxMatches: c.MaxMatches, MaxPlayers: c.MaxPlayers,
		Heartbeat: c.Heartbeat, FlushInterval: c.BatchInterval, RequestTimeout: 5 * m.Config.Cache.Timeout, ListTTL: c.SnapshotTTL, DrainTimeout: c.ShutdownGrace}
	d := router.Deps{Conn: m.bus.Conn(), KV: m.volatile.kv, Logger: m.Logger}
	if m.game != nil {
		cfg.Modes, d.Engine, d.Leases, d.OnLost = m.game.modes, m.game.engine, m.game.node, m.game.lost
	}
	r, err := router.New(cfg, d)
	if err != nil {
		return nil, err
	}
	if m.game != nil {
		var s match.Sender = r
		m.game.relay.to.Store(&s)
		m.game.drained = r.Drained()
	}
	m.registry.MustRegister(
		counterOf("multijuego_router_forwarded_total", "Batches and requests this node sent to other nodes over NATS.", &r.Forwarded),
		counterOf("multijuego_router_received_total", "Inputs this game node received from gateways in other processes.", &r.Received),
		counterOf("multijuego_router_dropped_total", "Batches that could not be published.", &r.Dropped),
		counterOf("multijuego_router_bad_batches_total", "Malformed batches received and dropped.", &r.BadBatches),
		counterOf("multijuego_router_registrations_total", "Times this game node wrote its record in the node directory.", &r.Registered),
		counterOf("multijuego_router_matches_recovered_total", "Matches of dead nodes this node restored from their snapshots.", &r.Recovered),
		counterOf("multijuego_router_matches_lost_total", "Matches of dead nodes that could not be restored and were ended with a reason.", &r.Lost),
		counterOf("multijuego_router_matches_moved_total", "Matches this node handed over to other nodes while draining.", &r.Moved),
	)
	return r, nil
}

func modeNames(modes []Mode) []string {
	names := make([]string, len(modes))
	for i, md := range modes {
		names[i] = md.Name
	}
	return names
}

// nodeAdmin is the router as the gateway's admin API sees it.
type nodeAdmin struct{ r *router.Router }

func (n nodeAdmin) NodeList(ctx context.Context) ([]gateway.NodeInfo, error) {
	recs, err := n.r.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.NodeInfo, len(recs))
	for i, r := range recs {
		out[i] = gateway.NodeInfo{ID: r.ID, Region: r.Region, Zone: r.Zone, Modes: r.Modes, MaxMatches: r.MaxMatches,
			MaxPlayers: r.MaxPlayers, Matches: r.Matches, Players: r.Players, TickMaxMs: r.TickMax, CPU: r.CPU,
			Draining: r.Draining, Renewed: r.Renewed}
	}
	return out, nil
}

func (n nodeAdmin) PlayersOnline(ctx context.Context, limit int) ([]gateway.GatewayOnline, error) {
	answers, err := n.r.OnlineEverywhere(ctx, limit)
	out := make([]gateway.GatewayOnline, 0, len(answers))
	for _, a := range answers {
		g := gateway.GatewayOnline{Node: a.Node, Count: a.Count}
		if json.Unmarshal(a.Players, &g.Players) != nil || len(g.Players) > max(limit, 0) {
			continue // a gateway that does not keep to the protocol: left out
		}
		out = append(out, g)
	}
	return out, err
}

func (n nodeAdmin) DrainNode(ctx context.Context, id string) error {
	err := n.r.DrainNode(ctx, id)
	if errors.Is(err, router.ErrUnknownNode) {
		return errcode.New(errcode.NotFound, "No such game node (or it does not answer).")
	}
	return err
}
