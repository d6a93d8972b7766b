package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// The throttles' keys in Redis name addresses, emails and usernames only
// by keyed hashes: what a Redis dump holds after failed and successful
// logins, a sign-up and an unknown device is no personal data in clear,
// and the limits still hold (the same address is the same key).
func TestThrottleKeysArePseudonymous(t *testing.T) {
	opt, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	prefix := storetest.ID("throttlenames") + ":"
	store, err := kv.NewRedis(kv.RedisOptions{Client: rc, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	cfg := testConfig()
	cfg.AccountIPFailures = 2
	s, err := auth.New(ctx, cfg, sealedKeys(t), auth.Deps{Store: storetest.SQLite(t), KV: store, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	const email, user, pw = "Private.Person@example.com", "privateperson", "right-horse-battery"
	m := auth.Meta{IP: "198.51.100.23"}
	if _, err := s.Register(ctx, auth.RegisterRequest{Username: user, Email: email, Password: pw}, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, auth.LoginRequest{Email: email, Password: pw}, m); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Login(ctx, auth.LoginRequest{Username: user, Password: "wrong-password-1"}, m); err == nil {
			t.Fatal("a wrong password logged in")
		}
	}
	// The limit holds on hashed keys: the third attempt from that address
	// for that account is refused.
	if _, err := s.Login(ctx, auth.LoginRequest{Username: user, Password: pw}, m); err == nil {
		t.Error("the (account, address) failure limit did not hold")
	}
	_, _ = s.Device(ctx, "never-seen-device-0001", auth.Meta{IP: "198.51.100.24"})

	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	keys, err := rc.Keys(c, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 4 {
		t.Fatalf("only %d throttle keys: %v", len(keys), keys)
	}
	for _, k := range keys {
		lower := strings.ToLower(k)
		for _, clear := range []string{"198.51.100", "private.person", "example.com", user} {
			if strings.Contains(lower, clear) {
				t.Errorf("key %q holds %q in clear", k, clear)
			}
		}
	}
	rc.Del(c, keys...)
}
