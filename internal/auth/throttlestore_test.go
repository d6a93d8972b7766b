package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// downKV is a shared store that can be made unreachable.
type downKV struct {
	*kv.Memory
	down  atomic.Bool
	calls atomic.Int64
}

var errUnreachable = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (d *downKV) fail() error {
	d.calls.Add(1)
	if d.down.Load() {
		return errUnreachable
	}
	return nil
}

func (d *downKV) Get(ctx context.Context, key string) (kv.Item, error) {
	if err := d.fail(); err != nil {
		return kv.Item{}, err
	}
	return d.Memory.Get(ctx, key)
}

func (d *downKV) Put(ctx context.Context, key string, v []byte, ttl time.Duration) (uint64, error) {
	if err := d.fail(); err != nil {
		return 0, err
	}
	return d.Memory.Put(ctx, key, v, ttl)
}

func (d *downKV) Delete(ctx context.Context, key string) error {
	if err := d.fail(); err != nil {
		return err
	}
	return d.Memory.Delete(ctx, key)
}

func (d *downKV) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := d.fail(); err != nil {
		return 0, err
	}
	return d.Memory.Incr(ctx, key, delta, ttl)
}

// With the shared store unreachable the throttle counts in-process at the
// fallback rate (here a quarter), tries the store once a second at most,
// and goes back to it when it answers.
func TestThrottleFallsBackInProcess(t *testing.T) {
	clk := newClock()
	shared := &downKV{Memory: memKV(t, clk.Now)}
	cfg := testConfig()
	cfg.AccountIPFailures, cfg.AccountFailures = 8, 8
	s, err := auth.New(ctx, cfg, sealedKeys(t), auth.Deps{Store: storetest.SQLite(t), KV: shared,
		FallbackKV: memKV(t, clk.Now), FallbackRate: 0.25, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: "fran", Password: "frans-password"}, meta); err != nil {
		t.Fatal(err)
	}
	if err := s.Throttle().Degraded(ctx); err != nil {
		t.Fatalf("Degraded with the store up: %v", err)
	}

	shared.down.Store(true)
	login := func(pw string) error {
		_, err := s.Login(ctx, auth.LoginRequest{Username: "fran", Password: pw}, meta)
		return err
	}
	for i := range 2 { // a quarter of 8
		wantCode(t, login(fmt.Sprintf("guess-%d-password", i)), errcode.Unauthenticated)
	}
	wantCode(t, login("frans-password"), errcode.RateLimited)
	if err := s.Throttle().Degraded(ctx); err == nil {
		t.Fatal("Degraded = nil with the store down")
	}
	st := s.Throttle().Fallback()
	if st.Outages != 1 || st.SharedErrors != 1 || st.LocalOps == 0 {
		t.Fatalf("fallback stats %+v: want 1 outage, 1 failed store call (no retry within the second), some in-process operations", st)
	}
	if s.Throttle().StoreErrors.Load() != 0 {
		t.Fatal("an operation failed open")
	}

	shared.down.Store(false)
	before := shared.calls.Load()
	wantCode(t, login("frans-password"), errcode.RateLimited) // no retry due yet
	if shared.calls.Load() != before {
		t.Fatal("the store was tried before the retry was due")
	}
	clk.Advance(time.Second)
	if err := s.Throttle().Degraded(ctx); err != nil {
		t.Fatalf("Degraded once the store answers again and a retry is due: %v", err)
	}
	// The shared counts again: no failure was counted there.
	if err := login("frans-password"); err != nil {
		t.Fatalf("login with the store back: %v", err)
	}
}
