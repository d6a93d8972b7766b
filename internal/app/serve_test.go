package app_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/games/arena"
	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/cache"
	"github.com/multijuego/multijuego/internal/gamenode"
	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/kv/kvtest"
	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/internal/store/storetest"
	"github.com/multijuego/multijuego/internal/tlstest"
)

func startMain(t *testing.T, cfg app.Config) (*app.Main, func()) {
	t.Helper()
	return startMainWith(t, cfg, nil)
}

func startMainWith(t *testing.T, cfg app.Config, modes []app.Mode) (*app.Main, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &app.Main{Config: cfg, Modes: modes}
	if err := m.Open(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return m, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		m.Close()
	}
}

func testConfig(t *testing.T) app.Config {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Auth.Argon2MemoryKiB, cfg.Auth.Argon2Iterations = 8192, 1
	return cfg
}

// With gateway.tls_cert_file and tls_key_file the server speaks HTTPS only.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := tlstest.Files(t, dir)
	cfg := testConfig(t)
	cfg.Gateway.TLSCertFile, cfg.Gateway.TLSKeyFile = certFile, keyFile
	m, stop := startMain(t, cfg)
	defer stop()
	if !strings.HasPrefix(m.URL(), "https://") {
		t.Fatalf("URL = %s", m.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get(m.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("healthz over TLS: %d tls=%v", res.StatusCode, res.TLS != nil)
	}
	// Plain HTTP on the TLS port gets no API answer.
	res, err = http.Get("http://" + m.Addr() + "/healthz")
	if err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
}

// With gateway.tls_self_signed the server makes a development certificate
// in data_dir/tls, serves HTTPS on it, and keeps it across restarts.
func TestServeSelfSigned(t *testing.T) {
	cfg := testConfig(t)
	cfg.Gateway.TLSSelfSigned = true
	get := func() *x509.Certificate {
		t.Helper()
		m, stop := startMain(t, cfg)
		defer stop()
		pem, err := os.ReadFile(filepath.Join(cfg.DataDir, "tls", "dev-cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		res, err := client.Get(strings.Replace(m.URL(), "127.0.0.1", "localhost", 1) + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(m.URL(), "https://") {
			t.Fatalf("readyz over the self-signed certificate: %d, URL %s", res.StatusCode, m.URL())
		}
		return res.TLS.PeerCertificates[0]
	}
	if a, b := get(), get(); !a.Equal(b) {
		t.Error("a restart made a new development certificate")
	}
	bad := testConfig(t)
	bad.Gateway.TLSSelfSigned, bad.Gateway.TLSCertFile, bad.Gateway.TLSKeyFile = true, "/c.pem", "/k.pem"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "tls_self_signed") {
		t.Errorf("self-signed with a certificate file: %v", err)
	}
}

// Without auto-migration, a process refuses to start on a schema that is
// not current, and says what to do; after 'migrate up' it starts.
func TestPendingMigrationsStopTheStart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store.AutoMigrate = false
	m := &app.Main{Config: cfg}
	err := m.Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "migrate up") {
		t.Fatalf("Open on an unmigrated database: %v", err)
	}
	var out strings.Builder
	if code := app.Run(context.Background(), []string{"migrate", "up", "--data-dir", cfg.DataDir}, &out, &out, nil); code != 0 {
		t.Fatalf("migrate up: %d %s", code, out.String())
	}
	m2, stop := startMain(t, cfg)
	defer stop()
	res, err := http.Get(m2.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("readyz after migrate up: %d", res.StatusCode)
	}
}

// Two nodes on one PostgreSQL and one Redis share the login throttle: the
// failures counted on one node stop the next attempt on the other.
func TestThrottleHoldsAcrossNodes(t *testing.T) {
	pg := storetest.PostgresURL(t)
	rurl := redistest.URL(t)
	keys := t.TempDir()
	prefix := redistest.Prefix(t) // the machine's Redis outlives test runs
	start := func() *app.Main {
		cfg := testConfig(t)
		cfg.DatabaseURL, cfg.RedisURL, cfg.Auth.KeysDir, cfg.RedisPrefix = pg, rurl, keys, prefix
		cfg.Auth.AccountIPFailures, cfg.Auth.AccountFailures = 2, 2
		m, stop := startMain(t, cfg)
		t.Cleanup(stop)
		return m
	}
	a, b := start(), start()
	user := "u" + strings.ReplaceAll(redistest.Prefix(t), ":", "")[4:16]
	post := func(m *app.Main, path, body string) int {
		res, err := http.Post(m.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post(a, "/v1/auth/register", `{"username":"`+user+`","password":"right-password"}`); code != 201 {
		t.Fatalf("register: %d", code)
	}
	wrong := `{"username":"` + user + `","password":"wrong-password"}`
	if post(a, "/v1/auth/login", wrong) != 401 || post(a, "/v1/auth/login", wrong) != 401 {
		t.Fatal("failures on node A were not 401")
	}
	if code := post(b, "/v1/auth/login", `{"username":"`+user+`","password":"right-password"}`); code != 429 {
		t.Fatalf("node B after two failures on node A: %d, want 429", code)
	}
}

// --kv dynamodb: the key-value store on DynamoDB (a local dynalite here);
// the table is created on demand and readiness checks it.
func TestKVOnDynamoDB(t *testing.T) {
	endpoint := kvtest.Dynalite(t)
	cfg := testConfig(t)
	cfg.KV, cfg.DynamoDBEndpoint, cfg.DynamoDBTable = "dynamodb", endpoint, "mj_app_test"
	cfg.Auth.AccountIPFailures, cfg.Auth.AccountFailures = 1, 1
	m, stop := startMain(t, cfg)
	defer stop()
	post := func(path, body string) int {
		res, err := http.Post(m.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post("/v1/auth/register", `{"username":"dyn","password":"right-password"}`); code != 201 {
		t.Fatalf("register: %d", code)
	}
	if code := post("/v1/auth/login", `{"username":"dyn","password":"wrong-password"}`); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if code := post("/v1/auth/login", `{"username":"dyn","password":"right-password"}`); code != 429 {
		t.Fatalf("after the failure limit: %d, want 429 (the counter lives in DynamoDB)", code)
	}
	res, err := http.Get(m.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Checks map[string]string }
	json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != 200 || body.Checks["dynamodb"] != "ok" {
		t.Fatalf("readyz: %d %v", res.StatusCode, body.Checks)
	}
}

// The game role keeps its matches' state in Redis: a directory lease per
// live match and snapshots every game.snapshot_every ticks, a final one at
// shutdown, and the lease released.
func TestMatchStateInRedis(t *testing.T) {
	rurl := redistest.URL(t)
	cfg := testConfig(t)
	cfg.RedisURL, cfg.RedisPrefix = rurl, redistest.Prefix(t)
	cfg.NodeID, cfg.Game.SnapshotEvery, cfg.Game.Heartbeat, cfg.Game.ShutdownGrace = "node-test", 5, 100*time.Millisecond, time.Second
	m := &app.Main{Config: cfg, Modes: []app.Mode{{Name: arena.Mode, Factory: arena.New}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	res, err := http.Post(m.URL()+"/v1/auth/device", "application/json", strings.NewReader(`{"device_id":"device-match-state-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	req, _ := http.NewRequest("POST", m.URL()+"/v1/matches", strings.NewReader(`{"mode":"arena"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		MatchID string `json:"match_id"`
	}
	json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if res.StatusCode != 201 || created.MatchID == "" {
		t.Fatalf("create match: %d", res.StatusCode)
	}

	client, err := cache.ParseRedisURL(rurl, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	store, err := kv.NewRedis(kv.RedisOptions{Client: client, Prefix: cfg.RedisPrefix + "kv:"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the directory record", func() bool {
		rec, err := gamenode.Lookup(context.Background(), store, created.MatchID)
		return err == nil && rec.Node == "node-test" && rec.Mode == arena.Mode
	})
	waitFor("a periodic snapshot", func() bool {
		s, node, err := gamenode.LoadSnapshot(context.Background(), store, created.MatchID)
		return err == nil && node == "node-test" && s.Tick >= 5 && s.Tick%5 == 0 && len(s.Data) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.Close()
	s, _, err := gamenode.LoadSnapshot(context.Background(), store, created.MatchID)
	if err != nil || !s.Final {
		t.Fatalf("after shutdown: snapshot %+v, %v; want the final one", s, err)
	}
	if _, err := gamenode.Lookup(context.Background(), store, created.MatchID); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("directory record after shutdown: %v, want released", err)
	}
}
