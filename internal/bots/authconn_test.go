package bots

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const tokenBody = `{"access_token":"a.b.c","refresh_token":"r1","token_type":"Bearer","expires_in":900,"account_id":"x"}`

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		eof        bool
		status     int
		body       string
		retryAfter int
		close      bool
		n          int // 0: the whole input; -1: incomplete
		err        string
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-type: x\r\n\r\n{}", status: 200, body: "{}"},
		{name: "next answer", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP", status: 200, body: "{}", n: 40},
		{name: "no reason", in: "HTTP/1.1 429\r\ncontent-length:   0 \r\nRetry-After: 7\r\n\r\n", status: 429, retryAfter: 7},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\nA\r\n\":1234567}\r\n0\r\n\r\n", status: 200, body: `{"a":1234567}`},
		{name: "close", in: "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", status: 500, body: "x", close: true},
		{name: "http/1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200, close: true},
		{name: "to eof", in: "HTTP/1.1 200 OK\r\n\r\nall of it", eof: true, status: 200, body: "all of it", close: true},
		{name: "no content", in: "HTTP/1.1 204 No Content\r\n\r\n", status: 204},
		{name: "head cut", in: "HTTP/1.1 200 OK\r\nContent-Le", n: -1},
		{name: "body cut", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", n: -1},
		{name: "chunk cut", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"", n: -1},
		{name: "to eof, not yet", in: "HTTP/1.1 200 OK\r\n\r\nsome", n: -1},
		{name: "body cut at eof", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", eof: true, err: "body of 5 bytes cut at 2"},
		{name: "garbage", in: "garbage\r\n\r\n", err: "status line"},
		{name: "1xx", in: "HTTP/1.1 100 Continue\r\n\r\n", err: "status line"},
		{name: "bad header", in: "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", err: "header line"},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", err: "Content-Length"},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: "Content-Length"},
		{name: "length and chunked", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", err: "both"},
		{name: "gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", err: "Transfer-Encoding"},
		{name: "trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\r\n", err: "trailers"},
		{name: "chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: "chunk size"},
		{name: "no head end", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 12000), err: "no whole head"},
	} {
		a, n, err := parseAnswer([]byte(tc.in), tc.eof)
		switch {
		case tc.err != "":
			if err == nil || !errors.Is(err, errAnswer) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.n == -1:
			if n != 0 {
				t.Errorf("%s: parsed %d bytes of an incomplete answer", tc.name, n)
			}
		case (tc.n == 0 && n != len(tc.in)) || (tc.n > 0 && n != tc.n):
			t.Errorf("%s: size %d of %d", tc.name, n, len(tc.in))
		case a.status != tc.status || string(a.body) != tc.body || a.retryAfter != tc.retryAfter || a.close != tc.close:
			t.Errorf("%s: %d %q retry %d close %v", tc.name, a.status, a.body, a.retryAfter, a.close)
		}
	}
}

// What parseAnswer accepts, net/http reads the same.
func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 429 Too Many\r\nRetry-After: 3\r\nConnection: keep-alive\r\n\r\nrest"))
	f.Add([]byte("HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 503 Unavailable\r\ncontent-length: 4\r\n\r\nbusyHTTP/1.1"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, n, err := parseAnswer(bytes.Clone(b), true)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) || len(a.body) > n {
			t.Fatalf("size %d of %d bytes, body %d", n, len(b), len(a.body))
		}
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b[:n])), nil)
		if err != nil {
			t.Fatalf("accepted %q, net/http: %v", b[:n], err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != a.status || !bytes.Equal(body, a.body) {
			t.Fatalf("%q: %d %q, net/http %d %q %v", b[:n], a.status, a.body, res.StatusCode, body, err)
		}
	})
}

func TestCheckTokenPair(t *testing.T) {
	for body, want := range map[string]string{
		tokenBody: "",
		` { "x" : [1, -2.5e+3, {"y": [true, false, null]}, "\"\u00e9"], "access_token":"a","refresh_token":"\n" } `: "",
		`{"access\u005ftoken":"a","refresh_token":"b"}`:                                                             "",
		`{}`:                   "no access_token",
		`{"access_token":"a"}`: "no refresh_token",
		`{"access_token":"","refresh_token":"b"}`:   "no access_token",
		`{"access_token":1,"refresh_token":"b"}`:    "no access_token",
		`{"access_token":"a","refresh_token":null}`: "no refresh_token",
		`{"access_token":"a","access_token":""}`:    "no access_token",
		``:                                          "unreadable answer: not a JSON object at byte 0",
		`garbage`:                                   "unreadable answer: not a JSON object",
		`[]`:                                        "unreadable answer: not a JSON object",
		`{"access_token":"a","refresh_token":"b"`:     "unreadable answer: no comma or }",
		`{"access_token":"a","refresh_token":"b"} {}`: "unreadable answer: data after the object",
		`{"access_token":"a","refresh_token":"b",}`:   "unreadable answer: bad object key",
		`{"x":01,"access_token":"a"}`:                 "unreadable answer: no comma or }",
		`{"x":"\q"}`:                                  "unreadable answer: bad value",
		"{\"x\":\"\x01\"}":                            "unreadable answer: bad value",
		`{"x":[1,]}`:                                  "unreadable answer: bad value",
		`{"x":tru}`:                                   "unreadable answer: bad value",
		`{"x":1.}`:                                    "unreadable answer: bad value",
		`{"x":` + strings.Repeat("[", 10001) + `}`:    "unreadable answer: bad value",
	} {
		err := checkTokenPair([]byte(body))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%.60q: %v, want %q", body, err, want)
		}
	}
}

// checkTokenPair agrees with encoding/json.
func FuzzCheckTokenPair(f *testing.F) {
	f.Add([]byte(tokenBody))
	f.Add([]byte(`{"x":[{"y":-0.5E-7}],"access_token":"\u00e9","refresh_token":"b"}`))
	f.Add([]byte(`{"access_token":"a"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m map[string]json.RawMessage
		want := json.Unmarshal(b, &m) == nil
		for _, k := range []string{"access_token", "refresh_token"} {
			var s string
			want = want && json.Unmarshal(m[k], &s) == nil && s != ""
		}
		if err := checkTokenPair(b); (err == nil) != want {
			t.Fatalf("%q: %v; encoding/json says a token pair: %v", b, err, want)
		}
	})
}

// A login storm against a server whose answers go wrong in every way it
// can: each wrong answer is counted as an error and sampled with what was
// wrong, the good ones are counted as logins, and every request was the
// SDK's device login.
func TestAuthStormAnswers(t *testing.T) {
	var n, wrong atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if r.Method != "POST" || r.URL.Path != "/v1/auth/device" || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&body) != nil || len(body) != 1 || !strings.HasPrefix(body["device_id"], "st<&>-") {
			wrong.Add(1)
		}
		switch n.Add(1) % 9 {
		case 0:
			_, _ = io.WriteString(w, tokenBody)
		case 1: // a new account's
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, tokenBody)
		case 2:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"error":{"code":"rate_limited","message":"Too many logins."}}`)
		case 3:
			_, _ = io.WriteString(w, `{"access_token":"a"}`)
		case 4:
			_, _ = io.WriteString(w, `{"access_token":"a",`)
		case 5:
			w.WriteHeader(http.StatusNoContent)
		case 6:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 7:
			c, _, _ := http.NewResponseController(w).Hijack()
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
			c.Close()
		case 8:
			w.Header().Set("Content-Length", "100000")
			_, _ = w.Write(bytes.Repeat([]byte(" "), 100_000))
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Mode: ModeAuth, NewAccounts: true, Prefix: "st<&>-",
		Players: 1, Concurrency: 1, Duration: 300 * time.Millisecond, MetricsURL: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if wrong.Load() != 0 {
		t.Fatalf("%d requests not a device login", wrong.Load())
	}
	if res.Logins == 0 || res.Errors < 2*res.Logins || res.LoginMs.Count != uint64(res.Logins) {
		t.Fatalf("%d logins, %d errors, latency %+v", res.Logins, res.Errors, res.LoginMs)
	}
	samples := strings.Join(res.ErrorSamples, "\n")
	for _, want := range []string{
		"device login: multijuego: 429 rate_limited: Too many logins. (" + authLimitsHint + ")",
		"device login: multijuego: POST /v1/auth/device: no refresh_token in the answer",
		"device login: multijuego: POST /v1/auth/device: unreadable answer: bad object key at byte 20",
		"device login: multijuego: POST /v1/auth/device: unreadable answer: not a JSON object at byte 0",
		"device login: multijuego: 500 http_500: Internal Server Error",
		`device login: Post "` + srv.URL + `/v1/auth/device": malformed HTTP answer: Content-Length "x"`,
		`device login: Post "` + srv.URL + `/v1/auth/device": answer over 65536 bytes`,
	} {
		if !strings.Contains(samples, want) {
			t.Errorf("no sample %q in\n%s", want, samples)
		}
	}
}

// The storm's clients keep their connections: one each, however many
// logins.
func TestAuthStormKeepAlive(t *testing.T) {
	var conns, logins atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logins.Add(1)
		_, _ = io.WriteString(w, tokenBody)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	res, err := Run(context.Background(), Config{URL: srv.URL, Mode: ModeAuth, NewAccounts: true,
		Players: 1, Concurrency: 3, Duration: 200 * time.Millisecond, MetricsURL: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Logins < 10 || conns.Load() != 3 {
		t.Fatalf("%d logins, %d errors over %d connections (%d requests)", res.Logins, res.Errors, conns.Load(), logins.Load())
	}
}

// A client whose server went away fails each login with the dial's error,
// as net/http words it.
func TestLoginConnRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	tg, err := parseTarget(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	lc := newLoginConn(tg, srv.URL)
	err = lc.login(context.Background(), []byte(`{"device_id":"d-0123456789"}`), time.Now())
	if err == nil || !strings.HasPrefix(err.Error(), `Post "`+srv.URL+`/v1/auth/device": dial tcp`) || lc.c != nil {
		t.Fatalf("%v", err)
	}
}

// Over https:// a client logs in over TLS, on one connection.
func TestLoginConnTLS(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, tokenBody)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	tg, err := parseTarget(srv.URL)
	if err != nil || tg.tls == nil {
		t.Fatalf("%+v %v", tg, err)
	}
	tg.tls.RootCAs = x509.NewCertPool()
	tg.tls.RootCAs.AddCert(srv.Certificate())
	lc := newLoginConn(tg, srv.URL)
	defer lc.close()
	for range 3 {
		if err := lc.login(context.Background(), []byte(`{"device_id":"d-0123456789"}`), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("%d connections for 3 logins", conns.Load())
	}
}

// Cancelling the context ends a login waiting for its answer.
func TestLoginConnCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	tg, err := parseTarget(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	lc := newLoginConn(tg, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err = lc.login(ctx, []byte(`{"device_id":"d-0123456789"}`), t0)
	if err == nil || time.Since(t0) > 5*time.Second || lc.c != nil {
		t.Fatalf("%v after %s", err, time.Since(t0))
	}
}
