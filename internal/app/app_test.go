package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/config"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/redistest"
)

func writeYAML(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "multijuego.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	file := writeYAML(t, `
listen: 127.0.0.1:1111
data_dir: /from/file
auth:
  access_ttl: 5m
  issuer: file-issuer
gateway:
  trusted_proxies: [10.0.0.0/8, 192.168.0.0/16]
`)
	env := []string{"MULTIJUEGO_LISTEN=127.0.0.1:2222", "MULTIJUEGO_AUTH_ISSUER=env-issuer", "PATH=/bin"}
	cfg, rest, err := app.LoadConfig("test", []string{"--config", file, "--auth-issuer", "flag-issuer", "extra"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, got, want string }{
		{"data_dir (file over default)", cfg.DataDir, "/from/file"},
		{"listen (env over file)", cfg.Listen, "127.0.0.1:2222"},
		{"auth.issuer (flag over env)", cfg.Auth.Issuer, "flag-issuer"},
		{"auth.access_ttl (file)", cfg.Auth.AccessTTL.String(), "5m0s"},
		{"auth.audience (default)", cfg.Auth.Audience, "multijuego"},
		{"gateway.trusted_proxies (list)", strings.Join(cfg.Gateway.TrustedProxies, "|"), "10.0.0.0/8|192.168.0.0/16"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.key, c.got, c.want)
		}
	}
	if len(rest) != 1 || rest[0] != "extra" {
		t.Errorf("positional args = %v", rest)
	}
	// MULTIJUEGO_CONFIG names the file when --config is absent.
	cfg, _, err = app.LoadConfig("test", nil, []string{"MULTIJUEGO_CONFIG=" + file}, io.Discard)
	if err != nil || cfg.DataDir != "/from/file" {
		t.Fatalf("MULTIJUEGO_CONFIG: %v %q", err, cfg.DataDir)
	}
	// The fixed names.
	cfg, _, err = app.LoadConfig("test", []string{"--data-dir", "/d", "--listen", "0.0.0.0:0", "--database-url", "postgres://x@127.0.0.1/db"}, nil, io.Discard)
	if err != nil || cfg.DataDir != "/d" || cfg.Listen != "0.0.0.0:0" || cfg.DatabaseURL != "postgres://x@127.0.0.1/db" {
		t.Fatalf("fixed flags: %v %+v", err, cfg)
	}
	cfg, _, err = app.LoadConfig("test", nil, []string{"MULTIJUEGO_DATA_DIR=/e", "MULTIJUEGO_LISTEN=127.0.0.1:9", "MULTIJUEGO_DATABASE_URL=postgres://y@127.0.0.1/db"}, io.Discard)
	if err != nil || cfg.DataDir != "/e" || cfg.Listen != "127.0.0.1:9" || cfg.DatabaseURL != "postgres://y@127.0.0.1/db" {
		t.Fatalf("fixed env: %v %+v", err, cfg)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args, env  []string
		file, want string
	}{
		{"unknown yaml key", nil, nil, "auth:\n  acess_ttl: 5m\n", `line 2: unknown key "auth.acess_ttl"`},
		{"bad yaml duration", nil, nil, "auth:\n  access_ttl: soon\n", `auth.access_ttl: "soon" is not a duration`},
		{"yaml mapping for a value", nil, nil, "listen:\n  host: x\n", "listen: expected a value"},
		{"bad env int", nil, []string{"MULTIJUEGO_AUTH_TOKEN_CACHE=many"}, "", `environment MULTIJUEGO_AUTH_TOKEN_CACHE: auth.token_cache: "many" is not an integer`},
		{"unknown env", nil, []string{"MULTIJUEGO_LISTN=x"}, "", "unknown variable MULTIJUEGO_LISTN"},
		{"unknown flag", []string{"--listn", "x"}, nil, "", "flag provided but not defined: -listn"},
		{"out of range", []string{"--auth-access-ttl", "48h"}, nil, "", "auth.access_ttl: must be between 30s and 24h, got 48h0m0s"},
		{"bad listen", []string{"--listen", "7350"}, nil, "", "listen: must be HOST:PORT"},
		{"batch interval out of range", []string{"--game-batch-interval", "1s"}, nil, "", "game.batch_interval: must be between 100us and 50ms, got 1s"},
		{"negative empty timeout", []string{"--game-empty-timeout", "-1s"}, nil, "", "game.empty_timeout: must be 0 (never) or more, got -1s"},
		{"control timeout out of range", []string{"--gateway-control-timeout", "0s"}, nil, "", "gateway.control_timeout: must be between 100ms and 1m, got 0s"},
		{"control queue too small", nil, []string{"MULTIJUEGO_GATEWAY_CONTROL_QUEUE=4"}, "", "gateway.control_queue: must be between 16 and 1048576, got 4"},
		{"negative control workers", nil, nil, "gateway:\n  control_workers: -1\n", "gateway.control_workers: must be between 0 (4 per core) and 4096, got -1"},
		{"bad role", []string{"--roles", "gateway,matchmaker9"}, nil, "", `roles: unknown role "matchmaker9"`},
		{"gateway alone needs auth_url", []string{"--roles", "gateway"}, nil, "", "gateway.auth_url: is required"},
		{"bad database url", []string{"--database-url", "mysql://x"}, nil, "", "database_url: must start with postgres://"},
		{"bad proxy cidr", []string{"--gateway-trusted-proxies", "10.0.0.1"}, nil, "", `gateway.trusted_proxies: "10.0.0.1" is not a CIDR`},
		{"tls half set", []string{"--gateway-tls-cert-file", "c.pem"}, nil, "", "tls_cert_file and tls_key_file go together"},
		{"client names without a client CA", []string{"--gateway-tls-client-names", "gw-*"}, nil, "", "gateway.tls_client_names: names the client certificates accepted: set tls_client_ca_file too"},
		{"listener client names without a client CA", []string{"--events-listen", "127.0.0.1:4223", "--events-listen-tls-cert-file", "c.pem", "--events-listen-tls-key-file", "k.pem", "--events-listen-tls-client-names", "persist-*"}, nil, "", "events.listen_tls.client_names: names the client certificates accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeYAML(t, tc.file)}, args...)
			}
			_, _, err := app.LoadConfig("test", args, tc.env, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigPrintRoundTripsAndMasks(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "postgres://game:hunter2@127.0.0.1:5432/game"
	cfg.Gateway.TLSCertFile, cfg.Gateway.TLSKeyFile = "/c.pem", "/k.pem"
	cfg.Auth.OIDC.Issuers = []string{
		"name=cognito issuer=https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC audience=abc|def token_use=id|access groups_claim=cognito:groups roles=admins:admin",
		"name=other issuer=https://id.example.com/ audience=game",
	}
	out := config.Print(&cfg)
	if strings.Contains(out, "hunter2") || strings.Contains(out, "/k.pem") {
		t.Fatalf("secrets printed:\n%s", out)
	}
	back := app.DefaultConfig()
	back.Listen = "changed"
	if err := config.LoadYAML(&back, []byte(out)); err != nil {
		t.Fatalf("printed config does not load back: %v", err)
	}
	if back.Listen != cfg.Listen || back.Auth.AccessTTL != cfg.Auth.AccessTTL || !slices.Equal(back.Auth.OIDC.Issuers, cfg.Auth.OIDC.Issuers) {
		t.Fatalf("round trip lost values")
	}
}

// Every setting that can carry a secret is masked by config print: URLs
// with passwords (lists too), and the secret-tagged ones. A setting added
// later that looks secret-bearing (a URL, an endpoint, a key, a password,
// a token, a seed, credentials) must be listed here, or the test fails.
func TestConfigPrintMasksEverySecret(t *testing.T) {
	cfg := app.DefaultConfig()
	secrets := map[string]func(pw string){
		"database_url":             func(pw string) { cfg.DatabaseURL = "postgres://game:" + pw + "@127.0.0.1:5432/game?sslmode=disable" },
		"redis_url":                func(pw string) { cfg.RedisURL = "redis://:" + pw + "a@h1:6379/0,redis://u:" + pw + "b@h2:6379/0" },
		"nats_url":                 func(pw string) { cfg.NATSURL = "nats://a:" + pw + "a@h1:4222,tls://b:" + pw + "b@h2:4222" },
		"dynamodb_endpoint":        func(pw string) { cfg.DynamoDBEndpoint = "https://key:" + pw + "@dynamo.local:8000" },
		"gateway.auth_url":         func(pw string) { cfg.Gateway.AuthURL = "https://gw:" + pw + "@auth.local:7350" },
		"gateway.tls_key_file":     func(pw string) { cfg.Gateway.TLSKeyFile = "/etc/" + pw + ".pem" },
		"gateway.address_key_file": func(pw string) { cfg.Gateway.AddressKeyFile = "/etc/" + pw + ".key" },
		"seal.vault_url":           func(pw string) { cfg.Seal.VaultURL = "postgres://vault:" + pw + "@127.0.0.1:5432/vault" },
		"seal.awskms.endpoint":     func(pw string) { cfg.Seal.AWSKMS.Endpoint = "https://k:" + pw + "@kms.local" },
	}
	// Not secrets themselves: names of files that hold them (shown, so an
	// operator can see which file is read), a user name, sizes and periods.
	notSecret := map[string]bool{"events.user": true, "events.password_file": true, "events.creds_file": true,
		"events.nkey_seed_file": true, "events.signing_key_file": true, "auth.keys_dir": true, "auth.keys_reload": true,
		"auth.token_cache": true, "auth.password_min_length": true, "auth.password_max_length": true, "limits.max_keys": true,
		"seal.keyring_file": true, "seal.pkcs11.token": true, "seal.pkcs11.pin_file": true, "seal.pkcs11.pin_env": true,
		"seal.pkcs11.key_label": true, "seal.awskms.key_id": true, "redis_tls.key_file": true, "events.tls.key_file": true,
		"gateway.auth_tls.key_file": true, "events.listen_tls.key_file": true}
	looksSecret := regexp.MustCompile(`url|endpoint|key|password|token|secret|seed|cred`)
	for _, f := range config.Fields(&cfg) {
		if _, listed := secrets[f.Key]; !listed && !notSecret[f.Key] && (f.Secret || looksSecret.MatchString(f.Key)) {
			t.Errorf("setting %s looks secret-bearing: add it to this test (masked) or to notSecret", f.Key)
		}
	}
	for key, set := range secrets {
		set("pw" + strings.ReplaceAll(key, ".", "") + "x")
	}
	out := config.Print(&cfg)
	for key := range secrets {
		if pw := "pw" + strings.ReplaceAll(key, ".", "") + "x"; strings.Contains(out, pw) {
			t.Errorf("%s: secret printed:\n%s", key, out)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := app.Run(context.Background(), []string{"version"}, &out, &errb, nil); code != 0 || !strings.HasPrefix(out.String(), "multijuego ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := app.Run(context.Background(), []string{"frobnicate"}, &out, &errb, nil); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
	if code := app.Run(context.Background(), []string{"migrate"}, &out, &errb, nil); code != 2 {
		t.Fatalf("migrate without subcommand: exit %d", code)
	}
	if code := app.Run(context.Background(), []string{"serve", "--listen", "bad"}, &out, &errb, nil); code != 2 {
		t.Fatalf("bad config: exit %d", code)
	}
	// Help alone lists the commands (bare flags are serve's, but not this).
	for _, h := range []string{"help", "-h", "--help"} {
		out.Reset()
		if code := app.Run(context.Background(), []string{h}, &out, &errb, nil); code != 0 || !strings.Contains(out.String(), "multijuego migrate") {
			t.Errorf("%s: exit %d, want the commands: %q", h, code, out.String())
		}
	}
}

// Loki-style: two processes' worth of roles in one test, an auth-only Main
// behind a gateway-only Main that proxies to it and checks tokens itself
// (the auth role's JWKS, the deny list from the shared database).
func TestSplitRoles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	authCfg := app.DefaultConfig()
	authCfg.DataDir, authCfg.Listen, authCfg.Roles = t.TempDir(), "127.0.0.1:0", []string{"auth"}
	authCfg.Gateway.TrustedProxies = []string{"127.0.0.0/8"}
	authCfg.Auth.Argon2MemoryKiB, authCfg.Auth.Argon2Iterations = 8192, 1
	authMain := &app.Main{Config: authCfg}
	authCtx, stopAuth := context.WithCancel(ctx)
	defer stopAuth()
	if err := authMain.Open(authCtx); err != nil {
		t.Fatal(err)
	}
	authDone := make(chan error, 1)
	go func() { authDone <- authMain.Run(authCtx) }()

	gwCfg := app.DefaultConfig()
	// The same data dir: both processes use its SQLite file, as nodes
	// share one PostgreSQL in production.
	gwCfg.DataDir, gwCfg.Listen, gwCfg.Roles = authCfg.DataDir, "127.0.0.1:0", []string{"gateway"}
	gwCfg.Gateway.AuthURL = authMain.URL()
	gwCfg.NATSURL = eventstest.StartServer(t).URL()
	gwCfg.RedisURL, gwCfg.RedisPrefix = redistest.URL(t), redistest.Prefix(t)
	if err := gwCfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gwMain := &app.Main{Config: gwCfg}
	if err := gwMain.Open(ctx); err != nil {
		t.Fatal(err)
	}
	gwDone := make(chan error, 1)
	go func() { gwDone <- gwMain.Run(ctx) }()

	post := func(path string, body any) (*http.Response, map[string]any) {
		b, _ := json.Marshal(body)
		res, err := http.Post(gwMain.URL()+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res, out
	}
	res, body := post("/v1/auth/register", map[string]string{"username": "proxied", "password": "proxied-password"})
	if res.StatusCode != 201 || res.Header.Get("X-Request-ID") == "" {
		t.Fatalf("register through the gateway: %d %v", res.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", gwMain.URL()+"/v1/account", nil)
	req.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
	acc, err := http.DefaultClient.Do(req)
	if err != nil || acc.StatusCode != 200 {
		t.Fatalf("account through the gateway: %v %v", err, acc.Status)
	}
	acc.Body.Close()
	// No game node runs: creating a match is refused clearly.
	creq, _ := http.NewRequest("POST", gwMain.URL()+"/v1/matches", strings.NewReader(`{"mode":"arena"}`))
	creq.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
	creq.Header.Set("Content-Type", "application/json")
	if cres, err := http.DefaultClient.Do(creq); err != nil || cres.StatusCode != 503 {
		t.Fatalf("create a match with no game node: %v %v", err, cres.Status)
	} else {
		cres.Body.Close()
	}
	ready, err := http.Get(gwMain.URL() + "/readyz")
	if err != nil || ready.StatusCode != 200 {
		t.Fatalf("gateway readyz: %v %v", err, ready.Status)
	}
	ready.Body.Close()

	// The gateway checks tokens itself: the records API answers, and a
	// logout (made on the auth role) reaches its deny list within the
	// revocation sync (1 s).
	token := body["access_token"].(string)
	boards := func() int {
		req, _ := http.NewRequest("GET", gwMain.URL()+"/v1/leaderboards", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := boards(); code != 200 {
		t.Fatalf("leaderboards on the gateway: %d", code)
	}
	lreq, _ := http.NewRequest("POST", gwMain.URL()+"/v1/auth/logout", nil)
	lreq.Header.Set("Authorization", "Bearer "+token)
	if lres, err := http.DefaultClient.Do(lreq); err != nil || lres.StatusCode != 204 {
		t.Fatalf("logout through the gateway: %v %v", err, lres.Status)
	}
	revoked := time.Now()
	for boards() != 401 {
		if time.Since(revoked) > 3*time.Second {
			t.Fatal("the gateway still accepts a logged-out token after 3 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("logout reached the gateway in %s", time.Since(revoked).Round(time.Millisecond))

	// The auth role dies: the gateway answers 503 in the API's format and
	// its readiness fails.
	stopAuth()
	if err := <-authDone; err != nil {
		t.Fatal(err)
	}
	authMain.Close()
	res, body = post("/v1/auth/login", map[string]string{"username": "proxied", "password": "proxied-password"})
	if errObj, _ := body["error"].(map[string]any); res.StatusCode != 503 || errObj["code"] != "unavailable" || res.Header.Get("Retry-After") == "" {
		t.Fatalf("auth down: %d %v", res.StatusCode, body)
	}
	ready, err = http.Get(gwMain.URL() + "/readyz")
	if err != nil || ready.StatusCode != 503 {
		t.Fatalf("gateway readyz with auth down: %v %v", err, ready.Status)
	}
	ready.Body.Close()
	cancel()
	select {
	case err := <-gwDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not stop")
	}
	gwMain.Close()
}
