package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/ratelimit"
)

// limits are the abuse limits the gateway applies (gateway.Limits): on
// Redis when redis_url is set, so they hold across nodes, else in-process.
type limits struct {
	gateway.Limits
	redis *ratelimit.Redis // nil without redis_url
}

func openLimits(m *Main) (*limits, error) {
	c := m.Config.Limits
	l := &limits{Limits: gateway.Limits{Config: c, LoopbackUnlimited: m.Config.devServer()}}
	rules := c.Rules()
	if m.volatile != nil && m.volatile.redis != nil {
		r, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: m.volatile.redis, Prefix: m.Config.RedisPrefix + "rl:", Rules: rules,
			Timeout: m.Config.Cache.Timeout, Fallback: c.Fallback, MaxKeys: c.MaxKeys, Logger: m.Logger})
		if err != nil {
			return nil, err
		}
		l.redis, l.Limiter = r, r
	} else {
		mem := ratelimit.NewMemory(ratelimit.MemoryOptions{Rules: rules, MaxKeys: c.MaxKeys})
		l.Limiter = mem
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_ratelimit_evicted_total", Help: "Live rate-limit buckets dropped to keep limits.max_keys (their subjects' debts forgiven)."},
			func() float64 { return float64(mem.Evicted.Load()) }))
	}
	var err error
	if c.DenyFile != "" {
		if l.Deny, err = ratelimit.LoadIPList(c.DenyFile, m.Logger); err != nil {
			return nil, err
		}
	}
	if c.AllowFile != "" {
		if l.Allow, err = ratelimit.LoadIPList(c.AllowFile, m.Logger); err != nil {
			return nil, err
		}
	}
	l.register(m.registry)
	return l, nil
}

func (l *limits) register(reg prometheus.Registerer) {
	if r := l.redis; r != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_ratelimit_fallback_checks_total", Help: "Rate-limit checks answered in-process, at limits.fallback of the configured rate, because Redis was unreachable."},
				func() float64 { return float64(r.FallbackChecks.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_ratelimit_redis_outages_total", Help: "Times the rate limiter lost Redis and fell back to in-process limits."},
				func() float64 { return float64(r.Outages.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_ratelimit_degraded", Help: "1 while rate limits are answered in-process because Redis is unreachable."},
				func() float64 {
					if r.Degraded(context.Background()) != nil {
						return 1
					}
					return 0
				}),
		)
	}
	for _, list := range []struct {
		name string
		l    *ratelimit.IPList
	}{{"deny", l.Deny}, {"allow", l.Allow}} {
		if list.l == nil {
			continue
		}
		il := list.l
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "multijuego_ip_list_entries", Help: "Entries of an IP list in force.", ConstLabels: prometheus.Labels{"list": list.name}},
				func() float64 { return float64(il.Len()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "multijuego_ip_list_reload_errors_total", Help: "Failed re-reads of an IP list file (the previous list stayed in force).", ConstLabels: prometheus.Labels{"list": list.name}},
				func() float64 { return float64(il.ReloadErrors.Load()) }),
		)
	}
}

// ready is the readiness check of the limits: degraded, never failing,
// while Redis is unreachable.
func (l *limits) ready() []gateway.ReadyCheck {
	if l.redis == nil {
		return nil
	}
	return []gateway.ReadyCheck{gateway.ReadyDegraded("rate_limits", l.redis.Degraded)}
}

// watch re-reads the IP lists on change and on SIGHUP; nil without lists.
func (l *limits) watch() func(ctx context.Context) error {
	if l.Deny == nil && l.Allow == nil {
		return nil
	}
	every := l.Config.ListsReload
	if every <= 0 {
		every = 5 * time.Second
	}
	return func(ctx context.Context) error { return ratelimit.WatchIPLists(ctx, every, l.Deny, l.Allow) }
}
