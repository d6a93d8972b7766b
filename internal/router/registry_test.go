package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multijuego/multijuego/internal/kv"
	"github.com/multijuego/multijuego/internal/kv/kvtest"
	"github.com/multijuego/multijuego/internal/redistest"
	"github.com/multijuego/multijuego/match/matchtest"
)

// regStore is one empty store for one contract subtest. advance moves its
// clock; nil when the backend keeps real time (expiry is then waited for).
type regStore struct {
	kv      kv.Store
	advance func(time.Duration)
}

// regBackend is a kv.Store backend the contract runs on: start prepares it
// once (it may skip, or fail under CI=true, as the repository's helpers
// do) and returns open, which gives each subtest an empty store.
type regBackend struct {
	name  string
	start func(t *testing.T) func(t *testing.T) regStore
}

var regBackends = []regBackend{
	{"Memory", func(*testing.T) func(*testing.T) regStore {
		return func(t *testing.T) regStore {
			clk := matchtest.NewClock(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
			s := kv.NewMemory(kv.MemoryOptions{Now: clk.Now})
			t.Cleanup(func() { _ = s.Close() })
			return regStore{kv: s, advance: clk.Advance}
		}
	}},
	{"Redis", func(t *testing.T) func(*testing.T) regStore {
		opt, err := redis.ParseURL(redistest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		t.Cleanup(func() { _ = c.Close() })
		return func(t *testing.T) regStore {
			prefix := redistest.Prefix(t)
			s, err := kv.NewRedis(kv.RedisOptions{Client: c, Prefix: prefix, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatalf("NewRedis: %v", err)
			}
			t.Cleanup(func() {
				ctx := context.Background()
				iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
				for iter.Next(ctx) {
					if err := c.Del(ctx, iter.Val()).Err(); err != nil {
						t.Errorf("deleting the test's keys: %v", err)
						return
					}
				}
				if err := iter.Err(); err != nil {
					t.Errorf("deleting the test's keys: %v", err)
				}
			})
			return regStore{kv: s}
		}
	}},
	{"DynamoDB", func(t *testing.T) func(*testing.T) regStore {
		endpoint := kvtest.Dynalite(t)
		return func(t *testing.T) regStore {
			var b [6]byte
			_, _ = rand.Read(b[:])
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := kv.NewDynamo(ctx, kv.DynamoOptions{Endpoint: endpoint, Table: "router-" + hex.EncodeToString(b[:]),
				Timeout: 10 * time.Second, CreateTable: true})
			if err != nil {
				t.Fatalf("NewDynamo: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return regStore{kv: s}
		}
	}},
}

// regIndex is the node index as stored, sorted (nil when absent).
func regIndex(t *testing.T, s kv.Store) []string {
	t.Helper()
	it, err := s.Get(context.Background(), indexKey)
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("Get %s: %v", indexKey, err)
	}
	var ids []string
	if err := json.Unmarshal(it.Value, &ids); err != nil {
		t.Fatalf("index %q: %v", it.Value, err)
	}
	slices.Sort(ids)
	return ids
}

func regIDs(recs []NodeRecord) []string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids
}

func regNodes(t *testing.T, g registry) []NodeRecord {
	t.Helper()
	recs, err := g.nodes(context.Background())
	if err != nil {
		t.Fatalf("nodes: got error %v, want nil", err)
	}
	return recs
}

func regRecord(id string, matches int) NodeRecord {
	return NodeRecord{ID: id, Region: "eu", Zone: "eu-1a", Modes: []string{"arena", "tictactoe"},
		MaxMatches: 10, MaxPlayers: 100, Matches: matches, Players: 3 * matches, TickMax: 1.25, CPU: 0.5,
		Renewed: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)}
}

func regSameRecords(t *testing.T, what string, got, want []NodeRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got nodes %v, want %v", what, regIDs(got), regIDs(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Renewed.Equal(w.Renewed) {
			t.Fatalf("%s: node %s: got Renewed %v, want %v", what, g.ID, g.Renewed, w.Renewed)
		}
		g.Renewed, w.Renewed = time.Time{}, time.Time{}
		if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
			t.Fatalf("%s: node %d: got %+v, want %+v", what, i, g, w)
		}
	}
}

// TestRegistryContract runs the node directory on every kv.Store backend
// the repository can start in tests.
func TestRegistryContract(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fn   func(*testing.T, regStore)
	}{
		{"Empty", testRegistryEmpty},
		{"RegisterDeregister", testRegistryRegisterDeregister},
		{"Expiry", testRegistryExpiry},
		{"DeadAndForget", testRegistryDeadAndForget},
		{"ConcurrentRegister", testRegistryConcurrent},
		{"CorruptIndex", testRegistryCorrupt},
	}
	for _, b := range regBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.start(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, open(t))
				})
			}
		})
	}
}

func testRegistryEmpty(t *testing.T, s regStore) {
	g := registry{kv: s.kv, ttl: time.Minute}
	if got := regNodes(t, g); len(got) != 0 {
		t.Fatalf("nodes of an empty directory: got %v, want none", regIDs(got))
	}
	if dead, err := g.dead(context.Background()); err != nil || len(dead) != 0 {
		t.Fatalf("dead of an empty directory: got %v, %v; want none, nil", dead, err)
	}
	if err := g.deregister(context.Background(), "nobody"); err != nil {
		t.Fatalf("deregister of an unknown node: got %v, want nil", err)
	}
	if got := regIndex(t, s.kv); len(got) != 0 {
		t.Fatalf("index after deregistering an unknown node: got %v, want none", got)
	}
}

func testRegistryRegisterDeregister(t *testing.T, s regStore) {
	ctx := context.Background()
	g := registry{kv: s.kv, ttl: time.Minute}
	b, a := regRecord("node-b", 2), regRecord("node-a", 1)
	a.Draining, a.Region, a.Zone = true, "", ""
	for _, rec := range []NodeRecord{b, a} {
		if err := g.register(ctx, rec); err != nil {
			t.Fatalf("register %s: got %v, want nil", rec.ID, err)
		}
	}
	regSameRecords(t, "after two registers", regNodes(t, g), []NodeRecord{a, b})
	if got, want := regIndex(t, s.kv), []string{"node-a", "node-b"}; !slices.Equal(got, want) {
		t.Fatalf("index: got %v, want %v", got, want)
	}

	// A heartbeat rewrites the record and leaves the index alone.
	b.Matches, b.Players = 7, 21
	if err := g.register(ctx, b); err != nil {
		t.Fatalf("register again: got %v, want nil", err)
	}
	regSameRecords(t, "after a second heartbeat", regNodes(t, g), []NodeRecord{a, b})
	if got, want := regIndex(t, s.kv), []string{"node-a", "node-b"}; !slices.Equal(got, want) {
		t.Fatalf("index after a second heartbeat: got %v, want %v", got, want)
	}

	if err := g.deregister(ctx, "node-a"); err != nil {
		t.Fatalf("deregister node-a: got %v, want nil", err)
	}
	regSameRecords(t, "after deregister", regNodes(t, g), []NodeRecord{b})
	if got, want := regIndex(t, s.kv), []string{"node-b"}; !slices.Equal(got, want) {
		t.Fatalf("index after deregister: got %v, want %v", got, want)
	}
	if _, err := s.kv.Get(ctx, nodeKeyPrefix+"node-a"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("node-a's record after deregister: got %v, want kv.ErrNotFound", err)
	}
	if err := g.deregister(ctx, "node-a"); err != nil {
		t.Fatalf("deregister node-a twice: got %v, want nil", err)
	}
	if err := g.deregister(ctx, "node-b"); err != nil {
		t.Fatalf("deregister node-b: got %v, want nil", err)
	}
	if got := regNodes(t, g); len(got) != 0 {
		t.Fatalf("nodes after both left: got %v, want none", regIDs(got))
	}
	if got := regIndex(t, s.kv); len(got) != 0 {
		t.Fatalf("index after both left: got %v, want none", got)
	}
}

// testRegistryExpiry: a node whose lease lapses leaves nodes() and shows
// in dead(); it stays in the index until forget (a survivor has taken its
// matches over), which drops it.
func testRegistryExpiry(t *testing.T, s regStore) {
	ctx := context.Background()
	ttl := 3 * time.Second // three heartbeats on the memory store's own clock
	if s.advance == nil {
		ttl = 300 * time.Millisecond
	}
	short, long := registry{kv: s.kv, ttl: ttl}, registry{kv: s.kv, ttl: time.Hour}
	a, b := regRecord("node-a", 1), regRecord("node-b", 2)
	registered := time.Now()
	if err := short.register(ctx, a); err != nil {
		t.Fatalf("register node-a: got %v, want nil", err)
	}
	if err := long.register(ctx, b); err != nil {
		t.Fatalf("register node-b: got %v, want nil", err)
	}
	got := regNodes(t, long)
	if s.advance != nil || time.Since(registered) < ttl/2 { // on real time, only if surely not expired yet
		regSameRecords(t, "before expiry", got, []NodeRecord{a, b})
	}

	if s.advance != nil {
		s.advance(ttl + time.Second)
		got = regNodes(t, long)
	} else {
		deadline := time.Now().Add(10 * time.Second)
		for slices.Contains(regIDs(got), "node-a") {
			if time.Now().After(deadline) {
				t.Fatalf("node-a (ttl %v) still listed 10s after it registered: got %v", ttl, regIDs(got))
			}
			time.Sleep(20 * time.Millisecond)
			got = regNodes(t, long)
		}
	}
	regSameRecords(t, "after node-a's lease lapsed", got, []NodeRecord{b})
	if got, want := regIndex(t, s.kv), []string{"node-a", "node-b"}; !slices.Equal(got, want) {
		t.Fatalf("index after node-a's lease lapsed, before forget: got %v, want %v", got, want)
	}
	if dead, err := long.dead(ctx); err != nil || !slices.Equal(dead, []string{"node-a"}) {
		t.Fatalf("dead: got %v, %v; want [node-a], nil", dead, err)
	}
	if err := long.forget(ctx, "node-a"); err != nil {
		t.Fatalf("forget node-a: got %v, want nil", err)
	}
	if got, want := regIndex(t, s.kv), []string{"node-b"}; !slices.Equal(got, want) {
		t.Fatalf("index after forget: got %v, want %v", got, want)
	}
	if dead, err := long.dead(ctx); err != nil || len(dead) != 0 {
		t.Fatalf("dead after forget: got %v, %v; want none, nil", dead, err)
	}
	regSameRecords(t, "after forget", regNodes(t, long), []NodeRecord{b})

	// It comes back with its next heartbeat.
	if err := long.register(ctx, a); err != nil {
		t.Fatalf("register node-a again: got %v, want nil", err)
	}
	regSameRecords(t, "after node-a came back", regNodes(t, long), []NodeRecord{a, b})
	if got, want := regIndex(t, s.kv), []string{"node-a", "node-b"}; !slices.Equal(got, want) {
		t.Fatalf("index after node-a came back: got %v, want %v", got, want)
	}
}

// testRegistryDeadAndForget: index ids without a record are dead (in
// index order), left out of nodes(), and dropped from the index by forget
// only.
func testRegistryDeadAndForget(t *testing.T, s regStore) {
	ctx := context.Background()
	g := registry{kv: s.kv, ttl: time.Minute}
	a := regRecord("node-a", 0)
	if err := g.register(ctx, a); err != nil {
		t.Fatalf("register: got %v, want nil", err)
	}
	it, err := s.kv.Get(ctx, indexKey)
	if err != nil {
		t.Fatalf("Get index: %v", err)
	}
	if _, err := s.kv.CompareAndSet(ctx, indexKey, []byte(`["ghost-1","node-a","ghost-2"]`), 0, it.Version); err != nil {
		t.Fatalf("CompareAndSet index: %v", err)
	}
	regSameRecords(t, "nodes", regNodes(t, g), []NodeRecord{a})
	if got, want := regIndex(t, s.kv), []string{"ghost-1", "ghost-2", "node-a"}; !slices.Equal(got, want) {
		t.Fatalf("index after nodes(): got %v, want %v", got, want)
	}
	if dead, err := g.dead(ctx); err != nil || !slices.Equal(dead, []string{"ghost-1", "ghost-2"}) {
		t.Fatalf("dead: got %v, %v; want [ghost-1 ghost-2], nil", dead, err)
	}
	for _, id := range []string{"ghost-2", "ghost-2", "nobody"} { // twice, and unknown: no error
		if err := g.forget(ctx, id); err != nil {
			t.Fatalf("forget %s: got %v, want nil", id, err)
		}
	}
	if got, want := regIndex(t, s.kv), []string{"ghost-1", "node-a"}; !slices.Equal(got, want) {
		t.Fatalf("index after forget ghost-2: got %v, want %v", got, want)
	}
	if err := g.forget(ctx, "ghost-1"); err != nil {
		t.Fatalf("forget ghost-1: got %v, want nil", err)
	}
	if dead, err := g.dead(ctx); err != nil || len(dead) != 0 {
		t.Fatalf("dead after forget: got %v, %v; want none, nil", dead, err)
	}
	regSameRecords(t, "nodes after forget", regNodes(t, g), []NodeRecord{a})
}

// testRegistryConcurrent: eight nodes registering at once all end up in
// the index (the compare-and-set loop retries), and eight leaving at once
// all leave it.
func testRegistryConcurrent(t *testing.T, s regStore) {
	ctx := context.Background()
	const n = 8
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("node-%d", i))
	}
	all := func(op string, fn func(g registry, id string) error) {
		t.Helper()
		start := make(chan struct{})
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, id := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := registry{kv: s.kv, ttl: time.Hour}
				<-start
				errs[i] = fn(g, id)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s %s: got %v, want nil", op, want[i], err)
			}
		}
	}
	all("register", func(g registry, id string) error { return g.register(ctx, regRecord(id, 0)) })
	if got := regIndex(t, s.kv); !slices.Equal(got, want) {
		t.Fatalf("index after %d concurrent registers: got %v, want %v", n, got, want)
	}
	if got := regIDs(regNodes(t, registry{kv: s.kv, ttl: time.Hour})); !slices.Equal(got, want) {
		t.Fatalf("nodes after %d concurrent registers: got %v, want %v", n, got, want)
	}
	all("deregister", func(g registry, id string) error { return g.deregister(ctx, id) })
	if got := regIndex(t, s.kv); len(got) != 0 {
		t.Fatalf("index after %d concurrent deregisters: got %v, want none", n, got)
	}
}

func testRegistryCorrupt(t *testing.T, s regStore) {
	ctx := context.Background()
	g := registry{kv: s.kv, ttl: time.Minute}
	if _, err := s.kv.Put(ctx, indexKey, []byte(`{not json`), 0); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := g.nodes(ctx); err == nil {
		t.Fatal("nodes with a corrupt index: got nil error, want one")
	}
	if _, err := g.dead(ctx); err == nil {
		t.Fatal("dead with a corrupt index: got nil error, want one")
	}
	if err := g.register(ctx, regRecord("node-a", 0)); err == nil {
		t.Fatal("register with a corrupt index: got nil error, want one")
	}
	if _, err := s.kv.Put(ctx, indexKey, []byte(`["node-a"]`), 0); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := s.kv.Put(ctx, nodeKeyPrefix+"node-a", []byte(`[1,2]`), time.Minute); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := g.nodes(ctx); err == nil {
		t.Fatal("nodes with a corrupt record: got nil error, want one")
	}
}

// --- placement ------------------------------------------------------------------

func TestPlace(t *testing.T) {
	node := func(id, region string, matches, maxMatches, players, maxPlayers int, modes ...string) NodeRecord {
		if len(modes) == 0 {
			modes = []string{"arena"}
		}
		return NodeRecord{ID: id, Region: region, Modes: modes, Matches: matches, MaxMatches: maxMatches,
			Players: players, MaxPlayers: maxPlayers}
	}
	draining := func(n NodeRecord) NodeRecord { n.Draining = true; return n }
	tests := []struct {
		name         string
		nodes        []NodeRecord
		mode, region string
		extra        map[string]int
		want         []string
	}{
		{"no nodes", nil, "arena", "", nil, nil},
		{"any region", []NodeRecord{node("eu-1", "eu", 0, 4, 0, 0), node("us-1", "us", 0, 4, 0, 0)},
			"arena", "", nil, []string{"eu-1", "us-1"}},
		{"region filter", []NodeRecord{node("eu-1", "eu", 3, 4, 0, 0), node("us-1", "us", 0, 4, 0, 0), node("eu-2", "eu", 0, 4, 0, 0)},
			"arena", "eu", nil, []string{"eu-2", "eu-1"}},
		{"unknown region", []NodeRecord{node("eu-1", "eu", 0, 4, 0, 0)}, "arena", "ap", nil, nil},
		{"node without a region only for any region", []NodeRecord{node("x", "", 0, 4, 0, 0)}, "arena", "eu", nil, nil},
		{"draining skipped", []NodeRecord{draining(node("a", "eu", 0, 4, 0, 0)), node("b", "eu", 3, 4, 0, 0)},
			"arena", "", nil, []string{"b"}},
		{"full by max_matches skipped", []NodeRecord{node("a", "eu", 4, 4, 0, 0), node("b", "eu", 5, 4, 0, 0), node("c", "eu", 3, 4, 0, 0)},
			"arena", "", nil, []string{"c"}},
		{"full by max_players skipped", []NodeRecord{node("a", "eu", 0, 4, 10, 10), node("b", "eu", 1, 4, 9, 10), node("c", "eu", 0, 4, 11, 10)},
			"arena", "", nil, []string{"b"}},
		{"max_players 0 is no limit", []NodeRecord{node("a", "eu", 0, 4, 1000, 0)}, "arena", "", nil, []string{"a"}},
		{"max_matches 0 takes nothing", []NodeRecord{node("a", "eu", 0, 0, 0, 0)}, "arena", "", nil, nil},
		{"mode filter", []NodeRecord{node("a", "eu", 0, 4, 0, 0, "tictactoe"), node("b", "eu", 1, 4, 0, 0, "tictactoe", "arena"), node("c", "eu", 0, 4, 0, 0, "arena")},
			"tictactoe", "", nil, []string{"a", "b"}},
		{"unknown mode", []NodeRecord{node("a", "eu", 0, 4, 0, 0)}, "chess", "", nil, nil},
		{"least loaded first", []NodeRecord{node("half", "eu", 1, 2, 0, 0), node("tenth", "eu", 1, 10, 50, 0), node("idle", "eu", 0, 4, 0, 0), node("most", "eu", 3, 4, 0, 0)},
			"arena", "", nil, []string{"idle", "tenth", "half", "most"}},
		{"same load: fewer players first", []NodeRecord{node("p9", "eu", 1, 4, 9, 0), node("p2", "eu", 2, 8, 2, 0), node("p5", "eu", 1, 4, 5, 0)},
			"arena", "", nil, []string{"p2", "p5", "p9"}},
		{"same load and players: directory order", []NodeRecord{node("z", "eu", 1, 4, 3, 0), node("a", "eu", 1, 4, 3, 0), node("m", "eu", 1, 4, 3, 0)},
			"arena", "", nil, []string{"z", "a", "m"}},
		{"extra placements change the order", []NodeRecord{node("a", "eu", 0, 4, 0, 0), node("b", "eu", 1, 4, 0, 0), node("c", "eu", 2, 4, 0, 0)},
			"arena", "", map[string]int{"a": 3}, []string{"b", "c", "a"}},
		{"extra placements fill a node", []NodeRecord{node("a", "eu", 0, 4, 0, 0), node("b", "eu", 1, 4, 0, 0)},
			"arena", "", map[string]int{"a": 4, "b": 1}, []string{"b"}},
		{"extra for unknown nodes ignored", []NodeRecord{node("a", "eu", 1, 4, 0, 0), node("b", "eu", 2, 4, 0, 0)},
			"arena", "", map[string]int{"zzz": 9}, []string{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprintf("%+v", tc.nodes)
			got := place(tc.nodes, tc.mode, tc.region, tc.extra)
			if ids := regIDs(got); !slices.Equal(ids, tc.want) {
				t.Fatalf("place(%q, %q, extra %v): got %v, want %v", tc.mode, tc.region, tc.extra, ids, tc.want)
			}
			for _, n := range got {
				if want := regMatches(tc.nodes, n.ID) + tc.extra[n.ID]; n.Matches != want {
					t.Fatalf("place: node %s: got Matches %d, want %d (its record's plus extra)", n.ID, n.Matches, want)
				}
			}
			if after := fmt.Sprintf("%+v", tc.nodes); after != before {
				t.Fatalf("place changed its input: got %s, want %s", after, before)
			}
		})
	}
}

func regMatches(nodes []NodeRecord, id string) int {
	for _, n := range nodes {
		if n.ID == id {
			return n.Matches
		}
	}
	return -1
}
