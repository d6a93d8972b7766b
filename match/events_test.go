package match_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
)

// OnStart reports a match once, before its first tick; Dispatcher.Emit hands
// the handler's key moments to OnEvent with the tick and the engine's time,
// and refuses bad names and data.
func TestStartAndEmittedEvents(t *testing.T) {
	var (
		mu      sync.Mutex
		started []match.Started
		got     []match.Event
	)
	v := newEnv(t, match.Config{
		OnStart: func(s match.Started) { mu.Lock(); started = append(started, s); mu.Unlock() },
		OnEvent: func(e match.Event) { mu.Lock(); got = append(got, e); mu.Unlock() },
	})
	ev := &events{}
	emitErrs := make(chan error, 8)
	if err := v.e.Register("emitter", factory(ev, &hooks{loop: func(d *match.Dispatcher, _ []match.Input) {
		if d.Tick() != 2 {
			return
		}
		data := []byte(`{"who":"a"}`)
		emitErrs <- d.Emit("tag", data)
		data[2] = 'X' // the engine copied it
		emitErrs <- d.Emit("", nil)
		emitErrs <- d.Emit("bad", []byte("{not json"))
		emitErrs <- d.Emit("big", make([]byte, match.MaxEventData+1))
		emitErrs <- d.Emit("plain", nil)
	}})); err != nil {
		t.Fatal(err)
	}
	id := v.create(t, "emitter", map[string]string{"label": "l1"})
	v.clock.Advance(100 * time.Millisecond)
	v.clock.Advance(100 * time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	if len(started) != 1 || started[0].ID != id || started[0].Mode != "emitter" || started[0].Label != "l1" || started[0].TickRate != 10 {
		t.Fatalf("OnStart calls: %+v", started)
	}
	for i, want := range []error{nil, match.ErrInvalidEvent, match.ErrInvalidEvent, match.ErrInvalidEvent, nil} {
		if err := <-emitErrs; !errors.Is(err, want) {
			t.Errorf("emit %d: %v, want %v", i, err, want)
		}
	}
	if len(got) != 2 {
		t.Fatalf("OnEvent calls: %+v", got)
	}
	if e := got[0]; e.MatchID != id || e.Mode != "emitter" || e.Name != "tag" || string(e.Data) != `{"who":"a"}` || e.Tick != 2 || !e.Time.Equal(v.clock.Now()) {
		t.Errorf("event = %+v (%s)", e, e.Data)
	}
	if e := got[1]; e.Name != "plain" || e.Data != nil {
		t.Errorf("event = %+v", e)
	}
}

// EmitPersonal hands the event, with its owner, to OnPersonalEvent only
// (never OnEvent), numbered with Emit's events of the same tick; it checks
// what Emit checks and the owner, and without OnPersonalEvent it refuses
// with ErrPersonalData and reports nothing.
func TestEmitPersonal(t *testing.T) {
	var (
		mu             sync.Mutex
		plain, private []match.Event
	)
	v := newEnv(t, match.Config{
		OnEvent:         func(e match.Event) { mu.Lock(); plain = append(plain, e); mu.Unlock() },
		OnPersonalEvent: func(e match.Event) { mu.Lock(); private = append(private, e); mu.Unlock() },
	})
	errs := make(chan error, 8)
	owner := match.Presence{UserID: "acc-1", SessionID: "s"}
	if err := v.e.Register("personal", factory(&events{}, &hooks{loop: func(d *match.Dispatcher, _ []match.Input) {
		if d.Tick() != 1 {
			return
		}
		errs <- d.Emit("tag", nil)
		data := []byte(`{"say":"hi"}`)
		errs <- d.EmitPersonal("chat", owner, data)
		data[2] = 'X' // copied
		errs <- d.EmitPersonal("chat", match.Presence{}, nil)
		errs <- d.EmitPersonal("chat", match.Presence{UserID: string(make([]byte, 129))}, nil)
		errs <- d.EmitPersonal("", owner, nil)
		errs <- d.EmitPersonal("chat", owner, []byte("{bad"))
	}})); err != nil {
		t.Fatal(err)
	}
	v.create(t, "personal", nil)
	v.clock.Advance(100 * time.Millisecond)
	for i, want := range []error{nil, nil, match.ErrInvalidEvent, match.ErrInvalidEvent, match.ErrInvalidEvent, match.ErrInvalidEvent} {
		if err := <-errs; !errors.Is(err, want) {
			t.Errorf("emit %d: %v, want %v", i, err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(plain) != 1 || plain[0].Owner != "" || plain[0].Seq != 0 {
		t.Fatalf("OnEvent calls: %+v", plain)
	}
	if len(private) != 1 {
		t.Fatalf("OnPersonalEvent calls: %+v", private)
	}
	if e := private[0]; e.Name != "chat" || e.Owner != "acc-1" || string(e.Data) != `{"say":"hi"}` || e.Tick != 1 || e.Seq != 1 {
		t.Errorf("personal event = %+v (%s), want chat of acc-1, tick 1, seq 1", e, e.Data)
	}
}

func TestEmitPersonalWithoutSealing(t *testing.T) {
	var mu sync.Mutex
	var got []match.Event
	v := newEnv(t, match.Config{OnEvent: func(e match.Event) { mu.Lock(); got = append(got, e); mu.Unlock() }})
	errs := make(chan error, 1)
	if err := v.e.Register("personal", factory(&events{}, &hooks{loop: func(d *match.Dispatcher, _ []match.Input) {
		if d.Tick() == 1 {
			errs <- d.EmitPersonal("chat", match.Presence{UserID: "acc-1"}, []byte(`{"say":"hi"}`))
		}
	}})); err != nil {
		t.Fatal(err)
	}
	v.create(t, "personal", nil)
	v.clock.Advance(100 * time.Millisecond)
	if err := <-errs; !errors.Is(err, match.ErrPersonalData) {
		t.Fatalf("EmitPersonal without OnPersonalEvent: %v, want ErrPersonalData", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Fatalf("a refused personal event reached OnEvent: %+v", got)
	}
}
