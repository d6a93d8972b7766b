package match_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/match"
)

func TestParams(t *testing.T) {
	p := match.Params{"n": "5", "bad": "x", "big": "99", "d": "90s", "secs": "30", "neg": "-1s"}
	if n, err := p.Int("n", 1, 1, 10); n != 5 || err != nil {
		t.Errorf("Int(n) = %d, %v", n, err)
	}
	if n, err := p.Int("missing", 7, 1, 10); n != 7 || err != nil {
		t.Errorf("Int(missing) = %d, %v", n, err)
	}
	for _, k := range []string{"bad", "big"} {
		var pe *match.ParamError
		if _, err := p.Int(k, 1, 1, 10); !errors.As(err, &pe) || pe.Key != k {
			t.Errorf("Int(%s) = %v", k, err)
		}
	}
	if d, err := p.Duration("d", 0, 0, time.Hour); d != 90*time.Second || err != nil {
		t.Errorf("Duration(d) = %v, %v", d, err)
	}
	if d, err := p.Duration("secs", 0, 0, time.Hour); d != 30*time.Second || err != nil {
		t.Errorf("Duration(secs) = %v, %v", d, err)
	}
	if _, err := p.Duration("neg", 0, 0, time.Hour); err == nil {
		t.Error("Duration(neg) accepted")
	}
	if s := p.String("missing", "def"); s != "def" {
		t.Errorf("String = %q", s)
	}
}

// keyed is a recorder that declares its parameter keys and counts its Inits.
type keyed struct {
	*recorder
	keys  []string
	inits *atomic.Int32
}

func (k keyed) ParamKeys() []string { return k.keys }

func (k keyed) Init(d *match.Dispatcher, params match.Params) (match.Settings, error) {
	k.inits.Add(1)
	return k.recorder.Init(d, params)
}

// A handler declaring its parameter keys gets no others: Create refuses the
// first unknown key (sorted) with a ParamError before Init runs.
func TestParamKeys(t *testing.T) {
	tests := []struct {
		name     string
		declares bool
		keys     []string
		params   match.Params
		bad      string // the key refused, "" if none
		message  string // part of the refusal
	}{
		{name: "no declaration: anything goes", params: match.Params{"label": "x", "whatever": "1"}},
		{name: "declared keys pass", declares: true, keys: []string{"label", "size"}, params: match.Params{"label": "x", "size": "3"}},
		{name: "no params at all", declares: true, keys: []string{"label"}},
		{name: "an unknown key is named", declares: true, keys: []string{"label", "size"}, params: match.Params{"label": "x", "players": "4"},
			bad: "players", message: "this mode takes label, size"},
		{name: "the first unknown key in sorted order", declares: true, keys: []string{"size"}, params: match.Params{"zeta": "", "duration": "9", "size": "1"},
			bad: "duration"},
		{name: "an empty declaration refuses every key", declares: true, params: match.Params{"label": "x"},
			bad: "label", message: "this mode takes none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, match.Config{})
			ev, h := &events{}, &hooks{}
			var inits atomic.Int32
			f := factory(ev, h)
			if tc.declares {
				f = func() match.Handler { return keyed{&recorder{ev: ev, h: h}, tc.keys, &inits} }
			}
			if err := v.e.Register("m", f); err != nil {
				t.Fatal(err)
			}
			id, err := v.e.Create(context.Background(), "m", tc.params)
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("Create(%v) = %v", tc.params, err)
				}
				if _, ok := v.e.Get(id); !ok {
					t.Fatal("created match not found")
				}
				return
			}
			var pe *match.ParamError
			if !errors.As(err, &pe) || pe.Key != tc.bad || !strings.Contains(pe.Message, tc.message) {
				t.Fatalf("Create(%v) = %v, want a ParamError about %q saying %q", tc.params, err, tc.bad, tc.message)
			}
			if !strings.Contains(err.Error(), `"`+tc.bad+`"`) {
				t.Errorf("error text %q does not name %q", err, tc.bad)
			}
			if n := inits.Load(); n != 0 {
				t.Errorf("Init ran %d times for a refused creation", n)
			}
			if l := v.e.List(match.Filter{}); len(l) != 0 {
				t.Errorf("a refused creation left matches: %+v", l)
			}
		})
	}
}

// Restore does not check the keys: a match created before its mode
// declared them (or with a key since dropped) still moves between nodes.
func TestParamKeysNotCheckedOnRestore(t *testing.T) {
	ctx := context.Background()
	a, b := newNode(t), newNode(t)
	if _, err := a.e.Create(ctx, tictactoe.Mode, match.Params{"legacy": "1"}); err == nil {
		t.Fatal("tictactoe accepted a parameter")
	}
	id, err := a.e.Create(ctx, tictactoe.Mode, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := a.e.Handoff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	snap.Params = match.Params{"legacy": "1"}
	if err := b.e.Restore(ctx, snap); err != nil {
		t.Fatalf("Restore with an undeclared parameter: %v", err)
	}
	if _, ok := b.e.Get(id); !ok {
		t.Fatal("restored match not found")
	}
}

// FuzzParams: the helpers never panic, return the default for an absent or
// empty value, a value in range otherwise, or a ParamError naming the key.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"", "5", "-1", "99999999999999999999", "x", "90s", "1m30s", "30", "-1s", "1e3", "0x10", " 7", "24h0m1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		p := match.Params{"k": v}
		n, err := p.Int("k", 5, 1, 100)
		checkParam(t, "Int", v, err, n == 5, n >= 1 && n <= 100)
		d, err := p.Duration("k", time.Minute, 10*time.Second, 24*time.Hour)
		checkParam(t, "Duration", v, err, d == time.Minute, d >= 10*time.Second && d <= 24*time.Hour)
	})
}

func checkParam(t *testing.T, helper, v string, err error, isDefault, inRange bool) {
	t.Helper()
	var pe *match.ParamError
	switch {
	case v == "" && (err != nil || !isDefault):
		t.Errorf("%s(%q): %v, want the default", helper, v, err)
	case err != nil && (!errors.As(err, &pe) || pe.Key != "k"):
		t.Errorf("%s(%q): %v, want a ParamError about k", helper, v, err)
	case err == nil && v != "" && !inRange:
		t.Errorf("%s(%q): out of range", helper, v)
	}
}
