package router

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/multijuego/multijuego/internal/procstat"
	"github.com/multijuego/multijuego/match"
)

// --- gateway side ---------------------------------------------------------------

// call sends a control request and decodes the reply. No responder means
// nobody hosts the match (or the node is gone): match.ErrNotFound.
func (r *Router) call(ctx context.Context, subject string, req request) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	m, err := r.nc.RequestWithContext(ctx, subject, marshal(req))
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return reply{}, match.ErrNotFound
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return reply{}, context.DeadlineExceeded
	case err != nil:
		return reply{}, err
	}
	var rep reply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return reply{}, errWire
	}
	return rep, errorOf(rep.Error, rep.Text)
}

// callMatch sends a request to whichever node hosts match id. A match
// between two nodes (handed over, or being taken over after a crash) has
// no host for a moment but keeps its lease: the request is tried again
// until it finds the new host or the request timeout passes.
func (r *Router) callMatch(ctx context.Context, id string, req request) (reply, error) {
	if !validSubjectToken(id) {
		return reply{}, match.ErrNotFound
	}
	req.Match = id
	deadline := time.Now().Add(r.cfg.RequestTimeout)
	for {
		rep, err := r.call(ctx, r.subject("m", id, "ctl"), req)
		if !errors.Is(err, match.ErrNotFound) || rep.Error != "" || time.Now().After(deadline) || !r.moving(ctx, id) {
			return rep, err
		}
		select {
		case <-ctx.Done():
			return rep, err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Create places a new match: on the least loaded game node with room for
// mode, in params["region"] if given (the parameter is the router's, not
// the game's, and is removed). This node's engine is called directly.
func (r *Router) Create(ctx context.Context, mode string, params match.Params) (string, error) {
	region := params["region"]
	if region != "" {
		params = cloneWithout(params, "region")
	}
	nodes, err := r.directory(ctx)
	if err != nil {
		return "", err
	}
	candidates := place(nodes, mode, region, r.placedCounts())
	if len(candidates) == 0 {
		switch {
		case r.engine != nil && region == "" && len(nodes) == 0:
			return r.createLocal(ctx, mode, params) // not registered yet: starting
		case len(nodes) > 0 && !slices.ContainsFunc(nodes, func(n NodeRecord) bool { return slices.Contains(n.Modes, mode) }):
			return "", match.ErrUnknownMode
		}
		return "", ErrNoNode
	}
	var last error
	for i, n := range candidates {
		if i == 3 {
			break
		}
		r.notePlaced(n.ID)
		var id string
		if n.ID == r.cfg.NodeID && r.engine != nil {
			id, err = r.createLocal(ctx, mode, params)
		} else {
			var rep reply
			rep, err = r.call(ctx, r.subject("n", n.ID, "ctl"), request{Op: opCreate, Mode: mode, Params: params})
			id = rep.ID
		}
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, match.ErrTooManyMatches) && !errors.Is(err, match.ErrShuttingDown) && !errors.Is(err, match.ErrNotFound) {
			return "", err // the game refused its parameters, or a mode error: the same on every node
		}
		last = err
	}
	return "", errors.Join(ErrNoNode, last)
}

func cloneWithout(p match.Params, key string) match.Params {
	out := make(match.Params, len(p))
	for k, v := range p {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// createLocal creates a match on this node's engine, unless the node is
// draining: a gateway whose directory was read before the drain still
// places matches here, and a match created after the drain listed the
// node's matches would stay behind and end with the node. The gateway then
// tries its next candidate.
func (r *Router) createLocal(ctx context.Context, mode string, params match.Params) (string, error) {
	if r.draining.Load() {
		return "", match.ErrShuttingDown
	}
	id, err := r.engine.Create(ctx, mode, params)
	if err == nil {
		r.host(id)
		r.listNow(ctx)
	}
	return id, err
}

// directory returns the node records, read at most once a second.
func (r *Router) directory(ctx context.Context) ([]NodeRecord, error) {
	r.mu.Lock()
	if time.Since(r.readAt) < sinceRead {
		nodes := r.nodes
		r.mu.Unlock()
		return nodes, nil
	}
	r.mu.Unlock()
	nodes, err := r.reg.nodes(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.nodes, r.readAt, r.placed = nodes, time.Now(), map[string]int{}
	r.mu.Unlock()
	return nodes, nil
}

func (r *Router) placedCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.placed))
	for k, v := range r.placed {
		out[k] = v
	}
	return out
}

func (r *Router) notePlaced(node string) {
	r.mu.Lock()
	r.placed[node]++
	r.mu.Unlock()
}

// Nodes returns the game nodes of the directory.
func (r *Router) Nodes(ctx context.Context) ([]NodeRecord, error) { return r.reg.nodes(ctx) }

// Get returns a match's summary, wherever it runs.
func (r *Router) Get(id string) (match.Info, bool) {
	if r.engine != nil {
		if i, ok := r.engine.Get(id); ok {
			i.Node = r.cfg.NodeID
			return i, true
		}
	}
	rep, err := r.callMatch(context.Background(), id, request{Op: opGet})
	if err != nil || rep.Info == nil {
		return match.Info{}, false
	}
	return rep.Info.match(), true
}

// List returns the matches of every game node that pass f, oldest first.
// A node that does not answer within the request timeout is left out.
func (r *Router) List(f match.Filter) []match.Info {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.RequestTimeout)
	defer cancel()
	var out []match.Info
	if r.engine != nil {
		out = r.engine.List(f)
		for i := range out {
			out[i].Node = r.cfg.NodeID
		}
	}
	nodes, err := r.directory(ctx)
	if err != nil {
		r.log.Warn("router: read the node directory", "err", err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	fl := &filter{Mode: f.Mode, Label: f.Label, OpenOnly: f.OpenOnly, Limit: f.Limit}
	for _, n := range nodes {
		if n.ID == r.cfg.NodeID && r.engine != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := r.call(ctx, r.subject("n", n.ID, "ctl"), request{Op: opList, Filter: fl})
			if err != nil {
				r.log.Debug("router: list a node's matches", "node", n.ID, "err", err)
				return
			}
			mu.Lock()
			for _, i := range rep.List {
				out = append(out, i.match())
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// Join seats p in match id, wherever it runs.
func (r *Router) Join(ctx context.Context, id string, p match.Presence, meta map[string]string) error {
	if r.engine != nil {
		if err := r.engine.Join(ctx, id, p, meta); err != match.ErrNotFound {
			return err
		}
	}
	_, err := r.callMatch(ctx, id, request{Op: opJoin, Presence: toPresence(p), Meta: meta})
	return err
}

// Leave frees p's seat in match id, wherever it runs, waiting until ctx is
// done at most (and the request timeout). As with match.Engine.Leave, a
// request that reached the match is carried out even if ctx ends first.
func (r *Router) Leave(ctx context.Context, id string, p match.Presence) error {
	if r.engine != nil {
		if err := r.engine.Leave(ctx, id, p); err != match.ErrNotFound {
			return err
		}
	}
	_, err := r.callMatch(ctx, id, request{Op: opLeave, Presence: toPresence(p)})
	return err
}

// Disconnect tells match id that p's socket dropped, waiting until ctx is
// done at most (and the request timeout); like Leave, a request that
// reached the match is carried out even if ctx ends first.
func (r *Router) Disconnect(ctx context.Context, id string, p match.Presence) error {
	if r.engine != nil {
		if err := r.engine.Disconnect(ctx, id, p); err != match.ErrNotFound {
			return err
		}
	}
	_, err := r.callMatch(ctx, id, request{Op: opDisconnect, Presence: toPresence(p)})
	return err
}

// End ends match id with reason.
func (r *Router) End(ctx context.Context, id, reason string) error {
	if r.engine != nil {
		if err := r.engine.End(ctx, id, reason); err != match.ErrNotFound {
			return err
		}
	}
	_, err := r.callMatch(ctx, id, request{Op: opEnd, Reason: reason})
	return err
}

// --- node side --------------------------------------------------------------------

// serveControl answers control requests; several run, so one slow join
// (a busy match) does not hold up the others.
func (r *Router) serveControl(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-r.ctlCh:
			var req request
			var rep reply
			if err := json.Unmarshal(m.Data, &req); err != nil {
				rep.Error, rep.Text = "other", "malformed request"
			} else {
				rep = r.handle(ctx, req)
			}
			if err := m.Respond(marshal(rep)); err != nil {
				r.log.Debug("router: reply", "err", err)
			}
		}
	}
}

func (r *Router) handle(ctx context.Context, req request) reply {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	var rep reply
	var err error
	switch req.Op {
	case opCreate:
		rep.ID, err = r.createLocal(ctx, req.Mode, match.Params(req.Params))
	case opList:
		f := match.Filter{}
		if req.Filter != nil {
			f = match.Filter{Mode: req.Filter.Mode, Label: req.Filter.Label, OpenOnly: req.Filter.OpenOnly, Limit: req.Filter.Limit}
		}
		for _, i := range r.engine.List(f) {
			rep.List = append(rep.List, toInfo(i, r.cfg.NodeID))
		}
	case opGet:
		i, ok := r.engine.Get(req.Match)
		if !ok {
			err = match.ErrNotFound
		} else {
			ri := toInfo(i, r.cfg.NodeID)
			rep.Info = &ri
		}
	case opJoin:
		err = r.engine.Join(ctx, req.Match, req.Presence.match(), req.Meta)
	case opLeave:
		err = r.engine.Leave(ctx, req.Match, req.Presence.match())
	case opDisconnect:
		err = r.engine.Disconnect(ctx, req.Match, req.Presence.match())
	case opEnd:
		err = r.engine.End(ctx, req.Match, req.Reason)
	case opAdopt:
		err = r.adopt(ctx, req.Snapshot)
	case opDrain:
		r.drainLater()
	default:
		err = errors.New("unknown operation")
	}
	if err != nil {
		rep.Error, rep.Text = errorName(err)
	}
	return rep
}

// cpuMeter measures the cores this process used between two samples.
type cpuMeter struct {
	mu   sync.Mutex
	last time.Time
	used time.Duration
}

func (c *cpuMeter) sample() float64 {
	used, err := procstat.CPUTime()
	if err != nil {
		return 0
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var cores float64
	if !c.last.IsZero() && now.After(c.last) {
		cores = float64(used-c.used) / float64(now.Sub(c.last))
	}
	c.last, c.used = now, used
	return cores
}
