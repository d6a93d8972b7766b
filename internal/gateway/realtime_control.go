package gateway

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The control pool: text control messages (match.create, .list, .join,
// .resume, .leave) and the Disconnect of a closed socket wait on a match
// or on the key-value store, for up to Config.ControlTimeout. wsnet calls
// OnMessage and OnClose on the few reader goroutines that serve every
// socket, so that work must not run there: one slow key-value call would
// stall the inputs of every socket the reader serves. The reader only
// queues it here, and a bounded set of workers carries it out.
//
// Order: each session has its own list of pending work, and a session is
// scheduled (in the ready list, or being run by a worker) at most once, so
// one socket's messages are carried out one at a time, in the order they
// arrived, and its close after all of them (a join then a leave; a leave
// then the close).
//
// Bounds and overflow: a session holds at most maxPendingControl messages,
// and at most Config.ControlQueue sessions wait for a worker because of a
// message; past either bound the reader answers the message at once with
// errBusy (code busy, with the message's cid). A close is never refused
// (its Disconnect frees the seat after the grace period): a socket closes
// once, so the closes waiting here are at most the number of sockets.

// maxPendingControl bounds the control messages one socket may have
// waiting (besides the one being carried out); a client waits for answers
// before it sends more.
const maxPendingControl = 16

// controlJob is one piece of a session's control work: a message, or the
// close of its socket.
type controlJob struct {
	env   envelope
	close bool
}

// controlPool runs sessions' control work on a fixed set of workers. It is
// owned by the realtime gateway: started by newRealtime, stopped by
// realtime.close.
type controlPool struct {
	run      func(s *session, job controlJob) // carries out one job
	queueCap int                              // sessions waiting because of a message
	busy     prometheus.Counter               // messages answered errBusy

	mu     sync.Mutex
	cond   *sync.Cond // signalled when ready grows or the pool closes
	ready  []*session // sessions with work and no worker, FIFO; each at most once
	closed bool
	wg     sync.WaitGroup
}

// newControlPool starts workers goroutines (stop ends them) and registers
// the pool's metrics with reg.
func newControlPool(workers, queueCap int, run func(*session, controlJob), reg prometheus.Registerer) *controlPool {
	p := &controlPool{run: run, queueCap: queueCap}
	p.cond = sync.NewCond(&p.mu)
	p.busy = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "multijuego_realtime_control_busy_total",
		Help: "Realtime control messages answered busy: their socket had too many pending, or too many sockets waited for a control worker.",
	})
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "multijuego_realtime_control_waiting",
		Help: "Sockets whose control messages or close wait for a control worker.",
	}, func() float64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return float64(len(p.ready))
	})
	reg.MustRegister(p.busy, waiting)
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// submit queues a control message of s. It never blocks: it returns
// errBusy if s already has maxPendingControl messages pending, if
// queueCap sessions already wait for a worker, or once the pool is closed.
func (p *controlPool) submit(s *session, env envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(s.ctl) >= maxPendingControl || (!s.ctlScheduled && len(p.ready) >= p.queueCap) {
		p.busy.Inc()
		return errBusy
	}
	p.push(s, controlJob{env: env})
	return nil
}

// close queues the close of s's socket, after its pending messages. It
// never refuses and never waits for the pool, except after the pool was
// stopped (the gateway is shutting down) when s has no work scheduled:
// then no worker may be left to run it, and it runs the job itself.
func (p *controlPool) close(s *session) {
	p.mu.Lock()
	if !p.closed || s.ctlScheduled {
		p.push(s, controlJob{close: true})
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.run(s, controlJob{close: true})
}

// push appends job to s's list and schedules s if it is not already. The
// caller holds p.mu.
func (p *controlPool) push(s *session, job controlJob) {
	s.ctl = append(s.ctl, job)
	if !s.ctlScheduled {
		s.ctlScheduled = true
		p.ready = append(p.ready, s)
		p.cond.Signal()
	}
}

// work runs jobs until the pool is closed and nothing is left to run.
func (p *controlPool) work() {
	defer p.wg.Done()
	for {
		s, job, ok := p.next()
		if !ok {
			return
		}
		p.run(s, job)
		p.finished(s)
	}
}

// next takes the first job of the first ready session; ok is false once
// the pool is closed and drained.
func (p *controlPool) next() (s *session, job controlJob, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.ready) == 0 {
		if p.closed {
			return nil, controlJob{}, false
		}
		p.cond.Wait()
	}
	s = p.ready[0]
	p.ready[0] = nil
	p.ready = p.ready[1:]
	job = s.ctl[0]
	s.ctl[0] = controlJob{}
	s.ctl = s.ctl[1:]
	return s, job, true
}

// finished puts s back at the end of the ready list if it has more work
// (one job at a time, so a busy socket does not hold a worker), or marks
// it idle.
func (p *controlPool) finished(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(s.ctl) == 0 {
		s.ctl = nil
		s.ctlScheduled = false
		return
	}
	p.ready = append(p.ready, s)
	p.cond.Signal()
}

// stop refuses new messages, lets the workers finish what is queued (each
// job is bounded by Config.ControlTimeout) and waits for them.
func (p *controlPool) stop() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}
