package bots

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multijuego/multijuego/client"
)

// newHTTPClient keeps a connection per concurrent request.
func newHTTPClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency},
	}
}

func (r *run) authenticate(ctx context.Context) error {
	r.bots = make([]*bot, r.cfg.Players)
	jobs := make(chan int)
	var firstErr atomic.Pointer[error]
	var done atomic.Int64
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, r.cfg.Players) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				b := &bot{run: r, idx: i, sock: noSock, slot: -1, movedAt: -1}
				b.rng = uint64(i)*0x9E3779B97F4A7C15 + 1
				c, err := client.New(r.urls[i%len(r.urls)], client.WithHTTPClient(r.hc))
				if err == nil {
					var tok client.Tokens
					tok, err = c.Device(ctx, r.cfg.Prefix+strconv.Itoa(i)+"-device")
					b.token, b.accountID, b.api = tok.AccessToken, tok.AccountID, c
				}
				if err != nil {
					var ae *client.APIError
					if errors.As(err, &ae) && ae.Code == "rate_limited" {
						err = fmt.Errorf("%w (the server limits new accounts per client IP: start it with a higher --auth-signup-ip-limit for a load test, or reuse accounts with the same --prefix)", err)
					}
					e := fmt.Errorf("device login of player %d: %w", i, err)
					firstErr.CompareAndSwap(nil, &e)
					continue
				}
				r.bots[i] = b
				if n := done.Add(1); n%5000 == 0 {
					r.progressf("%d players authenticated", n)
				}
			}
		}()
	}
	for i := range r.cfg.Players {
		if firstErr.Load() != nil || ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}
