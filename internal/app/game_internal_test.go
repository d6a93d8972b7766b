package app

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Observing a tick is a map lookup and an Observe on a pre-resolved
// observer: no allocation on the match goroutine's hot path.
func TestTickMetricDoesNotAllocate(t *testing.T) {
	reg := prometheus.NewRegistry()
	onTick, err := tickMetric(reg, []string{"arena", "tictactoe"})
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() { onTick("arena", 1500*time.Microsecond) })
	if allocs > 0 {
		t.Errorf("%.2f allocations per observed tick, want 0", allocs)
	}
	onTick("tictactoe", 40*time.Microsecond)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "multijuego_match_tick_seconds" {
		t.Fatalf("Gather: %v, %d families", err, len(mfs))
	}
	counts := map[string]uint64{}
	for _, m := range mfs[0].GetMetric() {
		counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
	}
	if counts["arena"] != 1001 || counts["tictactoe"] != 1 || len(counts) != 2 {
		t.Errorf("samples per mode: %v, want arena 1001 and tictactoe 1", counts)
	}
	if _, err := tickMetric(reg, nil); err == nil {
		t.Error("registering the histogram twice did not fail")
	}
}
