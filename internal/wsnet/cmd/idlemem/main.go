// Command idlemem measures server memory per idle authenticated WebSocket
// connection, for the wsnet transport (-impl=epoll: its epoll backend;
// -impl=stream: its portable stream backend on plain TCP; -impl=tls: TLS
// 1.3 sockets through ListenTLS, which move to the epoll backend after the
// upgrade; -impl=tls-stream: TLS sockets through tls.NewListener, which
// stay with crypto/tls on the stream backend) and for a goroutine-per-
// connection gobwas/ws baseline. The client always runs in a separate
// process (open-file limit), on loopback only.
//
//	go run ./internal/wsnet/cmd/idlemem -role=bench -impl=epoll -n=5000 -reps=3
//
// -role=bench starts, per repetition, one server process and one client
// process (both this binary), and prints each result and the median/spread.
//
// Measured 2026-11-23 (2 cores, -ping=3s, 3 reps, median [min-max] KiB of
// server VmRSS growth per connection, no forced GC; kernel socket buffers
// are not in RSS):
//
//	N       epoll              goroutine (gobwas, 1 goroutine/conn)
//	1000    3.23 [3.16-3.27]   7.02 [6.95-7.08]
//	5000    1.26 [1.23-1.27]   6.17 [6.14-6.19]
//	19000   0.93 [0.92-1.00]   6.03 [6.02-6.03]
//
// The epoll figure at small N is mostly fixed cost (reader buffers, handshake
// buffer pools, runtime) spread over few connections.
//
// Measured 2026-12-02, N=19000, same method (docs/benchmarks.md, "Realtime
// transport: TLS and portable backend"):
//
//	epoll 0.88 [0.84-0.97]   stream 5.44 [5.33-5.51]   tls 18.34 [18.30-18.52]
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/multijuego/multijuego/internal/tlstest"
	"github.com/multijuego/multijuego/internal/wsnet"
)

var (
	role  = flag.String("role", "bench", "bench | server | client")
	impl  = flag.String("impl", "epoll", "epoll | stream | tls | tls-stream | goroutine")
	n     = flag.Int("n", 1000, "connections")
	reps  = flag.Int("reps", 3, "repetitions (bench)")
	ping  = flag.Duration("ping", 3*time.Second, "server ping interval")
	addr  = flag.String("addr", "", "server address (client)")
	heap  = flag.String("memprofile", "", "server: write a heap profile of the idle sockets here")
	token = "secret-token"
)

type result struct {
	Impl          string  `json:"impl"`
	N             int     `json:"n"`
	RSSKiBPerConn float64 `json:"rss_kib_per_conn"`    // (VmRSS after idle - before) / n, no forced GC
	GCRSSKiBPer   float64 `json:"rss_gc_kib_per_conn"` // same after runtime.GC + FreeOSMemory
	GoKiBPerConn  float64 `json:"go_kib_per_conn"`     // (HeapInuse+StackInuse) growth / n
	StackKiBPer   float64 `json:"stack_kib_per_conn"`  // StackInuse growth / n
	GCGoKiBPer    float64 `json:"go_gc_kib_per_conn"`  // GoKiBPerConn after runtime.GC
	GCStackKiBPer float64 `json:"stack_gc_kib_per_conn"`
	Goroutines    int     `json:"goroutines"`
	Open          int     `json:"open"`
}

func main() {
	flag.Parse()
	if *heap != "" {
		runtime.MemProfileRate = 4096
	}
	log.SetFlags(0)
	switch *role {
	case "server":
		server()
	case "client":
		client()
	default:
		bench()
	}
}

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		log.Fatal(err)
	}
}

func rssKiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// goInuse returns the Go heap and stacks in use, and the stacks alone, in
// KiB.
func goInuse() (all, stacks float64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse+ms.StackInuse) / 1024, float64(ms.StackInuse) / 1024
}

type user struct{ id string }

// counter counts open connections for both implementations.
type counter struct{ open atomic.Int64 }

func (c *counter) OnOpen(*wsnet.Conn)                          { c.open.Add(1) }
func (c *counter) OnMessage(*wsnet.Conn, wsnet.OpCode, []byte) {}
func (c *counter) OnClose(*wsnet.Conn, wsnet.CloseReason)      { c.open.Add(-1) }

func server() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	cnt := &counter{}
	start := func() {}
	switch *impl {
	case "epoll", "stream", "tls", "tls-stream":
		cfg := wsnet.Config{
			PingInterval: *ping,
			Authorize: func(r *wsnet.Request) (any, error) {
				if r.Header.Get("Authorization") != "Bearer "+token {
					return nil, wsnet.Reject(http.StatusUnauthorized, "bad token")
				}
				return &user{id: r.URI}, nil
			},
		}
		if *impl == "stream" {
			cfg.Backend = wsnet.BackendStream
		}
		s, err := wsnet.NewServer(cfg, cnt)
		if err != nil {
			log.Fatal(err)
		}
		var l net.Listener = ln
		if *impl == "tls" || *impl == "tls-stream" {
			c, err := tlstest.New()
			if err != nil {
				log.Fatal(err)
			}
			tcfg := &tls.Config{Certificates: []tls.Certificate{c.TLS}}
			l = wsnet.ListenTLS(ln, tcfg)
			if *impl == "tls-stream" {
				l = tls.NewListener(ln, tcfg)
			}
		}
		start = func() { go func() { _ = s.Serve(l) }() }
	case "goroutine":
		start = func() { go baseline(ln, cnt) }
	default:
		log.Fatalf("unknown impl %q", *impl)
	}
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(200 * time.Millisecond)
	rss0 := rssKiB()
	go0, st0 := goInuse()
	start()
	fmt.Printf("ADDR %s\n", ln.Addr())

	deadline := time.Now().Add(3 * time.Minute)
	for cnt.open.Load() < int64(*n) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// Idle past one ping interval (pings sent and answered).
	time.Sleep(*ping*3/2 + 500*time.Millisecond)
	rss1 := rssKiB()
	go1, st1 := goInuse()
	open := int(cnt.open.Load())
	g := runtime.NumGoroutine()
	// Each GC halves at most once the stacks that use under a quarter of
	// theirs: a few cycles give the stacks a long-running server settles at.
	for range 3 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	rss2 := rssKiB()
	go2, st2 := goInuse()
	if *heap != "" {
		writeHeapProfile(*heap) // live objects as of the GC above
	}
	r := result{
		Impl: *impl, N: *n,
		RSSKiBPerConn: (rss1 - rss0) / float64(open),
		GCRSSKiBPer:   (rss2 - rss0) / float64(open),
		GoKiBPerConn:  (go1 - go0) / float64(open),
		StackKiBPer:   (st1 - st0) / float64(open),
		GCGoKiBPer:    (go2 - go0) / float64(open),
		GCStackKiBPer: (st2 - st0) / float64(open),
		Goroutines:    g, Open: open,
	}
	b, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", b)
	os.Exit(0)
}

// baseline: one goroutine per connection, blocking reads with gobwas/ws,
// pings from a single ticker under a per-connection write mutex.
type bconn struct {
	net.Conn
	mu   sync.Mutex
	user *user
}

func baseline(ln net.Listener, cnt *counter) {
	var mu sync.Mutex
	conns := map[*bconn]struct{}{}
	go func() {
		pingFrame := wsnet.EncodeFrame(wsnet.OpPing, nil)
		for range time.Tick(*ping) {
			mu.Lock()
			list := make([]*bconn, 0, len(conns))
			for c := range conns {
				list = append(list, c)
			}
			mu.Unlock()
			for _, c := range list {
				c.mu.Lock()
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, err := c.Write(pingFrame)
				c.mu.Unlock()
				if err != nil {
					_ = c.Close()
				}
			}
		}
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			c := &bconn{Conn: nc}
			u := ws.Upgrader{
				OnRequest: func(uri []byte) error { c.user = &user{id: string(uri)}; return nil },
				OnHeader: func(k, v []byte) error {
					if strings.EqualFold(string(k), "Authorization") && string(v) != "Bearer "+token {
						return ws.RejectConnectionError(ws.RejectionStatus(401))
					}
					return nil
				},
			}
			if _, err := u.Upgrade(nc); err != nil {
				_ = nc.Close()
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			cnt.open.Add(1)
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				cnt.open.Add(-1)
				_ = nc.Close()
			}()
			rw := struct {
				*bconn
			}{c}
			// No read deadline: pongs are handled inside ReadClientData and
			// would not refresh it; dead peers surface as ping write errors.
			for {
				if _, _, err := wsutil.ReadClientData(lockedWriter{rw.bconn}); err != nil {
					return
				}
			}
		}()
	}
}

// lockedWriter serializes control replies with the pinger.
type lockedWriter struct{ c *bconn }

func (l lockedWriter) Read(p []byte) (int, error) { return l.c.Read(p) }
func (l lockedWriter) Write(p []byte) (int, error) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.c.Conn.Write(p)
}

// client opens n idle connections that answer pings, and exits when the
// server goes away.
func client() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var failed atomic.Int64
	hdr := ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + token}})
	for i := range *n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := ws.Dialer{Header: hdr, Timeout: 10 * time.Second}
			scheme := "ws"
			if strings.HasPrefix(*impl, "tls") {
				// Loopback to a certificate made for this run: nothing to verify.
				d.TLSConfig = &tls.Config{InsecureSkipVerify: true}
				scheme = "wss"
			}
			nc, br, _, err := d.Dial(context.Background(), fmt.Sprintf("%s://%s/u%d", scheme, *addr, i))
			<-sem
			if err != nil {
				failed.Add(1)
				return
			}
			if br != nil {
				ws.PutReader(br)
			}
			defer nc.Close()
			for {
				if _, _, err := wsutil.ReadServerData(nc); err != nil {
					return
				}
			}
		}()
	}
	if f := failed.Load(); f > 0 {
		log.Printf("client: %d dials failed", f)
	}
	wg.Wait()
}

func bench() {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	var rs []result
	for rep := range *reps {
		srv := exec.Command(exe, "-role=server", "-impl="+*impl, "-n="+strconv.Itoa(*n), "-ping="+ping.String(), "-memprofile="+*heap)
		srv.Stderr = os.Stderr
		out, err := srv.StdoutPipe()
		if err != nil {
			log.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			log.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var cli *exec.Cmd
		var res *result
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "ADDR "):
				cli = exec.Command(exe, "-role=client", "-impl="+*impl, "-n="+strconv.Itoa(*n), "-addr="+strings.TrimPrefix(line, "ADDR "))
				cli.Stderr = os.Stderr
				if err := cli.Start(); err != nil {
					log.Fatal(err)
				}
			case strings.HasPrefix(line, "RESULT "):
				res = new(result)
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), res); err != nil {
					log.Fatal(err)
				}
			}
		}
		_ = srv.Wait()
		if cli != nil {
			done := make(chan struct{})
			go func() { _ = cli.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cli.Process.Kill()
				<-done
			}
		}
		if res == nil {
			log.Fatalf("rep %d: no result", rep)
		}
		fmt.Printf("rep %d: %+v\n", rep, *res)
		rs = append(rs, *res)
	}
	summary := func(name string, f func(result) float64) {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		fmt.Printf("%s impl=%s n=%d %s KiB/conn: median %.2f  min %.2f  max %.2f\n",
			"SUMMARY", *impl, *n, name, v[len(v)/2], v[0], v[len(v)-1])
	}
	summary("rss", func(r result) float64 { return r.RSSKiBPerConn })
	summary("rss-after-gc", func(r result) float64 { return r.GCRSSKiBPer })
	summary("go-heap+stack", func(r result) float64 { return r.GoKiBPerConn })
	summary("go-stack", func(r result) float64 { return r.StackKiBPer })
	summary("go-heap+stack-after-gc", func(r result) float64 { return r.GCGoKiBPer })
	summary("go-stack-after-gc", func(r result) float64 { return r.GCStackKiBPer })
}
