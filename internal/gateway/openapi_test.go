package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/protocoltest"
	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// paramDoc is one match parameter as openapi.json documents it.
type paramDoc struct {
	Ref     string `json:"$ref"`
	Type    string `json:"type"`
	Default string `json:"default"`
	Min     string `json:"x-minimum"`
	Max     string `json:"x-maximum"`
}

// schemaDoc is the part of a schema object the parameter checks read.
type schemaDoc struct {
	Properties map[string]struct {
		Const string `json:"const"`
		Ref   string `json:"$ref"`
	} `json:"properties"`
}

// routerParams are the parameters the router takes out before a game sees
// them (internal/router: Create), documented for every mode.
var routerParams = []string{"region"}

// The match parameters openapi.json documents for each reference mode are
// the ones the mode takes (ParamKeys), no more, no fewer, with the code's
// defaults and ranges: the bounds are accepted, a step past them is
// refused with a ParamError naming the parameter. docs/protocol.md's
// table of arena parameters has the same names and defaults.
func TestOpenAPIMatchParams(t *testing.T) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	schema := func(name string, v any) {
		t.Helper()
		raw, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("openapi.json has no schema %s", name)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
	}
	defaults := map[string]map[string]string{
		arena.Mode: {
			arena.ParamMaxPlayers: strconv.Itoa(arena.DefaultMaxPlayers), arena.ParamMinPlayers: strconv.Itoa(arena.DefaultMinPlayers),
			arena.ParamTimeLimit: arena.DefaultTimeLimit.String(), arena.ParamTickRate: strconv.Itoa(arena.DefaultTickRate),
		},
		tictactoe.Mode: {},
	}
	// docs/protocol.md's table of arena parameters says the same.
	protocolDoc := map[string]string{}
	for _, r := range protocoltest.DocRows(t, "Arena parameters") {
		protocolDoc[protocoltest.Name(r[0])] = r[2]
	}
	if len(protocolDoc) != len(defaults[arena.Mode]) {
		t.Errorf("%s documents arena parameters %v", protocoltest.DocPath, protocolDoc)
	}
	for k, def := range protocolDoc {
		if !sameValue(def, defaults[arena.Mode][k]) {
			t.Errorf("%s: arena parameter %q default %q, want %q", protocoltest.DocPath, k, def, defaults[arena.Mode][k])
		}
	}
	for _, tc := range []struct {
		mode, request, params string
		factory               match.Factory
	}{
		{arena.Mode, "CreateArenaMatch", "ArenaParams", arena.New},
		{tictactoe.Mode, "CreateTicTacToeMatch", "TicTacToeParams", tictactoe.New},
	} {
		var req schemaDoc
		schema(tc.request, &req)
		if req.Properties["mode"].Const != tc.mode || req.Properties["params"].Ref != "#/components/schemas/"+tc.params {
			t.Errorf("%s: mode %q params %q, want %s and %s", tc.request, req.Properties["mode"].Const, req.Properties["params"].Ref, tc.mode, tc.params)
		}
		var params struct {
			AdditionalProperties *bool               `json:"additionalProperties"`
			Properties           map[string]paramDoc `json:"properties"`
		}
		schema(tc.params, &params)
		if params.AdditionalProperties == nil || *params.AdditionalProperties {
			t.Errorf("%s allows undocumented parameters; the mode refuses them", tc.params)
		}
		var documented []string
		for k := range params.Properties {
			if !slices.Contains(routerParams, k) {
				documented = append(documented, k)
			}
		}
		slices.Sort(documented)
		takes := slices.Sorted(slices.Values(tc.factory().(match.ParamKeys).ParamKeys()))
		if !slices.Equal(documented, takes) {
			t.Errorf("%s documents %v; the mode takes %v", tc.params, documented, takes)
		}
		for k, p := range params.Properties {
			if slices.Contains(routerParams, k) {
				continue
			}
			if p.Type != "string" || !sameValue(p.Default, defaults[tc.mode][k]) {
				t.Errorf("%s.%s: type %q default %q, want string %q", tc.params, k, p.Type, p.Default, defaults[tc.mode][k])
			}
			probeRange(t, tc.mode, tc.factory, k, p, params.Properties)
		}
	}
}

// probeRange creates matches with param k at its documented bounds (both
// accepted) and a step outside them (refused, naming k). A bound naming
// another parameter (min_players ≤ max_players) sets that one to its own
// documented maximum.
func probeRange(t *testing.T, mode string, f match.Factory, k string, p paramDoc, all map[string]paramDoc) {
	t.Helper()
	if p.Min == "" || p.Max == "" {
		t.Errorf("%s.%s documents no range (x-minimum, x-maximum)", mode, k)
		return
	}
	others := match.Params{}
	hi := p.Max
	if o, ok := all[p.Max]; ok {
		others[p.Max], hi = o.Max, o.Max
	}
	lo := p.Min
	below, above := step(t, lo, -1), step(t, hi, +1)
	e, err := match.NewEngine(match.Config{Sender: matchtest.Discard{}, Clock: matchtest.NewClock(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Shutdown(context.Background()) }()
	if err := e.Register(mode, f); err != nil {
		t.Fatal(err)
	}
	create := func(v string) error {
		ps := match.Params{k: v}
		for ok, ov := range others {
			ps[ok] = ov
		}
		_, err := e.Create(context.Background(), mode, ps)
		return err
	}
	for _, v := range []string{lo, hi, p.Default} {
		if err := create(v); err != nil {
			t.Errorf("%s: %s=%q (documented as allowed) refused: %v", mode, k, v, err)
		}
	}
	for _, v := range []string{below, above} {
		var pe *match.ParamError
		if err := create(v); !errors.As(err, &pe) || pe.Key != k {
			t.Errorf("%s: %s=%q (outside the documented %s..%s): %v, want a ParamError about it", mode, k, v, lo, hi, err)
		}
	}
}

// step returns v (an integer or a duration) moved by one unit (1, or 1s).
func step(t *testing.T, v string, by int) string {
	t.Helper()
	if n, err := strconv.Atoi(v); err == nil {
		return strconv.Itoa(n + by)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("bound %q is neither an integer nor a duration", v)
	}
	return (d + time.Duration(by)*time.Second).String()
}

// sameValue reports whether two parameter values are the same: equal, or
// the same duration however written ("60s", "1m0s").
func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	da, errA := time.ParseDuration(a)
	db, errB := time.ParseDuration(b)
	return errA == nil && errB == nil && da == db
}
