package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/auth"
	"github.com/multijuego/multijuego/internal/gateway"
	"github.com/multijuego/multijuego/internal/logtest"
	"github.com/multijuego/multijuego/internal/store/storetest"
	"github.com/multijuego/multijuego/internal/tlstest"
	"github.com/multijuego/multijuego/match"
)

// tlsEnv is a gateway configured with a certificate (gateway.tls_cert_file,
// tls_key_file) and served by its own Serve, which then serves HTTPS; env
// holds a plain listener on the same gateway for the HTTP API helpers.
type tlsEnv struct {
	*env
	gw                *gateway.Server
	addr              string // host:port of the HTTPS listener
	roots             *x509.CertPool
	logs              *logtest.Buffer
	certFile, keyFile string
}

func newTLSEnv(t *testing.T) *tlsEnv {
	t.Helper()
	certFile, keyFile, roots := tlstest.Files(t, t.TempDir())
	st := storetest.SQLite(t)
	acfg := auth.DefaultConfig()
	acfg.Argon2MemoryKiB, acfg.Argon2Iterations = 64, 1
	svc, err := auth.New(context.Background(), acfg, auth.KeysDir{Path: t.TempDir()}, auth.Deps{Store: st, KV: newKV(t)})
	if err != nil {
		t.Fatal(err)
	}
	relay := &lateSender{}
	engine, err := match.NewEngine(match.Config{Sender: relay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Shutdown(context.Background()) })
	if err := engine.Register(tictactoe.Mode, tictactoe.New); err != nil {
		t.Fatal(err)
	}
	gcfg := gateway.DefaultConfig()
	gcfg.TLSCertFile, gcfg.TLSKeyFile = certFile, keyFile
	logs := &logtest.Buffer{}
	gw, err := gateway.New(gcfg, gateway.Deps{
		Auth: svc, Matches: engine, Tickets: newKV(t), Records: st, Registry: prometheus.NewRegistry(),
		Version: "test", NodeID: "test-node", Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	relay.set(gw.Realtime())
	plain := httptest.NewServer(gw.Handler())
	t.Cleanup(plain.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = gw.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	return &tlsEnv{env: &env{t: t, srv: plain, auth: svc, st: st}, gw: gw, addr: ln.Addr().String(), roots: roots, logs: logs,
		certFile: certFile, keyFile: keyFile}
}

// connectTLS logs a new account in and opens its socket over wss://.
func (e *tlsEnv) connectTLS(name string) *sock {
	e.t.Helper()
	tr := e.register(name)
	d := ws.Dialer{Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: e.roots}}
	nc, br, _, err := d.Dial(context.Background(), "wss://"+e.addr+"/v1/realtime?ticket="+e.ticket(tr.AccessToken))
	if err != nil {
		e.t.Fatalf("wss dial: %v", err)
	}
	e.t.Cleanup(func() { nc.Close() })
	if _, ok := nc.(*tls.Conn); !ok {
		e.t.Fatalf("dialed a %T, want a *tls.Conn", nc)
	}
	s := &sock{t: e.t, nc: nc, br: br}
	if env := s.expect("session.started"); env.Payload["account_id"] != tr.AccountID {
		e.t.Fatalf("session.started = %+v", env)
	}
	return s
}

// Over wss:// on the gateway's own certificate: authentication, an echo,
// a match join and binary inputs answered by match states.
func TestRealtimeTLS(t *testing.T) {
	e := newTLSEnv(t)
	a := e.connectTLS("alice")
	b := e.connectTLS("bruno")

	a.sendJSON("echo", "e1", map[string]any{"n": 7})
	if got := a.expect("echo"); got.CID != "e1" || got.Payload["n"] != float64(7) {
		t.Fatalf("echo = %+v", got)
	}

	a.sendJSON("match.create", "c1", map[string]any{"mode": "tictactoe"})
	id, _ := a.expect("match.created").Payload["match_id"].(string)
	a.sendJSON("match.join", "j1", map[string]any{"match_id": id})
	a.expect("match.joined")
	b.sendJSON("match.join", "j2", map[string]any{"match_id": id})
	b.expect("match.joined")
	a.stateUntil(func(s tictactoe.State) bool { return s.Status == tictactoe.StatusPlaying })
	a.move(4) // X, the first to join, takes the centre
	if st := b.stateUntil(func(s tictactoe.State) bool { return s.Moves == 1 }); st.Board[4] != 'X' {
		t.Fatalf("after X's move: %+v", st)
	}
	b.move(0)
	if st := a.stateUntil(func(s tictactoe.State) bool { return s.Moves == 2 }); st.Board[0] != 'O' {
		t.Fatalf("after O's move: %+v", st)
	}
	if strings.Contains(e.logs.String(), "connection refused") {
		t.Fatalf("a wss connection was refused: %s", e.logs)
	}
	// TLS 1.3 sockets leave crypto/tls for the epoll backend's record
	// layer (the portable backend has no epoll to move them to).
	if strings.Contains(e.logs.String(), "using the stream backend") {
		t.Fatalf("a TLS 1.3 socket stayed on the stream backend: %s", e.logs)
	}
}

// A connection the transport cannot take after authentication (here a
// ResponseWriter that cannot be hijacked, as under HTTP/2) is refused with
// a status and a logged reason, not dropped after a 101.
func TestRealtimeUnadoptableRefusedAndLogged(t *testing.T) {
	e := newTLSEnv(t)
	tr := e.register("carla")
	req := httptest.NewRequest("GET", "/v1/realtime?ticket="+e.ticket(tr.AccessToken), nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	w := httptest.NewRecorder() // not an http.Hijacker
	e.gw.Handler().ServeHTTP(w, req)
	if w.Code == http.StatusSwitchingProtocols || w.Code < 400 {
		t.Fatalf("status %d, want a refusal", w.Code)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "connection refused") || !strings.Contains(logs, "hijack") {
		t.Fatalf("no refusal with its reason in the log: %q", logs)
	}
}
