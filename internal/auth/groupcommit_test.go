package auth_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// A storm of concurrent device logins, first ones among them, several of
// one new device racing each other, on SQLite and PostgreSQL: every login
// succeeds, a device has one account whatever the race, every session
// answered is committed (its refresh token works) and keeps reuse
// detection, and every login has its audit rows.
func TestDeviceLoginStorm(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.Store{"sqlite": storetest.SQLite, "postgres": storetest.Postgres} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			s := newService(t, st, newClock(), func(c *auth.Config) { c.SignupIPLimit = 1 << 20 })
			const devices, per = 20, 3
			pairs := make([]auth.TokenPair, devices*per)
			errs := make([]error, len(pairs))
			var wg sync.WaitGroup
			for i := range pairs {
				wg.Go(func() { pairs[i], errs[i] = s.Device(ctx, fmt.Sprintf("storm-device-%02d", i%devices), meta) })
			}
			wg.Wait()
			created := 0
			for i, p := range pairs {
				if errs[i] != nil {
					t.Fatalf("login %d: %v", i, errs[i])
				}
				if first := pairs[i%devices]; p.AccountID != first.AccountID {
					t.Fatalf("device %d logged in to %s and %s", i%devices, first.AccountID, p.AccountID)
				}
				if p.Created {
					created++
				}
				if _, err := s.Refresh(ctx, p.RefreshToken, meta); err != nil {
					t.Fatalf("refresh of login %d: %v", i, err)
				}
			}
			if created != devices {
				t.Fatalf("%d logins created an account, want %d (one per device)", created, devices)
			}
			_, err := s.Refresh(ctx, pairs[0].RefreshToken, meta)
			wantCode(t, err, errcode.Unauthenticated)
			for _, kind := range []struct {
				kind string
				want int
			}{{auth.AuditRegister, devices}, {auth.AuditDeviceLogin, len(pairs)}} {
				ev, err := st.Audit(ctx, store.AuditQuery{Kind: kind.kind, Limit: 1000})
				if err != nil || len(ev) != kind.want {
					t.Fatalf("%d %s audit rows (%v), want %d", len(ev), kind.kind, err, kind.want)
				}
			}
		})
	}
}
