package match_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
)

// declarer is a recorder that declares its input op codes.
type declarer struct {
	*recorder
	ops []match.OpCode
}

func (d declarer) InputOps() []match.OpCode { return d.ops }

func declaring(ev *events, h *hooks, ops []match.OpCode) match.Factory {
	return func() match.Handler { return declarer{&recorder{ev: ev, h: h}, ops} }
}

func TestInputOps(t *testing.T) {
	many := make([]match.OpCode, 0, 40) // past the linear-scan size: binary search
	for op := match.OpCode(100); op < 140; op++ {
		many = append(many, op)
	}
	tests := []struct {
		name     string
		declares bool
		ops      []match.OpCode
		inputs   []match.OpCode
		errs     []error
		loop     string
	}{
		{
			name:   "no declaration: every op below the reserved range",
			inputs: []match.OpCode{1, 7, 0xFEFF, 0xFF00, 0xFFFF},
			errs:   []error{nil, nil, nil, match.ErrReservedOp, match.ErrReservedOp},
			loop:   "loop 1 [a:1:x a:7:x a:65279:x]",
		},
		{
			name:     "declared ops pass, others are refused before Loop",
			declares: true,
			ops:      []match.OpCode{7, 3, 7},
			inputs:   []match.OpCode{7, 8, 3, 0, 0xFF00},
			errs:     []error{nil, match.ErrUnknownOp, nil, match.ErrUnknownOp, match.ErrReservedOp},
			loop:     "loop 1 [a:7:x a:3:x]",
		},
		{
			name:     "declaring reserved ops does not open them",
			declares: true,
			ops:      []match.OpCode{match.OpWarning, 2},
			inputs:   []match.OpCode{match.OpWarning, 2},
			errs:     []error{match.ErrReservedOp, nil},
			loop:     "loop 1 [a:2:x]",
		},
		{
			name:     "an empty declaration refuses every input",
			declares: true,
			ops:      []match.OpCode{},
			inputs:   []match.OpCode{0, 1, 7},
			errs:     []error{match.ErrUnknownOp, match.ErrUnknownOp, match.ErrUnknownOp},
			loop:     "loop 1 []",
		},
		{
			name:     "nil is an empty declaration",
			declares: true,
			inputs:   []match.OpCode{1},
			errs:     []error{match.ErrUnknownOp},
			loop:     "loop 1 []",
		},
		{
			name:     "many declared ops",
			declares: true,
			ops:      many,
			inputs:   []match.OpCode{99, 100, 117, 139, 140},
			errs:     []error{match.ErrUnknownOp, nil, nil, nil, match.ErrUnknownOp},
			loop:     "loop 1 [a:100:x a:117:x a:139:x]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, match.Config{})
			ev := &events{}
			f := factory(ev, &hooks{noWatchConn: true})
			if tc.declares {
				f = declaring(ev, &hooks{}, tc.ops)
			}
			_ = v.e.Register("m", f)
			id := v.create(t, "m", nil)
			a := pres("a")
			if err := v.e.Join(context.Background(), id, a, nil); err != nil {
				t.Fatal(err)
			}
			ev.take()
			for i, op := range tc.inputs {
				err := v.e.Input(id, a, op, []byte("x"))
				if !errors.Is(err, tc.errs[i]) || (tc.errs[i] == nil) != (err == nil) {
					t.Errorf("input op %d: %v, want %v", op, err, tc.errs[i])
				}
			}
			// A player without a seat hears about that first.
			if err := v.e.Input(id, pres("z"), 0xFEFF, nil); !errors.Is(err, match.ErrNotInMatch) {
				t.Errorf("input from a stranger: %v", err)
			}
			v.clock.Advance(100 * time.Millisecond)
			equalStrings(t, "events", ev.take(), []string{tc.loop})
		})
	}
}

// Unknown op codes count against the rate limit: a client flooding them is
// warned, then kicked, like any flooder.
func TestUnknownOpsAreRateLimited(t *testing.T) {
	v := newEnv(t, match.Config{RateLimit: match.RateLimit{PerSecond: 10, Burst: 2, KickAfter: 3}})
	ev := &events{}
	_ = v.e.Register("m", declaring(ev, &hooks{}, []match.OpCode{7}))
	id := v.create(t, "m", nil)
	a := pres("a")
	if err := v.e.Join(context.Background(), id, a, nil); err != nil {
		t.Fatal(err)
	}
	ev.take()
	var got []string
	for range 4 {
		got = append(got, errString(v.e.Input(id, a, 9, nil)))
	}
	unknown, limited := errString(match.ErrUnknownOp), errString(match.ErrRateLimited)
	equalStrings(t, "inputs", got, []string{unknown, unknown, limited, limited})
	// A known op is refused too now: the bucket is empty.
	if err := v.e.Input(id, a, 7, nil); !errors.Is(err, match.ErrRateLimited) {
		t.Errorf("known op after the flood: %v", err)
	}
	v.clock.Advance(100 * time.Millisecond)
	equalStrings(t, "events", ev.take(), []string{"leave a rate_limited", "loop 1 []"})
	if w := v.sender.To("a", match.OpWarning); len(w) != 1 {
		t.Errorf("warnings: %+v", w)
	}
	if c := v.sender.Closed(); len(c) != 1 || c[0].Reason != match.ReasonRateLimited {
		t.Errorf("closes: %+v", c)
	}
}
