package gateway

import (
	"strconv"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
)

// BenchmarkSweep is one sweep over 19,000 open sockets none of which ends
// (the common case): a deny-list check and an expiry check per socket, no
// lock of the gateway's held and no allocation per socket.
func BenchmarkSweep(b *testing.B) {
	const sockets = 19_000
	now := time.Now()
	rt := &realtime{}
	for i := range sockets {
		id := strconv.Itoa(i)
		rt.sessions.Store(id, &session{id: id, p: &auth.Principal{AccountID: "a" + id, JTI: "j" + id, SID: "s" + id,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}})
	}
	sw := &sweeper{rt: rt, deny: auth.NewDenylist(nil, time.Now), now: func() time.Time { return now }}
	b.ReportAllocs()
	for b.Loop() {
		sw.sweep()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/sockets, "ns/socket")
}
