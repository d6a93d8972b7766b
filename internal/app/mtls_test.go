package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/internal/certs"
	"github.com/multijuego/multijuego/internal/events"
	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/internal/tlstest"
)

// Mutual TLS between roles: an auth role alone whose listener requires a
// client certificate from the deployment's CA (gateway.tls_client_ca_file),
// and a gateway that calls it over https with its own certificate
// (gateway.auth_tls): proxied routes, the JWKS its token checks use, and
// its readiness check all work. The auth role refuses a peer without a
// certificate, with one from another CA, or with an expired one; a
// gateway refuses to start against an auth role it does not trust, or
// without a certificate the auth role accepts.
func TestSplitRolesMutualTLS(t *testing.T) {
	pki := tlstest.NewPKI(t, t.TempDir())
	other := tlstest.NewPKI(t, t.TempDir())
	expiredCert, expiredKey := pki.Expired(t, "expired")
	gameCert, gameKey := pki.Issue(t, "game-0")

	authCfg := testConfig(t)
	authCfg.Roles = []string{"auth"}
	authCfg.Gateway.TrustedProxies = []string{"127.0.0.0/8"}
	authCfg.Gateway.TLSCertFile, authCfg.Gateway.TLSKeyFile = pki.ServerCert, pki.ServerKey
	authCfg.Gateway.TLSClientCAFile = pki.CAFile
	authCfg.Gateway.TLSClientNames = []string{"client"} // the gateway's certificate
	if err := authCfg.Validate(); err != nil {
		t.Fatal(err)
	}
	authMain, stopAuth := startMain(t, authCfg)
	defer stopAuth()

	gwCfg := testConfig(t)
	gwCfg.DataDir, gwCfg.Roles = authCfg.DataDir, []string{"gateway"}
	gwCfg.Gateway.AuthURL = authMain.URL()
	gwCfg.Gateway.AuthTLS = certs.Client{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
	gwCfg.NATSURL = eventstest.StartServer(t).URL()
	gwCfg.RedisURL, gwCfg.RedisPrefix = redistest.URL(t), redistest.Prefix(t)
	gwCfg.Security.RequireTLS = true
	if err := gwCfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gwMain, stopGW := startMain(t, gwCfg)
	defer stopGW()

	b, _ := json.Marshal(map[string]string{"username": "mutual", "password": "mutual-password"})
	res, err := http.Post(gwMain.URL()+"/v1/auth/register", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tokens)
	res.Body.Close()
	if res.StatusCode != 201 || tokens.AccessToken == "" {
		t.Fatalf("register through the gateway: %d", res.StatusCode)
	}
	for _, path := range []string{"/v1/account", "/v1/leaderboards"} { // proxied; checked by the gateway on the JWKS
		req, _ := http.NewRequest("GET", gwMain.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+tokens.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("GET %s through the gateway: %d", path, res.StatusCode)
		}
	}
	if res, err := http.Get(gwMain.URL() + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Errorf("gateway readyz (checks the auth role over mutual TLS): %v %v", err, res)
	} else {
		res.Body.Close()
	}

	// Straight to the auth role's listener.
	call := func(c certs.Client) error {
		t.Helper()
		tc, err := c.Config("")
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		defer hc.CloseIdleConnections()
		res, err := hc.Get(authMain.URL() + "/healthz")
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil
	}
	if err := call(certs.Client{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}); err != nil {
		t.Errorf("a certificate of the deployment's CA: %v", err)
	}
	for name, c := range map[string]certs.Client{
		"no client certificate":                                          {CAFile: pki.CAFile},
		"a client certificate of another CA":                             {CAFile: pki.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey},
		"an expired client certificate":                                  {CAFile: pki.CAFile, CertFile: expiredCert, KeyFile: expiredKey},
		"the CA's certificate of another role (not in tls_client_names)": {CAFile: pki.CAFile, CertFile: gameCert, KeyFile: gameKey},
	} {
		if err := call(c); err == nil {
			t.Errorf("%s: the auth role answered", name)
		}
	}

	// Gateways the pair does not trust do not start: the JWKS fetch fails.
	for name, c := range map[string]certs.Client{
		"a gateway without a client certificate":      {CAFile: pki.CAFile},
		"a gateway with a certificate of another CA":  {CAFile: pki.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey},
		"a gateway that does not trust the auth role": {CAFile: other.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey},
	} {
		cfg := gwCfg
		cfg.Gateway.AuthTLS = c
		m := &app.Main{Config: cfg}
		err := m.Open(context.Background())
		m.Close()
		if err == nil {
			t.Errorf("%s: started", name)
		}
	}
}

// A gateway without the auth role and security.require_tls refuses a
// plaintext gateway.auth_url to another machine, naming the setting;
// gateway.auth_tls asks for an https:// auth_url.
func TestAuthURLRequiresTLS(t *testing.T) {
	cfg := testConfig(t)
	cfg.Roles = []string{"gateway"}
	cfg.NATSURL, cfg.RedisURL = "nats://127.0.0.1:4222", "redis://127.0.0.1:6379/0"
	cfg.Gateway.AuthURL = "http://auth.internal:7350"
	cfg.Security.RequireTLS = true
	m := &app.Main{Config: cfg}
	err := m.Open(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "gateway.auth_url") || !strings.Contains(err.Error(), "security.require_tls") {
		t.Errorf("Open = %v, want a refusal naming gateway.auth_url and security.require_tls", err)
	}
	cfg.Gateway.AuthTLS.CAFile = "/ca.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "gateway.auth_tls") {
		t.Errorf("auth_tls with an http:// auth_url: %v", err)
	}
	cfg.Gateway.AuthTLS = certs.Client{}
	cfg.Gateway.TLSClientCAFile = "/ca.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "gateway.tls_client_ca_file") {
		t.Errorf("tls_client_ca_file without a certificate: %v", err)
	}
}

// events.listen_tls: the embedded NATS listener takes mutual TLS only; a
// client with the operator's password and a certificate of the CA gets
// in, a plaintext one does not. (internal/events tests the refusals one
// by one.)
func TestEmbeddedNATSListenerTLS(t *testing.T) {
	pki := tlstest.NewPKI(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := testConfig(t)
	cfg.Events.Listen = addr
	cfg.Events.ListenTLS = certs.Server{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, stop := startMain(t, cfg)
	defer stop()
	op, ok, err := app.EmbeddedBusAuth(context.Background(), cfg, events.RoleOperator)
	if err != nil || !ok {
		t.Fatalf("operator credentials: %v %v", ok, err)
	}
	tc, err := certs.Client{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}.Config("")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("tls://"+addr, nats.UserInfo(op.User, op.Password), nats.Secure(tc))
	if err != nil {
		t.Fatalf("mutual TLS with the operator's password: %v", err)
	}
	nc.Close()
	if nc, err := nats.Connect("nats://"+addr, nats.UserInfo(op.User, op.Password), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("plaintext: connected")
	}
	bad := testConfig(t)
	bad.Events.ListenTLS = cfg.Events.ListenTLS
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "events.listen_tls") {
		t.Errorf("listen_tls without events.listen: %v", err)
	}
}
