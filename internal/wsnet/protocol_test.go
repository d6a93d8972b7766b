package wsnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

func TestAppendProtocols(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"a", []string{"a"}, true},
		{"a, b,c", []string{"a", "b", "c"}, true},
		{" a ,\t, b ", []string{"a", "b"}, true},
		{"multijuego.v1, multijuego.bearer.eyJh-_Zz.eyJ.sig", []string{"multijuego.v1", "multijuego.bearer.eyJh-_Zz.eyJ.sig"}, true},
		{"!#$%&'*+-.^_`|~09AZaz", []string{"!#$%&'*+-.^_`|~09AZaz"}, true},
		{"a b", nil, false},
		{"a;b", nil, false},
		{"tok=", nil, false}, // base64 padding is not a tchar
		{`"quoted"`, nil, false},
		{"a/b", nil, false},
		{"é", nil, false},
	} {
		got, ok := appendProtocols(nil, tc.in)
		if ok != tc.ok || (ok && !slices.Equal(got, tc.want)) {
			t.Errorf("appendProtocols(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestSubprotocolSelection runs through both upgrade paths (raw listener
// and http.Handler): Authorize sees the offered subprotocols and the one it
// selects is the response's.
func TestSubprotocolSelection(t *testing.T) {
	type seen struct {
		protocols []string
		header    string
	}
	got := make(chan seen, 16)
	cfg := Config{Authorize: func(r *Request) (any, error) {
		got <- seen{slices.Clone(r.Protocols), strings.Join(r.Header.Values("Sec-WebSocket-Protocol"), "|")}
		switch {
		case slices.Contains(r.Protocols, "reject"):
			return nil, Reject(http.StatusUnauthorized, "no")
		case slices.Contains(r.Protocols, "rogue"):
			r.Protocol = "never-offered"
		case slices.Contains(r.Protocols, "v1"):
			r.Protocol = "v1"
		}
		return nil, nil
	}}
	h := newTestHandler(false)
	s, rawURL := startServer(t, transports[0], cfg, h)
	hs := httptest.NewServer(s)
	defer hs.Close()
	httpURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"

	for name, url := range map[string]string{"raw": rawURL, "http": httpURL} {
		t.Run(name, func(t *testing.T) {
			d := ws.Dialer{Protocols: []string{"v1", "secret.token"}, Timeout: 5 * time.Second}
			nc, _, hsk, err := d.Dial(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			_ = nc.Close()
			if hsk.Protocol != "v1" {
				t.Errorf("selected %q, want v1", hsk.Protocol)
			}
			if sn := <-got; !slices.Equal(sn.protocols, []string{"v1", "secret.token"}) || sn.header != "v1, secret.token" {
				t.Errorf("Authorize saw %+v", sn)
			}
			waitEvent(t, h.opened, 5*time.Second)

			// Nothing selected: no Sec-WebSocket-Protocol in the response.
			status, hdr := rawHandshake(t, url, "Sec-WebSocket-Protocol: other\r\n")
			if status != 101 || hdr.Get("Sec-WebSocket-Protocol") != "" {
				t.Errorf("no selection: %d %v", status, hdr)
			}
			<-got
			waitEvent(t, h.opened, 5*time.Second)
			// The response names only the selected protocol, never the
			// other offers; several header lines add up.
			status, hdr = rawHandshake(t, url, "Sec-WebSocket-Protocol: secret.token\r\nSec-WebSocket-Protocol: v1\r\n")
			if status != 101 || hdr.Values("Sec-WebSocket-Protocol")[0] != "v1" || len(hdr.Values("Sec-WebSocket-Protocol")) != 1 {
				t.Errorf("two header lines: %d %v", status, hdr)
			}
			if sn := <-got; !slices.Equal(sn.protocols, []string{"secret.token", "v1"}) {
				t.Errorf("Authorize saw %+v", sn)
			}
			waitEvent(t, h.opened, 5*time.Second)

			for _, tc := range []struct {
				offer string
				want  int
			}{
				{"v1, reject", 401},
				{"v1, rogue", 500},       // a selection that was not offered
				{"v1, not a token", 400}, // malformed: Authorize never runs
				{"v1, tok=", 400},
			} {
				status, hdr := rawHandshake(t, url, "Sec-WebSocket-Protocol: "+tc.offer+"\r\n")
				if status != tc.want || hdr.Get("Sec-WebSocket-Protocol") != "" {
					t.Errorf("offer %q: %d %v, want %d", tc.offer, status, hdr, tc.want)
				}
				if tc.want != 400 {
					<-got
				}
			}
			select {
			case sn := <-got:
				t.Errorf("Authorize ran for a malformed offer: %+v", sn)
			default:
			}
		})
	}
}

// rawHandshake sends an upgrade request with extra header lines and returns
// the response's status and headers.
func rawHandshake(t *testing.T, url, extra string) (int, http.Header) {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimSuffix(url, "/ws"), "ws://")
	nc, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(nc, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", host, extra)
	res, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return 0, nil
		}
		t.Fatalf("read response: %v", err)
	}
	_ = res.Body.Close()
	return res.StatusCode, res.Header
}
