package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/multijuego/multijuego/games/tictactoe"
	"github.com/multijuego/multijuego/internal/app"
	"github.com/multijuego/multijuego/match"
)

// The stock wiring end to end: a Main with the game role, two players on
// real sockets, a move, and the state frame reaching both (the engine's
// Sender is the realtime gateway through the app's relay).
func TestRealtimeThroughMain(t *testing.T) {
	cfg := testConfig(t)
	m, stop := startMainWith(t, cfg, []app.Mode{{Name: tictactoe.Mode, Factory: tictactoe.New}})
	defer stop()
	type player struct {
		token string
		conn  interface {
			Read([]byte) (int, error)
			Write([]byte) (int, error)
			SetReadDeadline(time.Time) error
			Close() error
		}
	}
	login := func(device string) player {
		res, err := http.Post(m.URL()+"/v1/auth/device", "application/json", strings.NewReader(`{"device_id":"`+device+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(res.Body).Decode(&tok)
		res.Body.Close()
		d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + tok.AccessToken}}), Timeout: 5 * time.Second}
		nc, br, _, err := d.Dial(context.Background(), "ws://"+m.Addr()+"/v1/realtime")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return player{token: tok.AccessToken, conn: &bufConn{Conn: nc, br: br}}
	}
	send := func(p player, typ string, payload any) {
		b, _ := json.Marshal(map[string]any{"type": typ, "payload": payload})
		if err := wsutil.WriteClientText(p.conn, b); err != nil {
			t.Fatal(err)
		}
	}
	// until reads messages until one satisfies fn.
	until := func(p player, fn func(op ws.OpCode, data []byte) bool) {
		t.Helper()
		for {
			_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			data, op, err := wsutil.ReadServerData(p.conn)
			if err != nil {
				t.Fatal(err)
			}
			if fn(op, data) {
				return
			}
		}
	}
	text := func(typ string) func(ws.OpCode, []byte) bool {
		return func(op ws.OpCode, d []byte) bool {
			return op == ws.OpText && bytes.Contains(d, []byte(`"type":"`+typ+`"`))
		}
	}
	a, b := login("device-rt-main-a"), login("device-rt-main-b")
	var id string
	send(a, "match.create", map[string]any{"mode": "tictactoe"})
	until(a, func(op ws.OpCode, d []byte) bool {
		var env struct {
			Type    string
			Payload struct {
				MatchID string `json:"match_id"`
			}
		}
		json.Unmarshal(d, &env)
		id = env.Payload.MatchID
		return env.Type == "match.created"
	})
	send(a, "match.join", map[string]any{"match_id": id})
	until(a, text("match.joined"))
	send(b, "match.join", map[string]any{"match_id": id})
	until(b, text("match.joined"))
	move := binary.LittleEndian.AppendUint16(nil, uint16(tictactoe.OpMove))
	if err := wsutil.WriteClientBinary(a.conn, append(move, 4)); err != nil {
		t.Fatal(err)
	}
	sawMove := func(op ws.OpCode, d []byte) bool {
		if op != ws.OpBinary || len(d) < 12 || d[0] != match.FrameKind {
			return false
		}
		return binary.LittleEndian.Uint16(d[1:]) == uint16(tictactoe.OpState) && bytes.Contains(d[12+int(d[11]):], []byte(`"board":"....X...."`))
	}
	until(b, sawMove)
	until(a, sawMove)

	// The match's ticks are timed into multijuego_match_tick_seconds
	// (observed after each tick's broadcast, so poll a little).
	tickCount := regexp.MustCompile(`(?m)^multijuego_match_tick_seconds_count\{mode="tictactoe"\} ([0-9]+)$`)
	for deadline := time.Now().Add(5 * time.Second); ; {
		res, err := http.Get(m.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if c := tickCount.FindSubmatch(body); c != nil && string(c[1]) != "0" {
			if !bytes.Contains(body, []byte(`multijuego_match_tick_seconds_bucket{mode="tictactoe",le="0.005"}`)) {
				t.Errorf("no 5ms bucket in /metrics")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tick observed in multijuego_match_tick_seconds; /metrics has:\n%s", grepLines(body, "multijuego_match_tick"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grepLines returns the lines of b containing s.
func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// bufConn reads first what the handshake's reader buffered (the server's
// first message can arrive with the handshake answer).
type bufConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) {
	if c.br != nil && c.br.Buffered() > 0 {
		return c.br.Read(p)
	}
	return c.Conn.Read(p)
}
