package events

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/multijuego/multijuego/internal/events/eventstest"
	"github.com/multijuego/multijuego/internal/repotest"
)

// freePort borrows a free loopback port from a throwaway server.
func freePort(t *testing.T) string {
	srv := eventstest.StartServer(t)
	port := srv.Port
	srv.Stop()
	return itoa(port)
}

// probe is a raw NATS client that records the permission refusals the
// server sends it.
type probe struct {
	t    *testing.T
	nc   *nats.Conn
	errs chan error
}

func dialProbe(t *testing.T, url string, opts ...nats.Option) (*probe, error) {
	p := &probe{t: t, errs: make(chan error, 64)}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case p.errs <- err:
		default:
		}
	}), nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	p.nc = nc
	t.Cleanup(nc.Close)
	return p, nil
}

// refused reports whether the server refused what do did with a
// permissions violation.
func (p *probe) refused(do func() error) bool {
	p.t.Helper()
	for len(p.errs) > 0 {
		<-p.errs
	}
	if err := do(); err != nil {
		return errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation")
	}
	if err := p.nc.Flush(); err != nil {
		p.t.Fatalf("flush: %v", err)
	}
	select {
	case err := <-p.errs:
		return errors.Is(err, nats.ErrPermissionViolation)
	case <-time.After(300 * time.Millisecond):
		return false
	}
}

func (p *probe) pub(subject string) bool {
	return p.refused(func() error { return p.nc.Publish(subject, []byte(`{}`)) })
}

func (p *probe) sub(subject string) bool {
	return p.refused(func() error {
		s, err := p.nc.SubscribeSync(subject)
		if err == nil {
			p.t.Cleanup(func() { _ = s.Unsubscribe() })
		}
		return err
	})
}

// The embedded server's listener: anonymous connections and wrong
// passwords are refused; each role's user reaches what its role needs and
// nothing else (events are read only by persistence, the JetStream API
// beyond the two streams' setup only by operators).
func TestEmbeddedPermissions(t *testing.T) {
	dir := t.TempDir()
	addr := "127.0.0.1:" + freePort(t)
	openEmbedded(t, Config{DataDir: dir, Listen: addr})
	url := "nats://" + addr

	fi, err := os.Stat(filepath.Join(dir, EmbeddedUsersFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v, %v; want mode 0600", fi, err)
	}
	if _, err := dialProbe(t, url); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("anonymous connection: %v, want an authorization violation", err)
	}
	if _, err := dialProbe(t, url, nats.UserInfo(RoleOperator, "guess")); err == nil {
		t.Fatal("wrong password: connected")
	}
	if _, err := dialProbe(t, url, nats.UserInfo(nodeUser, "x")); err == nil {
		t.Fatal("the in-process user connected over the network")
	}
	as := func(role string) *probe {
		a, ok, err := EmbeddedAuth(context.Background(), dir, role, nil)
		if err != nil || !ok {
			t.Fatalf("EmbeddedAuth(%s): %v %v", role, ok, err)
		}
		p, err := dialProbe(t, url, nats.UserInfo(a.User, a.Password))
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		return p
	}
	for _, tc := range []struct {
		role             string
		pubOK, pubNo     []string
		subOK, subNo     []string
		requestJSAPIInfo bool
	}{
		{role: RoleGame,
			pubOK: []string{"mj.events.match.ended", "mj.rt.m.x.in", "$JS.API.STREAM.INFO.MJ_EVENTS"},
			pubNo: []string{"mj.dlq.match.ended", "$JS.API.INFO", "$JS.API.CONSUMER.CREATE.MJ_EVENTS.x", "$JS.API.STREAM.DELETE.MJ_EVENTS",
				"$JS.API.STREAM.MSG.GET.MJ_DLQ", "$JS.API.STREAM.PURGE.MJ_EVENTS", "$JS.ACK.MJ_EVENTS.persistence.1.1.1.1.1.1"},
			subOK: []string{"mj.rt.g.x.out"},
			subNo: []string{"mj.events.>", "mj.dlq.>", ">", "$JS.API.>"}},
		{role: RolePersistence,
			pubOK: []string{"mj.dlq.match.ended", "$JS.API.CONSUMER.CREATE.MJ_EVENTS.persistence.mj.events.>", "$JS.ACK.MJ_EVENTS.persistence.1.1.1.1.1.1"},
			pubNo: []string{"mj.events.match.ended", "mj.rt.m.x.in", "$JS.API.INFO", "$JS.API.STREAM.DELETE.MJ_EVENTS", "$JS.API.STREAM.PURGE.MJ_DLQ"},
			subNo: []string{"mj.events.>", "mj.rt.>"}},
		{role: RoleGateway,
			pubOK: []string{"mj.rt.m.x.in", "$JS.API.STREAM.MSG.GET.MJ_DLQ", "$JS.API.STREAM.PURGE.MJ_DLQ"},
			pubNo: []string{"mj.dlq.match.ended", "$JS.API.INFO", "$JS.API.STREAM.PURGE.MJ_EVENTS", "$JS.API.CONSUMER.CREATE.MJ_EVENTS.x"},
			subNo: []string{"mj.events.>"}},
		{role: RoleOperator,
			pubOK: []string{"$JS.API.INFO", "$JS.API.STREAM.MSG.GET.MJ_DLQ", "mj.events.match.ended"},
			pubNo: []string{"mj.rt.m.x.in"},
			subNo: []string{"mj.events.>", "mj.rt.>"}},
	} {
		p := as(tc.role)
		for _, s := range tc.pubOK {
			if p.pub(s) {
				t.Errorf("%s: publish to %s refused", tc.role, s)
			}
		}
		for _, s := range tc.pubNo {
			if !p.pub(s) {
				t.Errorf("%s: publish to %s allowed", tc.role, s)
			}
		}
		for _, s := range tc.subOK {
			if p.sub(s) {
				t.Errorf("%s: subscribe to %s refused", tc.role, s)
			}
		}
		for _, s := range tc.subNo {
			if !p.sub(s) {
				t.Errorf("%s: subscribe to %s allowed", tc.role, s)
			}
		}
	}

	// The operator's credentials work through Open (the dlq commands).
	a, _, _ := EmbeddedAuth(context.Background(), dir, RoleOperator, nil)
	op, err := Open(context.Background(), Config{URL: url, Auth: a, Roles: []string{RoleOperator}}, testLog(t))
	if err != nil {
		t.Fatalf("operator Open: %v", err)
	}
	op.Close()
}

// The users file is made once and kept across restarts.
func TestEmbeddedUsersStable(t *testing.T) {
	dir := t.TempDir()
	b := openEmbedded(t, Config{DataDir: dir})
	a1, _, _ := EmbeddedAuth(context.Background(), dir, RoleOperator, nil)
	b.Close()
	openEmbedded(t, Config{DataDir: dir})
	a2, _, _ := EmbeddedAuth(context.Background(), dir, RoleOperator, nil)
	if a1.Password == "" || a1 != a2 {
		t.Fatalf("operator credentials changed across a restart: %+v then %+v", a1, a2)
	}
}

// The embedded listener does not open beyond loopback without TLS, and
// says which settings to change.
func TestEmbeddedListenNonLoopbackRefused(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:4222", "[::]:0"} {
		_, err := Open(context.Background(), Config{DataDir: t.TempDir(), Listen: addr}, testLog(t))
		if err == nil || !strings.Contains(err.Error(), "events.listen") || !strings.Contains(err.Error(), "TLS") ||
			!strings.Contains(err.Error(), "nats_url") {
			t.Errorf("listen %s: %v; want a refusal naming events.listen, TLS and nats_url", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if err := checkListenAddr(addr); err != nil {
			t.Errorf("listen %s: %v", addr, err)
		}
	}
}

func checkListenAddr(addr string) error {
	_, err := checkListen(Config{Listen: addr})
	return err
}

// Credentials are for an external NATS, one kind at a time.
func TestAuthConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{DataDir: "x", Auth: Auth{User: "u", Password: "p"}}, "external NATS"},
		{Config{URL: "nats://x:1", Auth: Auth{User: "u"}}, "password"},
		{Config{URL: "nats://x:1", Auth: Auth{PasswordFile: "f"}}, "user"},
		{Config{URL: "nats://x:1", Auth: Auth{CredsFile: "c", User: "u", PasswordFile: "f"}}, "one of"},
		{Config{URL: "nats://x:1", Roles: []string{"player"}}, "unknown role"},
	} {
		if err := tc.cfg.defaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.cfg.Auth, err, tc.want)
		}
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Auth{User: "u", PasswordFile: pw}).options(); err != nil {
		t.Fatal(err)
	}
	if _, err := (Auth{User: "u", PasswordFile: filepath.Join(t.TempDir(), "none")}).options(); err == nil {
		t.Fatal("missing password file: no error")
	}
}

// docs/operations.md shows the nats-server configuration this package
// makes: the two must not drift apart.
func TestOperationsDocShowsServerAuthorization(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repotest.Root(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := ServerAuthorization("", "", func(r string) string { return "$MJ_NATS_" + strings.ToUpper(r) + "_PASSWORD" })
	if !strings.Contains(string(doc), want) {
		t.Fatalf("docs/operations.md does not show this configuration:\n%s", want)
	}
}
