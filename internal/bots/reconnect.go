package bots

// Reconnecting (--reconnect): a player whose socket the server closes (a
// gateway drained for an upgrade, restarted, or gone) connects again, to
// the next gateway of --url first, as a client behind a load balancer
// would, and resumes its match with the last resume token it was given
// (docs/protocol.md, section 6).

import (
	"net/netip"
	"sync"
	"time"
)

// reconnectFor bounds the attempts of one reconnection; a player still
// out after it counts an error. The game's disconnect grace (10 s by
// default) is the time a seat waits for its player.
const reconnectFor = 10 * time.Second

// reconnects owns the reconnection goroutines of a run: started while the
// run goes on, stopped (quit closed, every one waited for) when it ends.
type reconnects struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	quit   chan struct{}
	closed bool // under mu: no new reconnection starts
}

func newReconnects() *reconnects { return &reconnects{quit: make(chan struct{})} }

// start runs f in a reconnection goroutine unless the run is ending.
func (rc *reconnects) start(f func(quit <-chan struct{})) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.closed {
		return
	}
	rc.wg.Go(func() { f(rc.quit) })
}

// stop ends the reconnections under way and waits for them.
func (rc *reconnects) stop() {
	rc.mu.Lock()
	if !rc.closed {
		rc.closed = true
		close(rc.quit)
	}
	rc.mu.Unlock()
	rc.wg.Wait()
}

// sourceAddr is the local address bot i's sockets use (invalid: any).
func (r *run) sourceAddr(i int) netip.Addr {
	if r.cfg.SourceIPs > 1 {
		return netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i%r.cfg.SourceIPs)})
	}
	return netip.Addr{}
}

// reconnect brings b back after the server closed its socket: it connects
// again, each attempt to the next gateway, backing off from 50 ms to 1 s,
// and resumes b's match if it was in one. It ends at quit (the run is
// over) or after reconnectFor, then counting an error.
func (b *bot) reconnect(quit <-chan struct{}) {
	r := b.run
	deadline := time.Now().Add(reconnectFor)
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		select {
		case <-quit:
			return
		case <-time.After(wait):
		}
		s, rest, err := dial(r.targets[(b.idx+attempt)%len(r.targets)], r.sourceAddr(b.idx), b.token, 5*time.Second)
		if err == nil {
			rd := r.readers[b.idx%len(r.readers)]
			if err = rd.replace(b, s, rest); err == nil {
				r.connected.Add(1)
				r.reconnected.Add(1)
				if tok := b.resumeToken.Load(); tok != nil && !r.leaving.Load() {
					b.sendText(map[string]any{"type": "match.resume", "cid": "r", "payload": map[string]string{"resume_token": *tok}})
				}
				return
			}
		}
		if time.Now().After(deadline) {
			r.fail("player %d: reconnect: %v", b.idx, err)
			return
		}
		wait = min(2*wait, time.Second)
	}
}

// replace gives b the new socket s (rest: bytes that came with its
// handshake answer) in place of the one it lost, and serves it. Under
// rd.mu, as the loop that read the old socket may still hold an event
// for b.
func (rd *reader) replace(b *bot, s sock, rest []byte) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	b.wmu.Lock()
	b.sock, b.closed, b.out = s, false, nil
	b.wmu.Unlock()
	b.in = rest
	if err := rd.addLocked(b); err != nil {
		b.shutdown()
		return err
	}
	return nil
}
