//go:build !race

package arena_test

import "testing"

// The race detector makes sync.Pool drop items at random, so this runs
// without it only.
func TestArenaTickDoesNotAllocate(t *testing.T) {
	w, ps, bufs := benchWorld(t)
	n := 0
	for ; n < 100; n++ {
		w.benchTick(ps, bufs, n)
	}
	allocs := testing.AllocsPerRun(200, func() {
		w.benchTick(ps, bufs, n)
		n++
	})
	if allocs > 0 {
		t.Errorf("%.2f allocations per tick, want 0", allocs)
	}
}
