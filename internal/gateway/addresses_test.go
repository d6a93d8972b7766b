package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/ratelimit"
	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/internal/store"
	"github.com/multijuego/multijuego/match"
)

// redisGateways are gateways on one real Redis: rate limits and match
// limits there (under prefix), one engine, one auth service.
type redisGateways struct {
	t      *testing.T
	client redis.UniversalClient
	prefix string
	store  *kv.Redis
	eng    *match.Engine
	first  *env
}

func newRedisGateways(t *testing.T) *redisGateways {
	c, err := cache.ParseRedisURL(redistest.URL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	g := &redisGateways{t: t, client: c, prefix: redistest.Prefix(t), eng: cappedEngine(t, 50)}
	if g.store, err = kv.NewRedis(kv.RedisOptions{Client: c, Prefix: g.prefix + "kv:"}); err != nil {
		t.Fatal(err)
	}
	return g
}

// gateway starts one more gateway naming addresses with key; the first
// one's auth service serves every one.
func (g *redisGateways) gateway(key []byte) *env {
	t := g.t
	e := newEnvWith(t, func(d *gateway.Deps) {
		l := gateway.Limits{Config: gateway.DefaultLimitsConfig()}
		l.Config.Tarpit = 0
		l.Config.IP.Other = "4/1m"
		lim, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: g.client, Prefix: g.prefix + "rl:", Rules: l.Config.Rules()})
		if err != nil {
			t.Fatal(err)
		}
		l.Limiter = lim
		d.Limits, d.AddressKey = l, key
		d.Matches, d.Tickets, d.MatchLimits = g.eng, g.store, gateway.MatchLimits{PerAccount: 10, PerIP: 2}
		if g.first != nil {
			d.Auth, d.Identity = g.first.auth, g.first.auth
		}
	}, func(c *gateway.Config, _ *auth.Config) { c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"} })
	if g.first == nil {
		g.first = e
	}
	return e
}

// dump is every key under the test's prefix and its values.
func (g *redisGateways) dump() map[string]string {
	ctx := context.Background()
	out := map[string]string{}
	iter := g.client.Scan(ctx, 0, g.prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		switch typ := g.client.Type(ctx, k).Val(); typ {
		case "string":
			out[k] = g.client.Get(ctx, k).Val()
		case "hash":
			b, _ := json.Marshal(g.client.HGetAll(ctx, k).Val())
			out[k] = string(b)
		default:
			g.t.Fatalf("key %s of type %s: the test reads strings and hashes", k, typ)
		}
	}
	if err := iter.Err(); err != nil {
		g.t.Fatal(err)
	}
	return out
}

const (
	clientV4 = "203.0.113.7"
	clientV6 = "2001:db8:77:1::5" // its rate-limit subject: 2001:db8:77:1::/64
)

func from(ip string) []string { return []string{"X-Forwarded-For", ip} }

func (e *env) createFrom(ip, token string) resp {
	e.t.Helper()
	return e.do("POST", "/v1/matches", token, "application/json", []byte(`{"mode":"`+arena.Mode+`"}`), from(ip)...)
}

// Issue 19: after requests, rate-limit refusals and match creations from
// an address, no key or value in Redis holds the address (nor an IPv6
// /64) in clear: the buckets and the match-limit list are named by its
// keyed hash under the gateways' address key. The audit row of the trip
// keeps the address in its ip field and names the subject by the hash.
func TestAddressesNotInRedis(t *testing.T) {
	g := newRedisGateways(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	a := g.gateway(key)
	tok := a.register("alice").AccessToken
	for _, ip := range []string{clientV4, clientV6} {
		for range 6 {
			a.do("GET", "/v1/openapi.json", "", "", nil, from(ip)...)
		}
		if r := a.createFrom(ip, tok); r.status != http.StatusCreated {
			t.Fatalf("create from %s: %d %s", ip, r.status, r.body)
		}
	}
	keys := g.dump()
	for k, v := range keys {
		for _, clear := range []string{clientV4, "2001:db8:77:1"} {
			if strings.Contains(k, clear) || strings.Contains(v, clear) {
				t.Errorf("Redis key %q = %q holds the client address %s in clear", k, v, clear)
			}
		}
	}
	// Not vacuous: the keys are there, under the address's name.
	for _, want := range []string{
		g.prefix + "rl:ip.other:" + auth.KeyedName(key, clientV4),
		g.prefix + "rl:ip.other:" + auth.KeyedName(key, "2001:db8:77:1::/64"),
		g.prefix + "kv:matchlimit:ip:" + auth.KeyedName(key, clientV4),
		g.prefix + "kv:matchlimit:ip:" + auth.KeyedName(key, clientV6),
	} {
		if _, ok := keys[want]; !ok {
			t.Errorf("no key %s in Redis; keys: %v", want, keys)
		}
	}
	rows, err := a.st.Audit(context.Background(), store.AuditQuery{Kind: "rate_limited"})
	if err != nil || len(rows) != 2 {
		t.Fatalf("rate_limited rows %+v, %v; want one per address", rows, err)
	}
	for _, row := range rows {
		var d struct{ Limit, Subject string }
		_ = json.Unmarshal([]byte(row.Detail), &d)
		ip := row.IP
		want := auth.KeyedName(key, ip)
		if ip == clientV6 {
			want = auth.KeyedName(key, "2001:db8:77:1::/64")
		}
		if (ip != clientV4 && ip != clientV6) || d.Limit != "ip.other" || d.Subject != want {
			t.Errorf("audit row ip %q detail %s; want the address in ip and subject %s", ip, row.Detail, want)
		}
	}
}

// Gateways with the same address key share an address's limits, through
// Redis; one with another key counts apart.
func TestAddressKeySharesLimits(t *testing.T) {
	g := newRedisGateways(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	a, b := g.gateway(key), g.gateway(key)
	other := g.gateway([]byte("another key, another deployment"))
	for i, e := range []*env{a, b, a, b} {
		if r := e.do("GET", "/v1/openapi.json", "", "", nil, from(clientV4)...); r.status != 200 {
			t.Fatalf("request %d within the shared rate: %d", i+1, r.status)
		}
	}
	if r := b.do("GET", "/v1/openapi.json", "", "", nil, from(clientV4)...); r.status != http.StatusTooManyRequests {
		t.Fatalf("5th request, on the second gateway: %d, want 429 (limits.ip.other 4/1m shared by the key)", r.status)
	}
	if r := other.do("GET", "/v1/openapi.json", "", "", nil, from(clientV4)...); r.status != 200 {
		t.Fatalf("the same address on a gateway with another key: %d, want 200 (its own bucket)", r.status)
	}

	toks := []string{a.register("player1").AccessToken, a.register("player2").AccessToken, a.register("player3").AccessToken}
	if r := a.createFrom(clientV6, toks[0]); r.status != http.StatusCreated {
		t.Fatalf("first match from the address: %d %s", r.status, r.body)
	}
	if r := b.createFrom(clientV6, toks[1]); r.status != http.StatusCreated {
		t.Fatalf("second match, other gateway: %d %s", r.status, r.body)
	}
	r := a.createFrom(clientV6, toks[2])
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.errBody(t).Message, "game.max_matches_per_ip") {
		t.Fatalf("third match from the address: %d %s; want 429 naming game.max_matches_per_ip (2, across gateways)", r.status, r.body)
	}
	if r := other.createFrom(clientV6, toks[2]); r.status != http.StatusCreated {
		t.Fatalf("the same address on a gateway with another key: %d %s, want 201 (its own list)", r.status, r.body)
	}
}
