package auth_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/store/storetest"
)

// An account revocation (password change, role removal, ban, kick) voids
// the tokens issued before it even within the same second, JWT iat having
// whole seconds; tokens issued after it in that second stay good.
func TestAccountRevocationWithinOneSecond(t *testing.T) {
	clk := newClock() // on a whole second: every step below stays in it
	s := newService(t, storetest.SQLite(t), clk)
	step := func() { clk.Advance(50 * time.Millisecond) }
	want := func(what, tok string, v auth.Verdict) {
		t.Helper()
		if got := s.Denylist().Check(principalOf(t, tok)); got != v {
			t.Errorf("%s: verdict %d, want %d", what, got, v)
		}
		if _, err := s.Authenticate(tok); (err == nil) != (v == auth.Allowed) {
			t.Errorf("%s: Authenticate says %v with verdict %d", what, err, v)
		}
	}
	login := func(name string) auth.TokenPair {
		t.Helper()
		pair, err := s.Login(ctx, auth.LoginRequest{Username: name, Password: name + "-password"}, meta)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	var ids [4]string
	for i, n := range []string{"pat", "rob", "sue", "tim"} {
		pair, err := s.Register(ctx, auth.RegisterRequest{Username: n, Password: n + "-password"}, meta)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = pair.AccountID
	}

	// Password change: both earlier sessions go, the fresh pair stays.
	step()
	first, other := login("pat"), login("pat")
	step()
	p, _ := s.Authenticate(first.AccessToken)
	fresh, err := s.ChangePassword(ctx, p, "pat-password", "pat-new-password", meta)
	if err != nil {
		t.Fatal(err)
	}
	want("password change: caller's earlier token", first.AccessToken, auth.Revoked)
	want("password change: other session's token", other.AccessToken, auth.Revoked)
	want("password change: fresh token", fresh.AccessToken, auth.Allowed)

	// Role removal, with a token that has whole seconds only (another
	// issuer's, or one of ours from before iat_ns): it counts as issued at
	// the start of its second.
	step()
	rob := login("rob")
	coarse := signCoarse(t, s, ids[1], clk.Now())
	want("coarse token before any revocation", coarse, auth.Allowed)
	if _, err := s.SetRoles(ctx, nil, ids[1], []string{auth.RolePlayer, auth.RoleAdmin}, meta); err != nil {
		t.Fatal(err)
	}
	want("adding a role", rob.AccessToken, auth.Allowed)
	step()
	if _, err := s.SetRoles(ctx, nil, ids[1], []string{auth.RolePlayer}, meta); err != nil {
		t.Fatal(err)
	}
	want("role removal: earlier token", rob.AccessToken, auth.Revoked)
	want("role removal: coarse token", coarse, auth.Revoked)
	step()
	want("role removal: login after it", login("rob").AccessToken, auth.Allowed)

	// Ban: kicked (the socket closes as kicked, not merely revoked).
	step()
	sue := login("sue")
	step()
	if _, err := s.Ban(ctx, nil, ids[2], "cheating", meta); err != nil {
		t.Fatal(err)
	}
	want("ban", sue.AccessToken, auth.Kicked)

	// Kick: the tokens go, the session stays; a refresh comes back in.
	step()
	tim := login("tim")
	step()
	if err := s.Kick(ctx, ids[3]); err != nil {
		t.Fatal(err)
	}
	want("kick", tim.AccessToken, auth.Kicked)
	step()
	again, err := s.Refresh(ctx, tim.RefreshToken, meta)
	if err != nil {
		t.Fatalf("refresh after a kick: %v", err)
	}
	want("refreshed after a kick", again.AccessToken, auth.Allowed)
	wantCode(t, s.Kick(ctx, "no-such-account"), errcode.NotFound)

	if clk.Now().Truncate(time.Second) != newClock().Now() {
		t.Fatalf("the test left its second: %v", clk.Now())
	}
}

// principalOf parses a token whatever the deny list says: a revoked token
// does not authenticate, but the test still wants its verdict.
func principalOf(t *testing.T, tok string) *auth.Principal {
	t.Helper()
	var c struct {
		jwt.RegisteredClaims
		SID   string `json:"sid"`
		Nanos int64  `json:"iat_ns"`
	}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	iat := c.IssuedAt.Time
	if c.Nanos != 0 {
		iat = time.Unix(0, c.Nanos)
	}
	return &auth.Principal{AccountID: c.Subject, JTI: c.ID, SID: c.SID, IssuedAt: iat, ExpiresAt: c.ExpiresAt.Time}
}

// signCoarse signs an access token for account with whole-second times and
// no iat_ns, issued at now.
func signCoarse(t *testing.T, s *auth.Service, account string, now time.Time) string {
	t.Helper()
	key := s.Keys().Active()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": "multijuego", "aud": "multijuego", "sub": account,
		"jti": "coarse-" + account, "roles": []string{auth.RolePlayer}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	tok.Header["kid"], tok.Header["typ"] = key.Kid, "at+jwt"
	out, err := tok.SignedString(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Changed fires when the list gains an entry, here or by a sync, and not
// when a sync reads an entry again (the overlap).
func TestDenylistChanged(t *testing.T) {
	st := storetest.SQLite(t)
	clk := newClock()
	keys := sealedKeys(t)
	a, b := newServiceIn(t, st, clk, keys), newServiceIn(t, st, clk, keys)
	pair, err := a.Register(ctx, auth.RegisterRequest{Username: "uma", Password: "umas-password"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	fired := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	onA, onB := a.Denylist().Changed(), b.Denylist().Changed()
	clk.Advance(time.Second)
	if err := a.Kick(ctx, pair.AccountID); err != nil {
		t.Fatal(err)
	}
	if !fired(onA) || fired(onB) {
		t.Fatalf("after a kick on A: fired on A %v, on B %v; want true, false", fired(onA), fired(onB))
	}
	if err := b.Denylist().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !fired(onB) {
		t.Fatal("B's sync read the kick without firing")
	}
	onB = b.Denylist().Changed()
	clk.Advance(time.Second)
	if err := b.Denylist().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if fired(onB) {
		t.Fatal("reading the kick again fired")
	}
	p, _ := b.Tokens().VerifyUncached(pair.AccessToken)
	if p != nil {
		t.Fatal("B accepts the kicked token")
	}
}
