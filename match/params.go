package match

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Params are the parameters a match is created with ([Engine.Create]), as
// strings: the gateway passes them on from the client or the matchmaker and
// each game parses what it understands in [Handler.Init]. The helpers below
// parse a value with a default and a range, and name the key in their errors.
// A handler that declares its keys ([ParamKeys]) gets no others: the engine
// refuses unknown keys before Init.
type Params map[string]string

// ParamError reports a parameter a game could not accept.
type ParamError struct {
	Key     string // the parameter
	Message string // what is wrong with it
}

// Error names the parameter and the problem.
func (e *ParamError) Error() string { return fmt.Sprintf("match: parameter %q: %s", e.Key, e.Message) }

// String returns the value of key, or def if it is absent or empty.
func (p Params) String(key, def string) string {
	if v, ok := p[key]; ok && v != "" {
		return v
	}
	return def
}

// Int returns the value of key as an integer in [lo, hi], or def if the key
// is absent or empty.
func (p Params) Int(key string, def, lo, hi int) (int, error) {
	v, ok := p[key]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &ParamError{key, "not an integer"}
	}
	if n < lo || n > hi {
		return 0, &ParamError{key, fmt.Sprintf("must be between %d and %d", lo, hi)}
	}
	return n, nil
}

// Duration returns the value of key as a duration in [lo, hi], or def if the
// key is absent or empty. The value is a Go duration ("90s", "1m30s") or a
// whole number of seconds ("90").
func (p Params) Duration(key string, def, lo, hi time.Duration) (time.Duration, error) {
	v, ok := p[key]
	if !ok || v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, err2 := strconv.Atoi(v)
		if err2 != nil {
			return 0, &ParamError{key, "not a duration"}
		}
		if n < 0 || int64(n) > int64(hi/time.Second)+1 {
			return 0, &ParamError{key, fmt.Sprintf("must be between %s and %s", lo, hi)}
		}
		d = time.Duration(n) * time.Second
	}
	if d < lo || d > hi {
		return 0, &ParamError{key, fmt.Sprintf("must be between %s and %s", lo, hi)}
	}
	return d, nil
}

// unknownKey returns a [*ParamError] for the first key of p (in sorted
// order) that is not in keys, or nil.
func (p Params) unknownKey(keys []string) error {
	var bad []string
	for k := range p {
		if !slices.Contains(keys, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	msg := "unknown parameter; this mode takes none"
	if len(keys) > 0 {
		msg = "unknown parameter; this mode takes " + strings.Join(keys, ", ")
	}
	return &ParamError{Key: bad[0], Message: msg}
}
