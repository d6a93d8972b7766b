package router

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// One socket per account across gateways. A gateway that opens a socket
// tells the others (Prefix.sockets, one message per socket opened, core
// NATS: at most once); each closes its own socket of that account if it
// opened earlier (Local.Replace), so that of two sockets opened at once on
// two gateways exactly one stays: the later by the gateways' clocks, the
// greater session id on a tie. A message lost (NATS down, the receiving
// gateway's queue full) leaves the older socket open, as before this
// rule: the player then has two sockets until one closes.

// socketOpened is the message of Prefix.sockets.
type socketOpened struct {
	Account string `json:"a"`
	Session string `json:"s"`
	Opened  int64  `json:"t"` // Unix nanoseconds
}

// maxSocketMsg bounds a Prefix.sockets message (ids of at most 128 bytes).
const maxSocketMsg = 512

// SocketOpened tells the other gateways that this one opened session, a
// socket of account, at opened.
func (r *Router) SocketOpened(account, session string, opened time.Time) {
	b, err := json.Marshal(socketOpened{Account: account, Session: session, Opened: opened.UnixNano()})
	if err != nil {
		return
	}
	r.publish(r.subject("sockets"), b)
}

// decodeSocketOpened parses a Prefix.sockets message.
func decodeSocketOpened(b []byte) (socketOpened, error) {
	var m socketOpened
	if len(b) > maxSocketMsg {
		return m, errors.New("socket message too long")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	if m.Account == "" || len(m.Account) > 128 || m.Session == "" || len(m.Session) > 128 || m.Opened <= 0 {
		return m, errors.New("socket message without account, session or time")
	}
	return m, nil
}

// serveSockets hands other gateways' sockets to the local gateway, and
// answers their questions for the players online (online.go): one queue,
// the gateways' own traffic.
func (r *Router) serveSockets(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-r.sockCh:
			r.socketMsg(m)
		}
	}
}

func (r *Router) socketMsg(m *nats.Msg) {
	if m.Subject == r.subject("online") {
		r.answerOnline(m)
		return
	}
	s, err := decodeSocketOpened(m.Data)
	if err != nil {
		r.badBatch(m, err)
		return
	}
	if r.gatewayOf(s.Session) == "" {
		return // this gateway's own
	}
	r.local.Replace(s.Account, s.Session, time.Unix(0, s.Opened))
}
