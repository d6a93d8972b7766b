package match_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

// step is one action in a scenario against one match (10 Hz, 2 seats).
type step struct {
	do    string // join, leave, disconnect, input, tick, advance
	user  string
	sess  string // session id; default user+"-s1"
	data  string // input payload
	d     time.Duration
	err   error // expected error (errors.Is); nil means success
	wantE []string
}

func TestScenarios(t *testing.T) {
	rejectBanned := func(_ *match.Dispatcher, p match.Presence, _ map[string]string) error {
		if p.UserID == "banned" {
			return errors.New("you are banned")
		}
		return nil
	}
	tests := []struct {
		name       string
		steps      []step
		wantCloses []string
	}{
		{
			name: "join and leave are delivered in order, inputs at the next tick",
			steps: []step{
				{do: "join", user: "a", wantE: []string{"attempt a", "join a (1 seated)"}},
				{do: "join", user: "b", wantE: []string{"attempt b", "join b (2 seated)"}},
				{do: "input", user: "a", data: "x"},
				{do: "input", user: "b", data: "y"},
				{do: "input", user: "a", data: "z"},
				{do: "tick", wantE: []string{"loop 1 [a:7:x b:7:y a:7:z]"}},
				{do: "leave", user: "a", wantE: []string{"leave a left"}},
				{do: "input", user: "a", err: match.ErrNotInMatch},
				{do: "tick", wantE: []string{"loop 2 []"}},
				{do: "join", user: "a", wantE: []string{"attempt a", "join a (2 seated)"}},
			},
			wantCloses: []string{"a left"},
		},
		{
			name: "inputs of a player who left before the tick are dropped",
			steps: []step{
				{do: "join", user: "a", wantE: []string{"attempt a", "join a (1 seated)"}},
				{do: "join", user: "b", wantE: []string{"attempt b", "join b (2 seated)"}},
				{do: "input", user: "a", data: "x"},
				{do: "input", user: "b", data: "y"},
				{do: "leave", user: "a", wantE: []string{"leave a left"}},
				{do: "tick", wantE: []string{"loop 1 [b:7:y]"}},
			},
			wantCloses: []string{"a left"},
		},
		{
			name: "JoinAttempt rejects, the match being full too",
			steps: []step{
				{do: "join", user: "banned", err: match.ErrJoinRejected, wantE: []string{"attempt banned"}},
				{do: "join", user: "a", wantE: []string{"attempt a", "join a (1 seated)"}},
				{do: "join", user: "a", wantE: nil}, // same session again: no-op
				{do: "join", user: "b", wantE: []string{"attempt b", "join b (2 seated)"}},
				{do: "join", user: "c", err: match.ErrMatchFull},
				{do: "leave", user: "c", err: match.ErrNotInMatch},
			},
		},
		{
			name: "reconnection within grace keeps the seat; the old session is dead",
			steps: []step{
				{do: "join", user: "a", wantE: []string{"attempt a", "join a (1 seated)"}},
				{do: "disconnect", user: "a", wantE: []string{"disconnected a"}},
				{do: "input", user: "a", err: match.ErrNotInMatch},
				{do: "advance", d: 4 * time.Second, wantE: loops(1, 40)},
				{do: "join", user: "a", sess: "a-s2", wantE: []string{"reconnected a/a-s2"}},
				{do: "input", user: "a", err: match.ErrNotInMatch}, // old session
				{do: "input", user: "a", sess: "a-s2", data: "n"},
				{do: "leave", user: "a", err: match.ErrNotInMatch}, // stale leave is ignored
				{do: "tick", wantE: []string{"loop 41 [a:7:n]"}},
			},
		},
		{
			name: "a second session replaces the first",
			steps: []step{
				{do: "join", user: "a", wantE: []string{"attempt a", "join a (1 seated)"}},
				{do: "join", user: "a", sess: "a-s2", wantE: []string{"reconnected a/a-s2"}},
			},
			wantCloses: []string{"a replaced"},
		},
		{
			name: "grace runs out: seat freed with reason disconnected",
			steps: []step{
				{do: "join", user: "a", wantE: []string{"attempt a", "join a (1 seated)"}},
				{do: "join", user: "b", wantE: []string{"attempt b", "join b (2 seated)"}},
				{do: "disconnect", user: "a", wantE: []string{"disconnected a"}},
				{do: "advance", d: 4900 * time.Millisecond, wantE: loops(1, 49)},
				{do: "tick", wantE: []string{"leave a disconnected", "loop 50 []"}},
				{do: "join", user: "a", sess: "a-s2", wantE: []string{"attempt a", "join a (2 seated)"}},
			},
			wantCloses: []string{"a disconnected"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, match.Config{DisconnectGrace: 5 * time.Second})
			ev := &events{}
			h := &hooks{settings: match.Settings{TickRate: 10, MaxPlayers: 2}, attempt: rejectBanned}
			if err := v.e.Register("m", factory(ev, h)); err != nil {
				t.Fatal(err)
			}
			id := v.create(t, "m", nil)
			for i, s := range tc.steps {
				sess := s.sess
				if sess == "" {
					sess = s.user + "-s1"
				}
				p := match.Presence{UserID: s.user, SessionID: sess}
				var err error
				switch s.do {
				case "join":
					err = v.e.Join(context.Background(), id, p, nil)
				case "leave":
					err = v.e.Leave(context.Background(), id, p)
				case "disconnect":
					err = v.e.Disconnect(context.Background(), id, p)
				case "input":
					err = v.e.Input(id, p, 7, []byte(s.data))
				case "tick":
					v.clock.Advance(100 * time.Millisecond)
				case "advance":
					v.clock.Advance(s.d)
				}
				if !errors.Is(err, s.err) || (s.err == nil) != (err == nil) {
					t.Fatalf("step %d %s %s: err %v, want %v", i, s.do, s.user, err, s.err)
				}
				equalStrings(t, "events after step "+s.do+" "+s.user, ev.take(), s.wantE)
			}
			var closes []string
			for _, c := range v.sender.Closed() {
				closes = append(closes, c.Who.UserID+" "+string(c.Reason))
				if c.MatchID != id {
					t.Errorf("close for match %s, want %s", c.MatchID, id)
				}
			}
			equalStrings(t, "closes", closes, tc.wantCloses)
		})
	}
}

func loops(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, "loop "+strconv.Itoa(i)+" []")
	}
	return out
}

func TestCreateErrors(t *testing.T) {
	v := newEnv(t, match.Config{})
	ev := &events{}
	mk := func(h *hooks) match.Factory { return factory(ev, h) }
	_ = v.e.Register("bad-rate", mk(&hooks{settings: match.Settings{TickRate: 129, MaxPlayers: 2}}))
	_ = v.e.Register("bad-players", mk(&hooks{settings: match.Settings{TickRate: 10, MaxPlayers: -1}}))
	_ = v.e.Register("init-err", mk(&hooks{initErr: errors.New("no map")}))
	_ = v.e.Register("init-panic", func() match.Handler { return panicky{&recorder{ev: ev, h: &hooks{}}} })
	if err := v.e.Register("init-err", mk(&hooks{})); err == nil {
		t.Error("registering a mode twice succeeded")
	}
	for mode, want := range map[string]error{
		"nope":        match.ErrUnknownMode,
		"bad-rate":    match.ErrInvalidSettings,
		"bad-players": match.ErrInvalidSettings,
		"init-panic":  match.ErrHandlerPanic,
	} {
		if _, err := v.e.Create(context.Background(), mode, nil); !errors.Is(err, want) {
			t.Errorf("Create(%s) = %v, want %v", mode, err, want)
		}
	}
	if _, err := v.e.Create(context.Background(), "init-err", nil); err == nil || err.Error() != "no map" {
		t.Errorf("Create(init-err) = %v, want the handler's error", err)
	}
	if n := len(v.e.List(match.Filter{})); n != 0 {
		t.Errorf("%d matches after failed creations", n)
	}
	if v.clock.Tickers() != 0 {
		t.Errorf("%d tickers left by failed creations", v.clock.Tickers())
	}
}

// panicky panics in Init.
type panicky struct{ *recorder }

func (panicky) Init(*match.Dispatcher, match.Params) (match.Settings, error) { panic("init boom") }

func TestMatchIDs(t *testing.T) {
	v := newEnv(t, match.Config{})
	_ = v.e.Register("m", factory(&events{}, &hooks{}))
	seen := map[string]bool{}
	for range 20 {
		id := v.create(t, "m", nil)
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

func TestInputQueueOverflowDropsNewest(t *testing.T) {
	v := newEnv(t, match.Config{InputQueue: 3, MaxInputSize: 8})
	ev := &events{}
	_ = v.e.Register("m", factory(ev, &hooks{}))
	id := v.create(t, "m", nil)
	a := pres("a")
	if err := v.e.Join(context.Background(), id, a, nil); err != nil {
		t.Fatal(err)
	}
	ev.take()
	var errs []error
	for _, d := range []string{"1", "2", "3", "4", "5"} {
		errs = append(errs, v.e.Input(id, a, 7, []byte(d)))
	}
	want := []error{nil, nil, nil, match.ErrQueueFull, match.ErrQueueFull}
	for i := range want {
		if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
			t.Errorf("input %d: %v, want %v", i+1, errs[i], want[i])
		}
	}
	if err := v.e.Input(id, a, 7, []byte("123456789")); !errors.Is(err, match.ErrInputTooLarge) {
		t.Errorf("oversized input: %v", err)
	}
	if err := v.e.Input(id, a, match.OpWarning, nil); !errors.Is(err, match.ErrReservedOp) {
		t.Errorf("reserved op: %v", err)
	}
	if err := v.e.Input("nope", a, 7, nil); !errors.Is(err, match.ErrNotFound) {
		t.Errorf("unknown match: %v", err)
	}
	v.clock.Advance(100 * time.Millisecond)
	equalStrings(t, "events", ev.take(), []string{"loop 1 [a:7:1 a:7:2 a:7:3]"})
	if info, _ := v.e.Get(id); info.InputsDropped != 2 {
		t.Errorf("InputsDropped = %d, want 2", info.InputsDropped)
	}
	// The queue is empty again after the tick.
	if err := v.e.Input(id, a, 7, []byte("6")); err != nil {
		t.Errorf("input after the tick: %v", err)
	}
	v.clock.Advance(100 * time.Millisecond)
	equalStrings(t, "events", ev.take(), []string{"loop 2 [a:7:6]"})
}

func TestRateLimitWarnsThenKicks(t *testing.T) {
	v := newEnv(t, match.Config{RateLimit: match.RateLimit{PerSecond: 10, Burst: 2, KickAfter: 3}})
	ev := &events{}
	_ = v.e.Register("m", factory(ev, &hooks{settings: match.Settings{TickRate: 10, MaxPlayers: 4}}))
	id := v.create(t, "m", nil)
	a, b := pres("a"), pres("b")
	for _, p := range []match.Presence{a, b} {
		if err := v.e.Join(context.Background(), id, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	ev.take()
	send := func(p match.Presence, n int) (errs []string) {
		for range n {
			err := v.e.Input(id, p, 7, []byte(p.UserID))
			errs = append(errs, errString(err))
		}
		return errs
	}
	ok, limited := "ok", errString(match.ErrRateLimited)

	// Burst of 2, then the first refusal: warned.
	equalStrings(t, "a inputs", send(a, 3), []string{ok, ok, limited})
	equalStrings(t, "b inputs", send(b, 1), []string{ok})
	v.clock.Advance(100 * time.Millisecond) // refills one token each
	equalStrings(t, "events", ev.take(), []string{"loop 1 [a:7:a a:7:a b:7:b]"})
	warns := v.sender.To("a", match.OpWarning)
	if len(warns) != 1 || string(warns[0].Payload) != "rate_limited" {
		t.Fatalf("warnings to a: %+v", warns)
	}
	if len(v.sender.To("b", match.OpWarning)) != 0 {
		t.Error("b was warned")
	}

	// Still flooding: strikes 2 and 3, kicked at the next tick.
	equalStrings(t, "a inputs", send(a, 3), []string{ok, limited, limited})
	v.clock.Advance(100 * time.Millisecond)
	equalStrings(t, "events", ev.take(), []string{"leave a rate_limited", "loop 2 []"})
	if c := v.sender.Closed(); len(c) != 1 || c[0].Who != a || c[0].Reason != match.ReasonRateLimited {
		t.Errorf("closes: %+v", c)
	}
	if err := v.e.Input(id, a, 7, nil); !errors.Is(err, match.ErrNotInMatch) {
		t.Errorf("input after kick: %v", err)
	}
	if info, _ := v.e.Get(id); info.InputsRateLimited != 3 {
		t.Errorf("InputsRateLimited = %d, want 3", info.InputsRateLimited)
	}

	// b stays under the limit and is forgiven after refilling.
	equalStrings(t, "b inputs", send(b, 3), []string{ok, ok, limited})
	v.clock.Advance(time.Second)
	ev.take()
	equalStrings(t, "b inputs", send(b, 3), []string{ok, ok, limited})
	v.clock.Advance(time.Second)
	if got := len(v.sender.To("b", match.OpWarning)); got != 2 {
		t.Errorf("b warnings = %d, want 2 (one per episode)", got)
	}
	if got := len(v.sender.Closed()); got != 1 {
		t.Errorf("b was kicked: %+v", v.sender.Closed())
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func TestPanicEndsOnlyThatMatch(t *testing.T) {
	v := newEnv(t, match.Config{})
	ev := &events{}
	boom := &hooks{loop: func(d *match.Dispatcher, in []match.Input) {
		for _, x := range in {
			if x.Op == 13 {
				panic("kaboom")
			}
		}
		_ = d.Broadcast(1, []byte("state"))
	}}
	_ = v.e.Register("m", factory(ev, boom))
	bad, good := v.create(t, "m", nil), v.create(t, "m", nil)
	a, b, c := pres("a"), pres("b"), pres("c")
	for _, j := range []struct {
		id string
		p  match.Presence
	}{{bad, a}, {bad, b}, {good, c}} {
		if err := v.e.Join(context.Background(), j.id, j.p, nil); err != nil {
			t.Fatal(err)
		}
	}
	v.clock.Advance(100 * time.Millisecond)
	if err := v.e.Input(bad, a, 13, nil); err != nil {
		t.Fatal(err)
	}
	v.sender.Reset()
	v.clock.Advance(100 * time.Millisecond)

	if _, ok := v.e.Get(bad); ok {
		t.Error("the crashed match is still listed")
	}
	closes := v.sender.Closed()
	slices.SortFunc(closes, func(x, y matchtest.Closed) int { return strings.Compare(x.Who.UserID, y.Who.UserID) })
	if len(closes) != 2 || closes[0].Who != a || closes[1].Who != b ||
		closes[0].Reason != match.ReasonMatchError || closes[0].MatchID != bad {
		t.Errorf("closes: %+v", closes)
	}
	s := <-v.ends
	if s.ID != bad || s.Results.Reason != string(match.ReasonMatchError) {
		t.Errorf("summary: %+v", s)
	}
	logs := v.logs.String()
	for _, want := range []string{"match_id=" + bad, "kaboom", "goroutine", "engine_test.go"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, good) {
		t.Error("the healthy match logged something")
	}
	if err := v.e.Join(context.Background(), bad, pres("d"), nil); !errors.Is(err, match.ErrNotFound) {
		t.Errorf("join into crashed match: %v", err)
	}

	// The other match carries on.
	if len(v.sender.To("c", 1)) != 1 {
		t.Errorf("healthy match frames this tick: %+v", v.sender.To("c"))
	}
	v.clock.Advance(100 * time.Millisecond)
	if len(v.sender.To("c", 1)) != 2 {
		t.Error("healthy match stopped")
	}
	if info, ok := v.e.Get(good); !ok || info.Players != 1 {
		t.Errorf("healthy match: %+v %v", info, ok)
	}
}

func TestKickAndEndWithResults(t *testing.T) {
	v := newEnv(t, match.Config{})
	ev := &events{}
	h := &hooks{}
	h.loop = func(d *match.Dispatcher, in []match.Input) {
		for _, x := range in {
			switch string(x.Data) {
			case "kick-b":
				if err := d.Kick(pres("b"), "cheating"); err != nil {
					panic(err)
				}
			case "end":
				ps := d.Presences()
				_ = d.Kick(ps[0], "") // dropped: End wins
				err := d.End(match.Results{Reason: "winner", Players: []match.PlayerResult{
					{Presence: ps[0], Placement: 1, Score: 10, Stats: map[string]float64{"tags": 3}},
					{Presence: ps[1], Placement: 2, Score: 4},
				}})
				if err != nil {
					panic(err)
				}
				if err := d.End(match.Results{}); !errors.Is(err, match.ErrEnded) {
					panic("second End: " + errString(err))
				}
			}
		}
	}
	_ = v.e.Register("m", factory(ev, h))
	id := v.create(t, "m", match.Params{"label": "ranked"})
	for _, u := range []string{"a", "b", "c"} {
		if err := v.e.Join(context.Background(), id, pres(u), nil); err != nil {
			t.Fatal(err)
		}
	}
	ev.take()
	_ = v.e.Input(id, pres("a"), 7, []byte("kick-b"))
	v.clock.Advance(100 * time.Millisecond)
	equalStrings(t, "events", ev.take(), []string{"loop 1 [a:7:kick-b]", "leave b cheating"})
	_ = v.e.Input(id, pres("c"), 7, []byte("end"))
	v.clock.Advance(100 * time.Millisecond)
	equalStrings(t, "events", ev.take(), []string{"loop 2 [c:7:end]"})
	v.clock.Advance(time.Second)
	if got := ev.take(); len(got) != 0 {
		t.Errorf("callbacks after End: %q", got)
	}
	var closes []string
	for _, c := range v.sender.Closed() {
		closes = append(closes, c.Who.UserID+" "+string(c.Reason))
	}
	equalStrings(t, "closes", closes, []string{"b cheating", "a match_ended", "c match_ended"})
	s := <-v.ends
	if s.ID != id || s.Mode != "m" || s.Label != "ranked" || s.Ticks != 2 || s.Results.Reason != "winner" ||
		len(s.Results.Players) != 2 || s.Results.Players[0].Presence != pres("a") ||
		s.Results.Players[0].Stats["tags"] != 3 || !s.Created.Equal(t0) || !s.Ended.Equal(t0.Add(200*time.Millisecond)) {
		t.Errorf("summary: %+v", s)
	}
	if _, ok := v.e.Get(id); ok || v.clock.Tickers() != 0 {
		t.Error("ended match still running")
	}
}

func TestShutdownTerminatesWithGrace(t *testing.T) {
	v := newEnv(t, match.Config{ShutdownGrace: 3 * time.Second})
	ev := &events{}
	terminated := make(chan string, 2)
	polite := &hooks{terminated: terminated, terminate: func(d *match.Dispatcher, grace time.Duration) {
		_ = d.End(match.Results{Reason: "server_restart"})
	}}
	stubborn := &hooks{terminated: terminated}
	_ = v.e.Register("polite", factory(ev, polite))
	_ = v.e.Register("stubborn", factory(ev, stubborn))
	p, s := v.create(t, "polite", nil), v.create(t, "stubborn", nil)
	_ = v.e.Join(context.Background(), p, pres("a"), nil)
	_ = v.e.Join(context.Background(), s, pres("b"), nil)
	ev.take()

	done := make(chan error, 1)
	go func() { done <- v.e.Shutdown(context.Background()) }()
	<-terminated
	<-terminated
	if _, err := v.e.Create(context.Background(), "polite", nil); !errors.Is(err, match.ErrShuttingDown) {
		t.Errorf("Create during shutdown: %v", err)
	}
	if err := v.e.Join(context.Background(), s, pres("c"), nil); !errors.Is(err, match.ErrShuttingDown) {
		t.Errorf("Join during shutdown: %v", err)
	}
	if l := v.e.List(match.Filter{OpenOnly: true}); len(l) != 0 {
		t.Errorf("open matches during shutdown: %+v", l)
	}
	v.clock.Advance(2900 * time.Millisecond) // the stubborn match still ticks
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned before the grace ran out: %v", err)
	default:
	}
	v.clock.Advance(100 * time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := ev.take()
	if got[0] != "terminate 3s" || got[1] != "terminate 3s" || len(got) != 2+29 || got[len(got)-1] != "loop 29 []" {
		t.Errorf("events: %q", got)
	}
	reasons := map[string]match.Reason{}
	for _, c := range v.sender.Closed() {
		reasons[c.Who.UserID] = c.Reason
	}
	if reasons["a"] != match.ReasonMatchEnded || reasons["b"] != match.ReasonShutdown {
		t.Errorf("close reasons: %v", reasons)
	}
	results := map[string]string{}
	for range 2 {
		x := <-v.ends
		results[x.Mode] = x.Results.Reason
	}
	if results["polite"] != "server_restart" || results["stubborn"] != "shutdown" {
		t.Errorf("results: %v", results)
	}
}

func TestShutdownContextExpires(t *testing.T) {
	v := newEnv(t, match.Config{ShutdownGrace: time.Hour})
	_ = v.e.Register("m", factory(&events{}, &hooks{}))
	id := v.create(t, "m", nil)
	_ = v.e.Join(context.Background(), id, pres("a"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := v.e.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	s := <-v.ends // forced end
	if s.Results.Reason != "shutdown" {
		t.Errorf("summary %+v", s)
	}
}

func TestList(t *testing.T) {
	v := newEnv(t, match.Config{})
	ev := &events{}
	_ = v.e.Register("duel", factory(ev, &hooks{settings: match.Settings{TickRate: 5, MaxPlayers: 1}}))
	_ = v.e.Register("ffa", factory(ev, &hooks{settings: match.Settings{TickRate: 5, MaxPlayers: 8}}))
	d1 := v.create(t, "duel", match.Params{"label": "eu"})
	d2 := v.create(t, "duel", match.Params{"label": "us"})
	f1 := v.create(t, "ffa", match.Params{"label": "eu"})
	_ = v.e.Join(context.Background(), d1, pres("a"), nil) // d1 is now full
	ids := func(in []match.Info) []string {
		var out []string
		for _, i := range in {
			out = append(out, i.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	for _, tc := range []struct {
		f    match.Filter
		want []string
	}{
		{match.Filter{}, sorted(d1, d2, f1)},
		{match.Filter{Mode: "duel"}, sorted(d1, d2)},
		{match.Filter{Label: "eu"}, sorted(d1, f1)},
		{match.Filter{Mode: "duel", Label: "eu"}, sorted(d1)},
		{match.Filter{OpenOnly: true}, sorted(d2, f1)},
		{match.Filter{Mode: "duel", OpenOnly: true}, sorted(d2)},
		{match.Filter{Label: "asia"}, nil},
		{match.Filter{Limit: 1}, []string{d1}}, // oldest first
	} {
		equalStrings(t, "List", ids(v.e.List(tc.f)), tc.want)
	}
	info, ok := v.e.Get(d1)
	if !ok || info.Players != 1 || info.MaxPlayers != 1 || info.Open || info.TickRate != 5 || info.Mode != "duel" {
		t.Errorf("Get: %+v", info)
	}
}

// holder is a Sender keeping the frames it is given, unreleased.
type holder struct {
	mu     sync.Mutex
	frames map[string][]*match.Frame
}

func (h *holder) Send(p match.Presence, f *match.Frame) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.frames[p.UserID] = append(h.frames[p.UserID], f)
	return p.UserID != "full"
}

func (h *holder) Close(match.Presence, string, match.Reason) {}

func TestBroadcastSharesOneFrame(t *testing.T) {
	snd := &holder{frames: map[string][]*match.Frame{}}
	v := newEnv(t, match.Config{Sender: snd})
	h := &hooks{settings: match.Settings{TickRate: 10, MaxPlayers: 8}}
	buf := []byte("hello")
	h.loop = func(d *match.Dispatcher, in []match.Input) {
		if d.Tick() == 1 {
			_ = d.Broadcast(42, buf)
			copy(buf, "xxxxx") // the frame has its own copy
		} else {
			_ = d.Broadcast(43, []byte("psst"), pres("b"), pres("nobody"))
			if err := d.Broadcast(match.OpWarning, nil); !errors.Is(err, match.ErrReservedOp) {
				panic(err)
			}
		}
	}
	_ = v.e.Register("m", factory(&events{}, h))
	id := v.create(t, "m", nil)
	for _, u := range []string{"a", "b", "c", "full"} {
		_ = v.e.Join(context.Background(), id, pres(u), nil)
	}
	_ = v.e.Disconnect(context.Background(), id, pres("c"))
	v.clock.Advance(200 * time.Millisecond)

	fa, fb, fc, ff := snd.frames["a"], snd.frames["b"], snd.frames["c"], snd.frames["full"]
	if len(fa) != 1 || len(fb) != 2 || len(fc) != 0 || len(ff) != 1 {
		t.Fatalf("frames: a %d b %d c %d full %d", len(fa), len(fb), len(fc), len(ff))
	}
	if fa[0] != fb[0] || fa[0] != ff[0] {
		t.Error("recipients of one broadcast got different frames")
	}
	f := fa[0]
	if f.Op() != 42 || f.Tick() != 1 || f.MatchID() != id || string(f.Payload()) != "hello" {
		t.Errorf("frame: op %d tick %d id %s payload %q", f.Op(), f.Tick(), f.MatchID(), f.Payload())
	}
	g, err := match.ParseFrame(f.Bytes())
	if err != nil || g.Op() != 42 || g.Tick() != 1 || g.MatchID() != id || string(g.Payload()) != "hello" {
		t.Errorf("ParseFrame: %v %+v", err, g)
	}
	if b := f.Bytes(); b[0] != match.FrameKind || b[1] != 42 || b[3] != 1 || int(b[11]) != len(id) {
		t.Errorf("encoding: % x", b[:12])
	}
	if fb[1].Op() != 43 || string(fb[1].Payload()) != "psst" || fb[1].Tick() != 2 {
		t.Errorf("targeted frame: %d %q", fb[1].Op(), fb[1].Payload())
	}
	if info, _ := v.e.Get(id); info.FramesDropped != 1 {
		t.Errorf("FramesDropped = %d, want 1", info.FramesDropped)
	}
	for _, bad := range [][]byte{nil, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'}} {
		if _, err := match.ParseFrame(bad); !errors.Is(err, match.ErrBadFrame) {
			t.Errorf("ParseFrame(% x) = %v", bad, err)
		}
	}
}

func TestSnapshot(t *testing.T) {
	v := newEnv(t, match.Config{})
	_ = v.e.Register("m", factory(&events{}, &hooks{}))
	id := v.create(t, "m", nil)
	if _, err := v.e.Snapshot(context.Background(), id); !errors.Is(err, match.ErrNotSupported) {
		t.Errorf("Snapshot = %v", err)
	}
}

// chanSender forwards frame ops to a channel.
type chanSender struct{ ops chan match.OpCode }

func (c chanSender) Send(_ match.Presence, f *match.Frame) bool {
	select {
	case c.ops <- f.Op():
	default:
	}
	f.Release()
	return true
}

func (c chanSender) Close(match.Presence, string, match.Reason) {}

func TestSystemClock(t *testing.T) {
	snd := chanSender{ops: make(chan match.OpCode, 64)}
	e, err := match.NewEngine(match.Config{Sender: snd, ShutdownGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := &hooks{settings: match.Settings{TickRate: 128, MaxPlayers: 1}}
	h.loop = func(d *match.Dispatcher, _ []match.Input) { _ = d.Broadcast(5, nil) }
	_ = e.Register("m", factory(&events{}, h))
	id, err := e.Create(context.Background(), "m", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Join(context.Background(), id, pres("a"), nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case op := <-snd.ops:
			if op != 5 {
				t.Fatalf("op %d", op)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no ticks on the system clock")
		}
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Get(id); ok {
		t.Error("match still running after Shutdown")
	}
}
