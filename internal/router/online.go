package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Players online on every gateway (the admin API's list): a gateway asks
// on Prefix.online with a reply subject of its own, and every gateway's
// router, its own included, answers with its Local's list. Gateways have
// no directory, so the asker gathers answers for OnlineWindow and returns
// those it got.

// OnlineWindow is how long OnlineEverywhere waits for gateways to answer.
const OnlineWindow = 200 * time.Millisecond

// MaxOnlineReply bounds the players one gateway lists in its answer, so
// the answer fits in a NATS message (1 MB by default): its count stays
// exact.
const MaxOnlineReply = 5000

// Online is one gateway's answer: its node id, how many sockets it holds,
// and the first of them (Local.Online's JSON array, at most the limit
// asked and MaxOnlineReply).
type Online struct {
	Node    string          `json:"node"`
	Count   int             `json:"count"`
	Players json.RawMessage `json:"players"`
}

type onlineRequest struct {
	Limit int `json:"limit"`
}

// OnlineEverywhere asks every gateway for its players online, at most
// limit each (and MaxOnlineReply), and returns the answers that came
// within OnlineWindow (or before ctx ends), this gateway's among them.
func (r *Router) OnlineEverywhere(ctx context.Context, limit int) ([]Online, error) {
	if r.local == nil {
		return nil, errors.New("router: not a gateway")
	}
	inbox := r.nc.NewRespInbox()
	ch := make(chan *nats.Msg, 256) // answers beyond 256 gateways are dropped by NATS (slow consumer)
	sub, err := r.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, fmt.Errorf("router: online: %w", err)
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(onlineRequest{Limit: min(max(limit, 0), MaxOnlineReply)})
	if err := r.nc.PublishRequest(r.subject("online"), inbox, req); err != nil {
		return nil, fmt.Errorf("router: online: %w", err)
	}
	wait := time.NewTimer(OnlineWindow)
	defer wait.Stop()
	var out []Online
	for {
		select {
		case m := <-ch:
			var o Online
			if err := json.Unmarshal(m.Data, &o); err != nil || !ValidNodeID(o.Node) || o.Count < 0 {
				r.badBatch(m, fmt.Errorf("online answer: %v", err))
				continue
			}
			out = append(out, o)
		case <-wait.C:
			return out, nil
		case <-ctx.Done():
			return out, nil
		}
	}
}

// answerOnline answers a gateway's question with the local list.
func (r *Router) answerOnline(m *nats.Msg) {
	var q onlineRequest
	if m.Reply == "" || len(m.Data) > 64 || json.Unmarshal(m.Data, &q) != nil || q.Limit < 0 {
		r.badBatch(m, errors.New("malformed online question"))
		return
	}
	count, players := r.local.Online(min(q.Limit, MaxOnlineReply))
	b, err := json.Marshal(Online{Node: r.cfg.NodeID, Count: count, Players: players})
	if err != nil {
		return
	}
	if err := r.nc.Publish(m.Reply, b); err != nil {
		r.log.Warn("router: online answer not sent", "err", err)
	}
}
