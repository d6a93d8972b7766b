// Package redistest gives tests a Redis: the machine's own (shared, so each
// test works under a key prefix of its own), or a redis-server the test
// starts, stops and restarts itself for fault tests.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is this machine's Redis. MULTIJUEGO_TEST_REDIS_URL overrides it.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the shared test Redis. Without it the test is skipped, or fails
// when CI=true: CI must never pass by skipping.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("MULTIJUEGO_TEST_REDIS_URL")
	if u == "" {
		u = DefaultURL
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("MULTIJUEGO_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is required in CI but does not answer at %s: %v", u, err)
		}
		t.Skipf("Redis not available at %s (set CI=true to make this fatal): %v", u, err)
	}
	return u
}

// Prefix returns a random key prefix, so tests sharing one Redis never see
// each other's keys.
func Prefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test:" + hex.EncodeToString(b[:]) + ":"
}

// Server is a redis-server owned by one test.
type Server struct {
	t     testing.TB
	Port  int
	dir   string
	extra []string
	cmd   *exec.Cmd
}

// Start runs a private redis-server on a free loopback port (no
// persistence). It is stopped when the test ends. Without the redis-server
// binary the test is skipped, or fails when CI=true.
// Extra arguments go to redis-server.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required in CI: %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, Port: port, dir: t.TempDir(), extra: extra}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Addr is HOST:PORT.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port and waits until it
// answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir}, s.extra...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %d did not answer: %v", s.Port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cluster is a Redis Cluster of private redis-server processes owned by one
// test.
type Cluster struct {
	Nodes []*Server
}

// StartCluster runs n (at least 3) cluster-enabled redis-servers on free
// loopback ports, joins them with `redis-cli --cluster create` (no
// replicas), and waits until the cluster reports ok. It is stopped when the
// test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-cli is required in CI: %v", err)
		}
		t.Skipf("redis-cli not installed: %v", err)
	}
	c := &Cluster{}
	var addrs []string
	for i := 0; i < n; i++ {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Each node judges the cluster's state by its own view, which the
	// others' gossip completes over a moment: wait until every node says
	// ok (one saying it while another still answers CLUSTERDOWN failed
	// the cache's conformance run once).
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range addrs {
		nc := redis.NewClient(&redis.Options{Addr: addr})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := nc.ClusterInfo(ctx).Result()
			cancel()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				nc.Close()
				t.Fatalf("cluster node %s not ok after 20s: %v %s", addr, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		nc.Close()
	}
	return c
}

// URL is a redis-cluster:// URL naming every node.
func (c *Cluster) URL() string {
	var addrs []string
	for _, s := range c.Nodes {
		addrs = append(addrs, s.Addr())
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}
