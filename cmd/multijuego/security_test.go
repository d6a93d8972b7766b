package main_test

// The hardening issue's negative suite against the real binary: each test
// makes the attack its finding describes and checks the refusal (status,
// error code, Retry-After, close code). Other addresses are simulated the
// way a deployment sees them: the test is a trusted proxy (loopback is in
// gateway.trusted_proxies) naming the client in a Forwarded header.
// Tests of the same findings inside one package (auth, gateway, events)
// use fakes; these show the wiring of the shipped server does the same.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/client"
)

// secServer starts the binary on the embedded default, trusting loopback
// as a proxy, with the cheapest password hash the configuration allows
// (the throttles count attempts, not hash time). It returns the server and
// its data dir.
func secServer(t *testing.T, extra ...string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"--data-dir", dir, "--gateway-trusted-proxies", "127.0.0.0/8",
		"--auth-argon2-memory-kib", "8192", "--auth-argon2-iterations", "1"}, extra...)
	return start(t, args...), dir
}

// from is what a trusted proxy adds for a client at ip.
func from(ip string) http.Header { return http.Header{"Forwarded": {"for=" + ip}} }

// errOf is an API error body's code and message.
func errOf(body map[string]any) (code, message string) {
	e, _ := body["error"].(map[string]any)
	return str(e, "code"), str(e, "message")
}

// wantRefused checks a 429 rate_limited answer with a Retry-After in
// seconds and, when given, a message naming the setting.
func wantRefused(t *testing.T, what string, status int, hdr http.Header, body map[string]any, setting string) {
	t.Helper()
	code, msg := errOf(body)
	ra, err := strconv.Atoi(hdr.Get("Retry-After"))
	if status != http.StatusTooManyRequests || code != "rate_limited" || err != nil || ra < 1 || !strings.Contains(msg, setting) {
		t.Fatalf("%s: %d %s %q, Retry-After %q; want 429 rate_limited with Retry-After naming %q", what, status, code, msg, hdr.Get("Retry-After"), setting)
	}
}

// guestFrom signs device in from ip and returns its access token and
// account id.
func guestFrom(t *testing.T, p *proc, ip, device string) (token, account string) {
	t.Helper()
	status, _, body := p.callWith(from(ip), "POST", "/v1/auth/device", "", map[string]string{"device_id": device})
	if status != 200 && status != 201 {
		t.Fatalf("device login of %s from %s: %d %v", device, ip, status, body)
	}
	return str(body, "access_token"), str(body, "account_id")
}

// Finding 1: one guest created 1,000 matches that never ended. Now one
// account gets game.max_matches_per_account live matches and one address
// game.max_matches_per_ip, each refusal a 429 naming the setting (over a
// socket, an error rate_limited); another player still creates; and the
// empty matches end after game.empty_timeout, which gives the places back.
func TestSecurityMatchFlood(t *testing.T) {
	t.Parallel()
	p, _ := secServer(t, "--game-max-matches-per-account", "3", "--game-max-matches-per-ip", "5", "--game-empty-timeout", "1s")
	const ip = "192.0.2.10"
	create := func(token string) (int, http.Header, map[string]any) {
		return p.callWith(from(ip), "POST", "/v1/matches", token, map[string]string{"mode": "arena"})
	}
	flooder, _ := guestFrom(t, p, ip, "sec-match-flooder-1")
	for i := range 3 {
		if status, _, body := create(flooder); status != 201 {
			t.Fatalf("create %d: %d %v", i, status, body)
		}
	}
	for range 20 {
		status, hdr, body := create(flooder)
		wantRefused(t, "a 4th live match of one account", status, hdr, body, "game.max_matches_per_account")
	}
	// A second account from the same address reaches the address's cap.
	second, _ := guestFrom(t, p, ip, "sec-match-flooder-2")
	for i := range 2 {
		if status, _, body := create(second); status != 201 {
			t.Fatalf("second account's create %d: %d %v", i, status, body)
		}
	}
	status, hdr, body := create(second)
	wantRefused(t, "a 6th live match of one address", status, hdr, body, "game.max_matches_per_ip")

	// Over a socket (the 1,000 matches came from one): the same
	// cap, answered rate_limited; the socket stays open.
	c, err := client.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Device(context.Background(), "sec-match-socket-flooder"); err != nil {
		t.Fatal(err)
	}
	rt, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for i := range 10 {
		_, err := rt.CreateMatch(context.Background(), "arena", nil)
		var ae *client.APIError
		switch {
		case i < 3 && err != nil:
			t.Fatalf("socket create %d: %v", i, err)
		case i >= 3 && (!errors.As(err, &ae) || ae.Code != "rate_limited" || !strings.Contains(ae.Message, "game.max_matches_per_account")):
			t.Fatalf("socket create %d past the cap: %v, want rate_limited naming game.max_matches_per_account", i, err)
		}
	}

	other, _ := guestFrom(t, p, "198.51.100.20", "sec-match-bystander")
	if status, _, body := p.callWith(from("198.51.100.20"), "POST", "/v1/matches", other, map[string]string{"mode": "arena"}); status != 201 {
		t.Fatalf("another player's create while the flooder is capped: %d %v", status, body)
	}
	// Nobody sits in them: all six end within game.empty_timeout (1s)
	// plus a tick, and the flooder may create again.
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, p, "multijuego_matches_live") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%v empty matches still live 10s after creation (game.empty_timeout 1s)", metric(t, p, "multijuego_matches_live"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status, _, body := create(flooder); status != 201 {
		t.Fatalf("create after the empty matches ended: %d %v", status, body)
	}
}

// Finding 3: POST /v1/account/password took 300 wrong current passwords
// without a 429. Now a stolen token gets auth.account_ip_failures (5)
// guesses, then 429, even with the right password.
func TestSecurityChangePasswordGuessing(t *testing.T) {
	t.Parallel()
	p, _ := secServer(t)
	status, reg := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "victim3", "password": "victim3 real password"})
	if status != 201 {
		t.Fatalf("register: %d %v", status, reg)
	}
	stolen := str(reg, "access_token")
	change := func(current string) (int, http.Header, map[string]any) {
		return p.callWith(nil, "POST", "/v1/account/password", stolen, map[string]string{"current_password": current, "new_password": "attacker chosen password"})
	}
	for i := range 5 {
		if status, _, body := change(fmt.Sprintf("guess number %d", i)); status != 401 {
			t.Fatalf("wrong current password %d: %d %v, want 401", i, status, body)
		}
	}
	for i := range 10 {
		status, hdr, body := change(fmt.Sprintf("more guesses %d", i))
		wantRefused(t, "the 6th wrong current password", status, hdr, body, "")
	}
	status, hdr, body := change("victim3 real password")
	wantRefused(t, "the right current password once throttled", status, hdr, body, "")
	// The owner, elsewhere, still has the old password.
	if status, _, body := p.callWith(from("203.0.113.3"), "POST", "/v1/auth/login", "", map[string]string{"username": "victim3", "password": "victim3 real password"}); status != 200 {
		t.Fatalf("owner's login from another address: %d %v", status, body)
	}
}

// Finding 4: once an address's sign-ups were spent, wrong device ids got
// 429 but a right id still logged in. Now auth.device_ip_failures misses
// refuse every device login from that address, a right id's too, while
// the owner's own address and a fresh address still work; the admin API
// shows a device count, never the ids or their hashes.
func TestSecurityDeviceGuessing(t *testing.T) {
	t.Parallel()
	p, dir := secServer(t, "--auth-signup-ip-limit", "1")
	const victimDevice, guesser = "sec-victim-device-0001", "192.0.2.44"
	_, victim := guestFrom(t, p, "198.51.100.9", victimDevice)
	guestFrom(t, p, guesser, "sec-guesser-own-device") // spends the guesser's one sign-up
	for i := range 10 {
		status, hdr, body := p.callWith(from(guesser), "POST", "/v1/auth/device", "", map[string]string{"device_id": fmt.Sprintf("sec-guess-%08d", i)})
		wantRefused(t, "a guessed device id past the sign-up limit", status, hdr, body, "")
	}
	status, hdr, body := p.callWith(from(guesser), "POST", "/v1/auth/device", "", map[string]string{"device_id": victimDevice})
	wantRefused(t, "the right device id from the guessing address", status, hdr, body, "")
	if _, acc := guestFrom(t, p, "198.51.100.9", victimDevice); acc != victim {
		t.Fatalf("owner's device from its own address logged in as %s, want %s", acc, victim)
	}
	if _, acc := guestFrom(t, p, "203.0.113.7", victimDevice); acc != victim {
		t.Fatalf("owner's device from a fresh address logged in as %s, want %s", acc, victim)
	}

	admin := adminTokenOn(t, p, "--data-dir", dir)
	for _, path := range []string{"/v1/admin/accounts?limit=500", "/v1/admin/accounts/" + victim} {
		status, body := p.call("GET", path, admin, nil)
		raw, _ := json.Marshal(body)
		if status != 200 || !strings.Contains(string(raw), "device_count") {
			t.Fatalf("GET %s: %d %s", path, status, raw)
		}
		if strings.Contains(string(raw), "sec-victim-device") || strings.Contains(string(raw), "d1$") {
			t.Fatalf("GET %s shows a device id or its hash: %s", path, raw)
		}
	}
}

// Finding 7: brute force on one account from many addresses is throttled
// (each address auth.account_ip_failures guesses; once the account has
// auth.account_failures failures a new address gets one guess), the owner
// still logs in at the first try from an address never seen, a common
// password is refused, and a throttled flood leaves one audit row per
// window, not one per attempt.
func TestSecurityDistributedBruteForce(t *testing.T) {
	t.Parallel()
	p, dir := secServer(t, "--auth-account-ip-failures", "2", "--auth-account-failures", "10")
	if status, body := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "olga", "password": "olgas own password"}); status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	login := func(ip, password string) (int, http.Header, map[string]any) {
		return p.callWith(from(ip), "POST", "/v1/auth/login", "", map[string]string{"username": "olga", "password": password})
	}
	for i := range 5 { // 5 addresses x 2 failures = auth.account_failures
		ip := fmt.Sprintf("192.0.2.%d", 100+i)
		for j := range 2 {
			if status, _, body := login(ip, fmt.Sprintf("guess %d %d", i, j)); status != 401 {
				t.Fatalf("guess %d from %s: %d %v", j, ip, status, body)
			}
		}
		status, hdr, body := login(ip, "yet another guess")
		wantRefused(t, "a 3rd guess from one address", status, hdr, body, "")
	}
	if status, _, body := login("192.0.2.250", "fresh address guess"); status != 401 {
		t.Fatalf("a new address's one guess on an account under attack: %d %v", status, body)
	}
	status, hdr, refused := login("192.0.2.250", "olgas own password")
	wantRefused(t, "the right password from an attacking address", status, hdr, refused, "")
	if status, _, body := login("203.0.113.200", "olgas own password"); status != 200 {
		t.Fatalf("owner from a new address while the account is under attack: %d %v", status, body)
	}

	status, body := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "weakling", "password": "password1"})
	if e, _ := body["error"].(map[string]any); status != 400 || str(e, "field") != "password" {
		t.Fatalf("register with a common password: %d %v, want 400 on field password", status, body)
	}

	// One address floods another account: one throttled audit row.
	if status, body := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "flooded", "password": "flooded own password"}); status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	flooded := ""
	for i := range 15 {
		status, _, body := p.callWith(from("192.0.2.77"), "POST", "/v1/auth/login", "", map[string]string{"username": "flooded", "password": fmt.Sprintf("flood %d", i)})
		if status != 401 && status != 429 {
			t.Fatalf("flood attempt %d: %d %v", i, status, body)
		}
	}
	admin := adminTokenOn(t, p, "--data-dir", dir)
	_, accounts := p.call("GET", "/v1/admin/accounts?limit=500", admin, nil)
	for _, a := range accounts["accounts"].([]any) {
		if a := a.(map[string]any); str(a, "username") == "flooded" {
			flooded = str(a, "id")
		}
	}
	status, audit := p.call("GET", "/v1/admin/audit?kind=throttled&account_id="+flooded, admin, nil)
	if rows, _ := audit["events"].([]any); status != 200 || flooded == "" || len(rows) != 1 {
		t.Fatalf("throttled audit rows of a 15-attempt flood (account %q): %d %v, want 1", flooded, status, audit)
	}
}

// iat is a JWT's issued-at claim, in whole seconds.
func iat(t *testing.T, token string) int64 {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		IAT int64 `json:"iat"`
	}
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return claims.IAT
}

// Finding 8: a token issued in the same second as a password change
// survived it (JWT times are whole seconds). Now a token and a socket
// opened just before the change, in the same second, are refused after
// it: the token with 401, the socket closed with 4002 within a second.
func TestSecuritySameSecondRevocation(t *testing.T) {
	t.Parallel()
	p, _ := secServer(t)
	ctx := context.Background()
	password := "mallory first password"
	if status, body := p.call("POST", "/v1/auth/register", "", map[string]string{"username": "mallory", "password": password}); status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	// The change must land in the token's second: start just after a
	// second begins; a slow box that crosses the boundary tries again.
	for attempt := 1; ; attempt++ {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
		c, err := client.New(p.url)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.Login(ctx, "mallory", password)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := c.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		next := fmt.Sprintf("mallory password %d", attempt)
		status, body := p.call("POST", "/v1/account/password", tok.AccessToken, map[string]string{"current_password": password, "new_password": next})
		changed := time.Now()
		if status != 200 {
			t.Fatalf("change password: %d %v", status, body)
		}
		password = next
		if changed.Unix() != iat(t, tok.AccessToken) {
			rt.Close()
			if attempt == 5 {
				t.Fatal("5 tries never changed the password in the second its token was issued")
			}
			continue
		}
		if status, body := p.call("GET", "/v1/account", tok.AccessToken, nil); status != 401 {
			t.Fatalf("a token of the change's second after the change: %d %v, want 401", status, body)
		}
		select {
		case <-rt.Done():
		case <-time.After(time.Second):
			t.Fatal("the socket of the change's second still open 1s after the change")
		}
		if rt.CloseCode() != client.CloseRevoked {
			t.Fatalf("socket ended with %v, want close %d", rt.Err(), client.CloseRevoked)
		}
		if status, _ := p.call("GET", "/v1/account", str(body, "access_token"), nil); status != 200 {
			t.Fatalf("the token the change returned: %d", status)
		}
		return
	}
}

// Finding 10: the 21st guest from 127.0.0.1 within an hour was refused
// with no hint of the setting. On a loopback server on the embedded
// default, loopback sign-ups are not limited; any other address is, and
// its refusal names auth.signup_ip_limit and the flag.
func TestSecurityLoopbackSignups(t *testing.T) {
	t.Parallel()
	p, _ := secServer(t, "--auth-signup-ip-limit", "3")
	for i := range 25 {
		if status, body := p.call("POST", "/v1/auth/device", "", map[string]string{"device_id": fmt.Sprintf("sec-loopback-dev-%03d", i)}); status != 201 {
			t.Fatalf("loopback guest %d of 25 (limit 3): %d %v", i+1, status, body)
		}
	}
	for i := range 3 {
		guestFrom(t, p, "192.0.2.30", fmt.Sprintf("sec-remote-dev-%03d", i))
	}
	status, hdr, body := p.callWith(from("192.0.2.30"), "POST", "/v1/auth/device", "", map[string]string{"device_id": "sec-remote-dev-004"})
	wantRefused(t, "a 4th guest from a non-loopback address", status, hdr, body, "auth.signup_ip_limit")
	if _, msg := errOf(body); !strings.Contains(msg, "--auth-signup-ip-limit") {
		t.Fatalf("refusal without the flag: %q", msg)
	}
}

// Finding 8, the second half: a removed account's token worked until it
// expired. The server has no account deletion; a ban is how an operator
// removes a player: the token is refused at once, the socket closes with
// 4003 within a second, and neither a login nor a refresh gets a new one.
func TestSecurityBanEndsEverything(t *testing.T) {
	t.Parallel()
	p, dir := secServer(t)
	ctx := context.Background()
	c, err := client.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Register(ctx, "banned", "", "banned player password")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	admin := adminTokenOn(t, p, "--data-dir", dir)
	if status, body := p.call("POST", "/v1/admin/accounts/"+tok.AccountID+"/ban", admin, map[string]string{"reason": "security test"}); status >= 300 {
		t.Fatalf("ban: %d %v", status, body)
	}
	select {
	case <-rt.Done():
	case <-time.After(time.Second):
		t.Fatal("the banned player's socket still open 1s after the ban")
	}
	if rt.CloseCode() != client.CloseKicked {
		t.Fatalf("socket ended with %v, want close %d", rt.Err(), client.CloseKicked)
	}
	for _, tc := range []struct {
		what, path, token string
		body              any
		status            int
		code              string
	}{
		{"token", "/v1/account", tok.AccessToken, nil, 401, "unauthenticated"},
		{"login", "/v1/auth/login", "", map[string]string{"username": "banned", "password": "banned player password"}, 403, "account_banned"},
		{"refresh", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}, 401, "unauthenticated"},
	} {
		method := "POST"
		if tc.body == nil {
			method = "GET"
		}
		status, body := p.call(method, tc.path, tc.token, tc.body)
		if code, _ := errOf(body); status != tc.status || code != tc.code {
			t.Errorf("the banned account's %s: %d %v, want %d %s", tc.what, status, body, tc.status, tc.code)
		}
	}
}
