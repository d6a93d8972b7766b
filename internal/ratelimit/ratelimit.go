// Package ratelimit is multijuego's one place for abuse limits: token
// buckets keyed by (class, subject), where a class is a kind of action
// ("ip.auth", "account.matches", ...) with its own Rule and a subject is
// whoever acts (an IP, an account id).
//
// Two backends implement Limiter and pass one contract suite
// (contract_test.go): Memory, in-process, sharded and bounded; and Redis,
// shared by every node (one Lua script, one round trip per check), which
// keeps limiting in-process at a stricter rate while Redis is unreachable
// and reports itself degraded meanwhile.
//
// A bucket is kept as the generic cell rate algorithm's one number, the
// theoretical arrival time (TAT) of the next event: an event is allowed
// when the bucket, with this event counted, holds no more than Burst
// events' worth, i.e. when TAT+interval-now <= Burst*interval, where
// interval = Period/Limit. This is exactly a token bucket of Burst tokens
// refilled at Limit per Period, stored in one value per key, so a Redis
// check is one GET and one SET inside one script and a bucket that has
// refilled (TAT <= now) is the same as no bucket at all: it may be
// forgotten, which is what makes the memory backend's eviction and the
// Redis keys' expiry free of effect on the limits.
//
// IPList is the other half of the abuse limits: address and CIDR lists
// (deny, allow) read from files and swapped atomically when they change or
// on SIGHUP (WatchIPLists).
//
// To limit something new, give it a class with a Rule in the limiter's
// Rules and call Allow(ctx, class, subject) where it happens; a refusal
// carries RetryAfter for the 429 or the WebSocket error.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rule is one class's limit: Limit events per Period, in bursts of at most
// Burst (0: Limit). The zero Rule (Limit 0) is no limit.
type Rule struct {
	Limit  int
	Period time.Duration
	Burst  int
}

// Off reports whether the rule limits nothing.
func (r Rule) Off() bool { return r.Limit <= 0 }

// interval is the time one event's token takes to refill.
func (r Rule) interval() time.Duration {
	if r.Off() {
		return 0
	}
	return max(r.Period/time.Duration(r.Limit), 1)
}

func (r Rule) burst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return r.Limit
}

// Stricter returns the rule at fraction (0 < fraction <= 1) of r's rate and
// burst (at least one event per burst): what a limiter applies while it
// cannot reach its shared store.
func (r Rule) Stricter(fraction float64) Rule {
	if r.Off() || fraction >= 1 || fraction <= 0 {
		return r
	}
	// Keep the limit, stretch the period: the rate drops by fraction
	// without rounding a small limit to zero.
	out := Rule{Limit: r.Limit, Period: time.Duration(float64(r.Period) / fraction), Burst: int(float64(r.burst()) * fraction)}
	out.Burst = max(out.Burst, 1)
	return out
}

// String renders r in the syntax ParseRule reads.
func (r Rule) String() string {
	if r.Off() {
		return "off"
	}
	s := strconv.Itoa(r.Limit) + "/" + shortDuration(r.Period)
	if r.Burst > 0 && r.Burst != r.Limit {
		s += " burst " + strconv.Itoa(r.Burst)
	}
	return s
}

func shortDuration(d time.Duration) string {
	s := d.String() // "1m0s", "1h0m0s", "10s", "500ms"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseRule reads "LIMIT/PERIOD" or "LIMIT/PERIOD burst N" (examples:
// "60/1m", "10/s", "600/1h burst 50"), or "off" (or "0") for no limit.
// PERIOD is a Go duration; a bare unit (s, m, h) means one of it.
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" || s == "" {
		return Rule{}, nil
	}
	bad := func() (Rule, error) {
		return Rule{}, fmt.Errorf("rate %q: want LIMIT/PERIOD[ burst N] (example: 60/1m burst 20) or off", s)
	}
	rate, burst, hasBurst := strings.Cut(s, " burst ")
	lim, per, ok := strings.Cut(strings.TrimSpace(rate), "/")
	if !ok {
		return bad()
	}
	var r Rule
	var err error
	if r.Limit, err = strconv.Atoi(strings.TrimSpace(lim)); err != nil || r.Limit < 1 || r.Limit > 1e9 {
		return bad()
	}
	per = strings.TrimSpace(per)
	if per == "s" || per == "m" || per == "h" {
		per = "1" + per
	}
	if r.Period, err = time.ParseDuration(per); err != nil || r.Period < time.Millisecond || r.Period > 7*24*time.Hour {
		return bad()
	}
	if hasBurst {
		if r.Burst, err = strconv.Atoi(strings.TrimSpace(burst)); err != nil || r.Burst < 1 || r.Burst > 1e9 {
			return bad()
		}
		if r.Burst == r.Limit {
			r.Burst = 0 // the default: one Rule per meaning, so String parses back to it
		}
	}
	return r, nil
}

// Decision is the answer to one check.
type Decision struct {
	// Allowed says whether the event may proceed (it has been counted).
	Allowed bool
	// RetryAfter, when not Allowed, is how long until one more event would
	// be allowed (a refused event is not counted).
	RetryAfter time.Duration
}

// Limiter checks and counts events. Implementations are safe for
// concurrent use.
type Limiter interface {
	// Allow counts one event of class by subject and says whether it is
	// within the class's rule. A class with no rule, or an Off one, is
	// always allowed. The only error is ErrUnknownClass; a backend that
	// cannot reach its store answers from its fallback, never an error.
	Allow(ctx context.Context, class, subject string) (Decision, error)
}

// Check names one bucket for AllowAll.
type Check struct{ Class, Subject string }

// allowEach is AllowAll done one check at a time.
func allowEach(ctx context.Context, l Limiter, checks []Check) ([]Decision, error) {
	out := make([]Decision, len(checks))
	for i, c := range checks {
		d, err := l.Allow(ctx, c.Class, c.Subject)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// ErrUnknownClass is returned for a class the limiter has no rule for.
var ErrUnknownClass = errors.New("ratelimit: unknown class")

// Rules maps each class to its rule.
type Rules map[string]Rule

func (Rules) unknown(class string) error { return fmt.Errorf("%w %q", ErrUnknownClass, class) }

// decide is the algorithm both backends run (the Redis script is its
// transcription): given the stored TAT (0 for none) and now, in the same
// unit, it returns the decision and the TAT to store (unchanged when
// refused).
func decide(tat, now, interval, burst int64) (ok bool, newTAT, retry int64) {
	if tat < now {
		tat = now
	}
	next := tat + interval
	if over := next - now - interval*burst; over > 0 {
		return false, tat, over
	}
	return true, next, 0
}
