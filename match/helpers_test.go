package match_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
	"github.com/multijuego/multijuego/match/matchtest"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// events is a log of callbacks, shared by the handlers of one test.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.log
	e.log = nil
	return out
}

// hooks customises a recorder; nil fields do the obvious thing.
type hooks struct {
	settings    match.Settings
	initErr     error
	attempt     func(d *match.Dispatcher, p match.Presence, meta map[string]string) error
	loop        func(d *match.Dispatcher, in []match.Input)
	leave       func(d *match.Dispatcher, p match.Presence, r match.Reason)
	terminate   func(d *match.Dispatcher, grace time.Duration)
	terminated  chan string // receives the match id in Terminate
	noWatchConn bool
}

// recorder is a Handler logging every callback into ev.
type recorder struct {
	ev *events
	h  *hooks
	id string
}

func (r *recorder) Init(d *match.Dispatcher, params match.Params) (match.Settings, error) {
	r.id = d.MatchID()
	if r.h.initErr != nil {
		return match.Settings{}, r.h.initErr
	}
	if err := d.Broadcast(1, nil); !errors.Is(err, match.ErrNotAllowed) {
		panic(fmt.Sprintf("Broadcast in Init: %v", err))
	}
	s := r.h.settings
	if s.TickRate == 0 {
		s.TickRate = 10
	}
	if s.MaxPlayers == 0 {
		s.MaxPlayers = 4
	}
	if v := params["label"]; v != "" {
		s.Label = v
	}
	return s, nil
}

func (r *recorder) JoinAttempt(d *match.Dispatcher, p match.Presence, meta map[string]string) error {
	r.ev.add("attempt %s", p.UserID)
	if r.h.attempt != nil {
		return r.h.attempt(d, p, meta)
	}
	return nil
}

func (r *recorder) Join(d *match.Dispatcher, p match.Presence) {
	r.ev.add("join %s (%d seated)", p.UserID, len(d.Presences()))
}

func (r *recorder) Leave(d *match.Dispatcher, p match.Presence, reason match.Reason) {
	r.ev.add("leave %s %s", p.UserID, reason)
	if r.h.leave != nil {
		r.h.leave(d, p, reason)
	}
}

func (r *recorder) Loop(d *match.Dispatcher, in []match.Input) {
	var b strings.Builder
	fmt.Fprintf(&b, "loop %d [", d.Tick())
	for i, x := range in {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d:%s", x.Presence.UserID, x.Op, x.Data)
	}
	b.WriteByte(']')
	r.ev.add("%s", b.String())
	if r.h.loop != nil {
		r.h.loop(d, in)
	}
}

func (r *recorder) Terminate(d *match.Dispatcher, grace time.Duration) {
	r.ev.add("terminate %s", grace)
	if r.h.terminate != nil {
		r.h.terminate(d, grace)
	}
	if r.h.terminated != nil {
		r.h.terminated <- d.MatchID()
	}
}

// watcher adds ConnectionWatcher to a recorder.
type watcher struct{ *recorder }

func (w watcher) Disconnected(_ *match.Dispatcher, p match.Presence) {
	w.ev.add("disconnected %s", p.UserID)
}

func (w watcher) Reconnected(_ *match.Dispatcher, p match.Presence) {
	w.ev.add("reconnected %s/%s", p.UserID, p.SessionID)
}

func factory(ev *events, h *hooks) match.Factory {
	return func() match.Handler {
		r := &recorder{ev: ev, h: h}
		if h.noWatchConn {
			return r
		}
		return watcher{r}
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	e      *match.Engine
	clock  *matchtest.Clock
	sender *matchtest.Sender
	logs   *logBuffer
	ends   chan match.Summary
}

func newEnv(t *testing.T, cfg match.Config) *env {
	t.Helper()
	v := &env{
		clock:  matchtest.NewClock(t0),
		sender: &matchtest.Sender{},
		logs:   &logBuffer{},
		ends:   make(chan match.Summary, 16),
	}
	cfg.Clock = v.clock
	if cfg.Sender == nil {
		cfg.Sender = v.sender
	}
	cfg.Logger = slog.New(slog.NewTextHandler(v.logs, nil))
	cfg.OnEnd = func(s match.Summary) {
		select {
		case v.ends <- s:
		default: // tests read only the first few
		}
	}
	e, err := match.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.e = e
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		go func() { // let grace periods run out on the manual clock
			for ctx.Err() == nil {
				v.clock.Advance(time.Second)
				time.Sleep(time.Millisecond)
			}
		}()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return v
}

func (v *env) create(t *testing.T, mode string, params match.Params) string {
	t.Helper()
	id, err := v.e.Create(context.Background(), mode, params)
	if err != nil {
		t.Fatalf("Create(%s): %v", mode, err)
	}
	return id
}

func pres(user string) match.Presence {
	return match.Presence{UserID: user, SessionID: user + "-s1", Username: strings.ToUpper(user)}
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}
