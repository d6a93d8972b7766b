package eventstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterReady bounds the wait for a cluster (or a restarted node) to have
// a JetStream meta leader that sees every running node.
const clusterReady = 30 * time.Second

// Cluster is a nats-server cluster with JetStream, run in-process by one
// test: every node listens for clients and routes on loopback ports of its
// own and keeps its file storage in a directory of its own, both the same
// across Restart.
type Cluster struct {
	t     testing.TB
	nodes []*clusterNode
}

type clusterNode struct {
	name            string
	port, routePort int
	dir             string
	ns              *server.Server // nil while stopped
}

// StartCluster runs an n-node cluster on free loopback ports and returns
// once JetStream has a meta leader that sees all n nodes. Every node is
// shut down when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("StartCluster: %d nodes", n)
	}
	ports := freePorts(t, 2*n)
	c := &Cluster{t: t}
	for i := range n {
		c.nodes = append(c.nodes, &clusterNode{name: fmt.Sprintf("n%d", i+1),
			port: ports[2*i], routePort: ports[2*i+1], dir: t.TempDir()})
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Kill(i)
		}
	})
	for i := range c.nodes {
		c.start(i)
	}
	c.waitReady()
	return c
}

// freePorts returns n distinct free loopback ports (held open together
// so that none repeats).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// URLs is the comma-separated list of every node's nats:// URL, for
// events.Config.URL.
func (c *Cluster) URLs() string {
	var u []string
	for i := range c.nodes {
		u = append(u, c.URL(i))
	}
	return strings.Join(u, ",")
}

// URL is node i's nats:// URL.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[i].port) }

// Name is node i's server name, as JetStream reports it (a stream's
// Cluster.Leader, a replica's Name).
func (c *Cluster) Name(i int) string { return c.nodes[i].name }

// Index is the node whose server name is name, or -1.
func (c *Cluster) Index(name string) int {
	for i, n := range c.nodes {
		if n.name == name {
			return i
		}
	}
	return -1
}

// Kill shuts node i down (its clients see the connection close) and waits
// for it. It does nothing if the node is stopped.
func (c *Cluster) Kill(i int) {
	n := c.nodes[i]
	if n.ns == nil {
		return
	}
	n.ns.Shutdown()
	n.ns.WaitForShutdown()
	n.ns = nil
}

// Restart starts node i again (killing it first if it runs) on the same
// ports and store directory, and returns once JetStream's meta leader sees
// every running node and they are all current.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Kill(i)
	c.start(i)
	c.waitReady()
}

func (c *Cluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	var routes []*url.URL
	for j, o := range c.nodes {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", o.routePort)})
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		opts := &server.Options{
			ServerName:         n.name,
			Host:               "127.0.0.1",
			Port:               n.port,
			Cluster:            server.ClusterOpts{Name: "mj-test", Host: "127.0.0.1", Port: n.routePort},
			Routes:             routes,
			JetStream:          true,
			StoreDir:           n.dir,
			JetStreamMaxMemory: 64 << 20,
			JetStreamMaxStore:  256 << 20,
			NoSigs:             true,
			NoLog:              true,
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			c.t.Fatalf("nats-server %s: %v", n.name, err)
		}
		ns.Start()
		if ns.ReadyForConnections(5 * time.Second) {
			n.ns = ns
			return
		}
		// A port of the previous run may still be held for a moment.
		ns.Shutdown()
		ns.WaitForShutdown()
		if time.Now().After(deadline) {
			c.t.Fatalf("nats-server %s on %d not ready", n.name, n.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until a running node is the JetStream meta leader, it
// sees every running node, and every running node is current.
func (c *Cluster) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(clusterReady)
	for !c.ready() {
		if time.Now().After(deadline) {
			c.t.Fatalf("nats cluster: no JetStream meta leader seeing every running node after %v", clusterReady)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) ready() bool {
	running, leader := 0, (*server.Server)(nil)
	for _, n := range c.nodes {
		if n.ns == nil {
			continue
		}
		running++
		if !n.ns.JetStreamIsCurrent() {
			return false
		}
		if n.ns.JetStreamIsLeader() {
			leader = n.ns
		}
	}
	return leader != nil && len(leader.JetStreamClusterPeers()) == running
}
