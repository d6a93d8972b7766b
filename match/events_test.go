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
