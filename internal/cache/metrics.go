package cache

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is the cache's set of Prometheus collectors, labelled by cache
// name (the Name option of Typed, Memory and Near):
//
//	multijuego_cache_hits_total{cache}
//	multijuego_cache_misses_total{cache}
//	multijuego_cache_loads_total{cache}
//	multijuego_cache_load_errors_total{cache}
//	multijuego_cache_backend_errors_total{cache}
//	multijuego_cache_evictions_total{cache}
//	multijuego_cache_op_duration_seconds{cache,op}
//
// Hits, misses, loads and errors are counted by Typed; evictions by the
// in-process tiers (Memory, and the near tier of Near). A nil *Metrics
// records nothing.
type Metrics struct {
	hits, misses, loads, loadErrors, backendErrors, evictions *prometheus.CounterVec
	latency                                                   *prometheus.HistogramVec
}

// NewMetrics registers the cache collectors on reg. A nil reg returns a nil
// *Metrics (no metrics). Calling it again with the same reg returns
// collectors that share the first call's series, so every cache of a
// process can call it.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multijuego_cache_" + name, Help: help,
		}, []string{"cache"})
	}
	m := &Metrics{
		hits:          counter("hits_total", "Cache reads that found the entry."),
		misses:        counter("misses_total", "Cache reads that did not find the entry (undecodable entries included)."),
		loads:         counter("loads_total", "Loader calls made by GetOrLoad."),
		loadErrors:    counter("load_errors_total", "Loader calls that returned an error."),
		backendErrors: counter("backend_errors_total", "Backend operations that failed (for example Redis down or slow)."),
		evictions:     counter("evictions_total", "Entries evicted from an in-process tier to stay within its byte bound."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "multijuego_cache_op_duration_seconds",
			Help:    "Latency of cache operations by cache and operation.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"cache", "op"}),
	}
	var err error
	m.hits = register(reg, m.hits, &err)
	m.misses = register(reg, m.misses, &err)
	m.loads = register(reg, m.loads, &err)
	m.loadErrors = register(reg, m.loadErrors, &err)
	m.backendErrors = register(reg, m.backendErrors, &err)
	m.evictions = register(reg, m.evictions, &err)
	m.latency = register(reg, m.latency, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name. The first other failure is kept in *errp.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
}

// recorder is one cache name's view of Metrics. The zero recorder (from a
// nil *Metrics) records nothing.
type recorder struct {
	hits, misses, loads, loadErrors, backendErrors, evictions prometheus.Counter
	m                                                         *Metrics
	name                                                      string
}

func (m *Metrics) recorder(name string) recorder {
	if m == nil {
		return recorder{}
	}
	return recorder{
		hits:          m.hits.WithLabelValues(name),
		misses:        m.misses.WithLabelValues(name),
		loads:         m.loads.WithLabelValues(name),
		loadErrors:    m.loadErrors.WithLabelValues(name),
		backendErrors: m.backendErrors.WithLabelValues(name),
		evictions:     m.evictions.WithLabelValues(name),
		m:             m,
		name:          name,
	}
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

func add(c prometheus.Counter, n int) {
	if c != nil && n > 0 {
		c.Add(float64(n))
	}
}

// observer returns the latency histogram of one operation, or nil.
func (r recorder) observer(op string) prometheus.Observer {
	if r.m == nil {
		return nil
	}
	return r.m.latency.WithLabelValues(r.name, op)
}

func observeSince(o prometheus.Observer, start time.Time) {
	if o != nil {
		o.Observe(time.Since(start).Seconds())
	}
}
