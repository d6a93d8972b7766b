// Package eventstest gives tests a NATS with JetStream: the machine's own
// (shared, so each test names its streams and subjects with a prefix of its
// own), or a nats-server the test runs in-process, stops and restarts for
// fault tests, or a cluster of them (StartCluster) whose nodes it kills
// and restarts.
package eventstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultURL is this machine's NATS. MULTIJUEGO_TEST_NATS_URL overrides it.
const DefaultURL = "nats://127.0.0.1:4222"

func sharedURL() string {
	if u := os.Getenv("MULTIJUEGO_TEST_NATS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// URL returns the shared test NATS after checking that it answers with
// JetStream. Without it the test is skipped, or fails when CI=true: CI must
// never pass by skipping.
func URL(t testing.TB) string {
	t.Helper()
	u := sharedURL()
	err := func() error {
		nc, err := nats.Connect(u, nats.Timeout(3*time.Second), nats.MaxReconnects(0))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err
	}()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATS with JetStream is required in CI but does not answer at %s: %v", u, err)
		}
		t.Skipf("NATS with JetStream not available at %s (set CI=true to make this fatal): %v", u, err)
	}
	return u
}

// Prefix returns a random prefix for events.Config.Prefix, so tests
// sharing one NATS never see each other's streams. When the test ends,
// every stream on the shared NATS whose name starts with the prefix is
// deleted.
func Prefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "t" + hex.EncodeToString(b[:])
	t.Cleanup(func() { deleteStreams(t, sharedURL(), p+"_") })
	return p
}

func deleteStreams(t testing.TB, url, prefix string) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err != nil {
		return // not reachable: the test did not use it
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var mine []string
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix) {
			mine = append(mine, n)
		}
	}
	for _, n := range mine {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Logf("delete stream %s: %v", n, err)
		}
	}
}

// Server is a nats-server with JetStream run in-process by one test,
// listening on a loopback port, with file storage in a directory of its
// own. Both stay the same across Restart.
type Server struct {
	t    testing.TB
	Port int
	Dir  string
	ns   *server.Server
	opts []func(*server.Options)
}

// StartServer runs a private nats-server on a free loopback port. It is
// shut down when the test ends. opts change its options (TLS, users).
func StartServer(t testing.TB, opts ...func(*server.Options)) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, Port: port, Dir: t.TempDir(), opts: opts}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's nats:// URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// Stop shuts the server down (its clients see the connection close) and
// waits for it.
func (s *Server) Stop() {
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.ns = nil
}

// Restart starts the server again on the same port and store directory
// and waits until it accepts clients.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o := &server.Options{
			Host: "127.0.0.1", Port: s.Port, JetStream: true, StoreDir: s.Dir,
			NoSigs: true, NoLog: true,
		}
		for _, f := range s.opts {
			f(o)
		}
		ns, err := server.NewServer(o)
		if err != nil {
			s.t.Fatalf("nats-server: %v", err)
		}
		ns.Start()
		if ns.ReadyForConnections(5 * time.Second) {
			s.ns = ns
			return
		}
		ns.Shutdown()
		ns.WaitForShutdown()
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server on %d not ready", s.Port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
