package bots

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A flood of a server that refuses all but its first requests: the report
// counts the answers by status, the refusals among them, and every request
// carried the Forwarded address and the body asked for.
func TestFloodHTTP(t *testing.T) {
	var n, wrong atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if r.Method != "POST" || r.URL.Path != "/v1/auth/login" || r.Header.Get("Forwarded") != "for=192.0.2.1" ||
			json.NewDecoder(r.Body).Decode(&body) != nil || body["username"] != "flood-target" {
			wrong.Add(1)
		}
		if n.Add(1) <= 5 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"--url", srv.URL, "--mode", "flood", "--flood-for", "192.0.2.1",
		"--flood-conns", "2", "--warmup", "50ms", "--duration", "300ms", "--json", "--quiet"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res FloodResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	if wrong.Load() != 0 {
		t.Fatalf("%d requests without the method, path, body or Forwarded address asked for", wrong.Load())
	}
	answered := 0
	for _, c := range res.Answers {
		answered += c
	}
	if res.Mode != ModeFlood || res.Answers["429"] == 0 || res.RejectionsPerS <= 0 || res.RequestsPerS < res.RejectionsPerS ||
		int64(answered) > n.Load() || res.Errors != 0 || res.LatencyMs.Count != uint64(answered) {
		t.Fatalf("report %+v after %d requests", res, n.Load())
	}
	if s := FloodSummary(&res); !strings.Contains(s, "as 192.0.2.1") || !strings.Contains(s, "rejected") {
		t.Fatalf("summary: %s", s)
	}
}

// --flood-rps paces the flood: a 200/s flood over 300 ms sends about 60
// requests, not thousands.
func TestFloodRate(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	res, err := RunFlood(context.Background(), FloodConfig{URL: srv.URL, RPS: 200, Conns: 2, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got > 120 {
		t.Fatalf("%d requests in 300 ms at --flood-rps 200 (report %+v)", got, res)
	}
}
