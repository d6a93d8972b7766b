package gateway

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tarpit holds refused requests before their 429, so that one client
// cannot make the server answer refusals as fast as it can send them: a
// client that keeps a few connections busy with refused requests gets a
// few refusals a second, each costing the server a sleeping goroutine,
// not a core. At most perIP requests of one address (its rate-limit
// subject) and total overall are held at once; past either, the 429 goes
// out at once with Connection: close, so the client pays a new connection
// for its next try.
type tarpit struct {
	hold  time.Duration // 0: off
	perIP int
	total int64

	held atomic.Int64
	mu   sync.Mutex
	byIP map[string]int

	heldGauge prometheus.GaugeFunc
	closed    prometheus.Counter
}

func newTarpit(c LimitsConfig, reg prometheus.Registerer) *tarpit {
	t := &tarpit{hold: c.Tarpit, perIP: c.TarpitPerIP, total: int64(c.TarpitTotal), byIP: map[string]int{}}
	t.heldGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "multijuego_http_tarpit_held", Help: "Refused requests held before their 429 (limits.tarpit).",
	}, func() float64 { return float64(t.held.Load()) })
	t.closed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "multijuego_http_tarpit_full_total", Help: "Refusals answered at once with Connection: close because the tarpit was full for the address or overall.",
	})
	reg.MustRegister(t.heldGauge, t.closed)
	return t
}

// enter takes a place for subject; false when its share or the total is
// full.
func (t *tarpit) enter(subject string) bool {
	if t.hold <= 0 {
		return false
	}
	if t.held.Add(1) > t.total {
		t.held.Add(-1)
		return false
	}
	t.mu.Lock()
	n := t.byIP[subject]
	if n >= t.perIP {
		t.mu.Unlock()
		t.held.Add(-1)
		return false
	}
	t.byIP[subject] = n + 1
	t.mu.Unlock()
	return true
}

func (t *tarpit) leave(subject string) {
	t.mu.Lock()
	if n := t.byIP[subject] - 1; n > 0 {
		t.byIP[subject] = n
	} else {
		delete(t.byIP, subject)
	}
	t.mu.Unlock()
	t.held.Add(-1)
}

// delay holds r for up to retry (at most t.hold) before its refusal is
// written, or marks the answer Connection: close when the tarpit is full
// (or off) for subject. It returns early when the client goes away.
func (t *tarpit) delay(w http.ResponseWriter, r *http.Request, subject string, retry time.Duration) {
	if !t.enter(subject) {
		if t.hold > 0 {
			t.closed.Inc()
			w.Header().Set("Connection", "close")
		}
		return
	}
	defer t.leave(subject)
	timer := time.NewTimer(min(retry, t.hold))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.Context().Done():
	}
}
