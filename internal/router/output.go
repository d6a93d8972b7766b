package router

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/multijuego/multijuego/match"
)

// --- node side: the engine's Sender -----------------------------------------

// frameRun is a frame on its way to several sockets of one gateway: the
// engine hands the same *Frame to each recipient of a broadcast, one after
// the other, so consecutive sends of one frame become one entry with a
// list of sessions. The run holds one reference to the frame until it is
// encoded into the batch.
type frameRun struct {
	f        *match.Frame
	sessions []string
}

// seal encodes the pending frame run, if any, and releases its frame.
func (bt *batch) seal() {
	if bt.run.f == nil {
		return
	}
	bt.buf = appendFrame(bt.buf, bt.run.f.Bytes(), bt.run.sessions)
	bt.run.f.Release()
	bt.run.f, bt.run.sessions = nil, bt.run.sessions[:0]
}

// Send implements match.Sender: to the local gateway directly, to another
// gateway in its batch. It never blocks.
func (r *Router) Send(p match.Presence, f *match.Frame) bool {
	gw := r.gatewayOf(p.SessionID)
	if gw == "" {
		if r.local == nil {
			return false // the engine keeps its reference
		}
		return r.local.Send(p, f)
	}
	r.outputs.with(r.subject("g", gw, "out"), func(bt *batch) {
		if bt.run.f == f && len(bt.run.sessions) < 0xFFFF { // the count is a uint16
			bt.run.sessions = append(bt.run.sessions, p.SessionID)
			f.Release() // the run already holds a reference
			return
		}
		bt.seal()
		bt.run.f, bt.run.sessions = f, append(bt.run.sessions, p.SessionID)
	})
	return true
}

// Close implements match.Sender.
func (r *Router) Close(p match.Presence, matchID string, reason match.Reason) {
	gw := r.gatewayOf(p.SessionID)
	if gw == "" {
		if r.local != nil {
			r.local.Close(p, matchID, reason)
		}
		return
	}
	r.outputs.with(r.subject("g", gw, "out"), func(bt *batch) {
		bt.seal()
		bt.buf = appendClose(bt.buf, matchID, p, reason)
	})
}

// inputFailed reports a refused remote input to the socket's gateway.
func (r *Router) inputFailed(p match.Presence, op match.OpCode, err error) {
	gw := r.gatewayOf(p.SessionID)
	name, _ := errorName(err)
	if gw == "" {
		if r.local != nil {
			r.local.InputRefused(p.SessionID, op, err)
		}
		return
	}
	r.outputs.with(r.subject("g", gw, "out"), func(bt *batch) {
		bt.seal()
		bt.buf = appendInputFail(bt.buf, p.SessionID, op, name)
	})
}

// serveInputs hands remote inputs to the local engine. Inputs that came
// on a match's subject make this node tell the sending gateway that it
// hosts the match (once per gateway and match), so the gateway batches
// the next ones per node. An input for a match that moved away is
// forwarded to the match's subject, where its new host listens, and the
// gateway is told to forget the host.
func (r *Router) serveInputs(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-r.inCh:
			var err error
			if m.Subject == r.nodeIn {
				err = decodeNodeInputs(m.Data, r.nodeInput)
			} else {
				id := matchOfSubject(m.Subject)
				err = decodeInputs(m.Data, func(in Input) {
					in.Match = id
					r.nodeInput(in)
					r.hint(in.Presence, id)
				})
			}
			if err != nil {
				r.badBatch(m, err)
			}
		}
	}
}

func (r *Router) nodeInput(in Input) {
	r.Received.Add(1)
	err := r.engine.Input(in.Match, in.Presence, in.Op, in.Data)
	switch {
	case err == nil:
	case err == match.ErrNotFound && validSubjectToken(in.Match):
		r.inputs.with(r.subject("m", in.Match, "in"), func(bt *batch) { bt.buf = appendInput(bt.buf, in.Presence, in.Op, in.Data) })
		r.sendHost(in.Presence, in.Match, "")
	default:
		r.inputFailed(in.Presence, in.Op, err)
	}
}

// hint tells the gateway of p that this node hosts match id, once.
func (r *Router) hint(p match.Presence, id string) {
	gw := r.gatewayOf(p.SessionID)
	if gw == "" {
		return // this process's own gateway calls the engine directly
	}
	key := gw + "/" + id
	if _, ok := r.hinted[key]; ok {
		return
	}
	if len(r.hinted) >= maxWhere {
		clear(r.hinted) // bounded: hints are sent again, which is harmless
	}
	r.hinted[key] = struct{}{}
	r.sendHost(p, id, r.cfg.NodeID)
}

func (r *Router) sendHost(p match.Presence, id, node string) {
	gw := r.gatewayOf(p.SessionID)
	if gw == "" {
		return
	}
	r.outputs.with(r.subject("g", gw, "out"), func(bt *batch) {
		bt.seal()
		bt.buf = appendHost(bt.buf, id, node)
	})
}

// maxWhere bounds the gateway's match -> node map and the node's record of
// hints sent; past it they start again empty.
const maxWhere = 100_000

// matchOfSubject is the match id in Prefix.m.<id>.in.
func matchOfSubject(s string) string {
	end := len(s) - len(".in")
	start := end - 1
	for start >= 0 && s[start] != '.' {
		start--
	}
	if start < 0 || end <= start {
		return ""
	}
	return s[start+1 : end]
}

func (r *Router) badBatch(m *nats.Msg, err error) {
	r.BadBatches.Add(1)
	r.log.Error("router: malformed batch dropped", "subject", m.Subject, "bytes", len(m.Data), "err", err)
}

// --- gateway side: delivering what remote nodes send --------------------------

func (r *Router) serveOutputs(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-r.outCh:
			err := decodeOut(m.Data, func(o *Out) {
				switch o.Kind {
				case kindFrame:
					r.local.Deliver(o.Sessions, o.Frame)
				case kindClose:
					r.local.Close(o.Presence, o.Match, match.Reason(o.Reason))
				case kindInputFail:
					r.local.InputRefused(o.Presence.SessionID, o.Op, errorOf(o.Reason, o.Reason))
				case kindHost:
					r.learnHost(o.Match, o.Reason)
				}
			})
			if err != nil {
				r.badBatch(m, err)
			}
		}
	}
}

// Input implements the gateway's engine: the local engine if it hosts the
// match, else the match's input batch. A remote refusal comes back later
// through Local.InputRefused.
func (r *Router) Input(id string, p match.Presence, op match.OpCode, data []byte) error {
	if r.engine != nil {
		err := r.engine.Input(id, p, op, data)
		if err != match.ErrNotFound {
			return err
		}
	}
	if !validSubjectToken(id) {
		return match.ErrNotFound
	}
	if op >= match.OpReservedMin {
		return match.ErrReservedOp
	}
	if len(data) > 0xFFFF {
		return match.ErrInputTooLarge
	}
	r.whereMu.RLock()
	node := r.where[id]
	r.whereMu.RUnlock()
	if node != "" {
		r.inputs.with(r.subject("n", node, "in"), func(bt *batch) { bt.buf = appendNodeInput(bt.buf, id, p, op, data) })
		return nil
	}
	r.inputs.with(r.subject("m", id, "in"), func(bt *batch) { bt.buf = appendInput(bt.buf, p, op, data) })
	return nil
}

// Host is the node this gateway believes hosts match id ("" : unknown, the
// match's own subject is used).
func (r *Router) Host(id string) string {
	r.whereMu.RLock()
	defer r.whereMu.RUnlock()
	return r.where[id]
}

// learnHost records (or, with node "", forgets) where a match runs.
func (r *Router) learnHost(id, node string) {
	r.whereMu.Lock()
	defer r.whereMu.Unlock()
	if node == "" {
		delete(r.where, id)
		return
	}
	if !ValidNodeID(node) {
		return
	}
	if len(r.where) >= maxWhere {
		clear(r.where)
	}
	r.where[id] = node
}

// sinceRead is how long a read of the node directory serves placements.
const sinceRead = time.Second
