package gateway

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/multijuego/multijuego/internal/errcode"
	"github.com/multijuego/multijuego/internal/wsnet"
)

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "\n\r\t\x00\x01\x1f\x7f", "é€𝄞", "<&>\u2028\u2029", "bad\xffutf8\xc3", strings.Repeat("x", 300)} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q: %s is not a JSON string: %v", s, b, err)
			continue
		}
		var want string // what encoding/json makes of s (each invalid byte: U+FFFD)
		_ = json.Unmarshal(mustMarshal(s), &want)
		if got != want || !utf8.Valid(b) {
			t.Errorf("%q: round trip gave %q, want %q", s, got, want)
		}
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestEnvelopeFrame(t *testing.T) {
	for _, n := range []int{0, 50, 125, 126, 200, 0xffff, 0x10000, 70000} {
		payload := mustMarshal(strings.Repeat("p", n))
		f := envelopeFrame("echo", "c\"1", payload)
		body := appendEnvelope(nil, "echo", "c\"1", payload)
		want := wsnet.EncodeFrame(wsnet.OpText, body)
		if !bytes.Equal(f, want) {
			t.Fatalf("payload %d bytes: frame differs from EncodeFrame's (%d vs %d bytes)", n, len(f), len(want))
		}
	}
	if got := string(appendEnvelope(nil, "match.left", "", mustMarshal(map[string]string{"match_id": "m"}))); got != `{"type":"match.left","cid":"","payload":{"match_id":"m"}}` {
		t.Errorf("envelope: %s", got)
	}
}

// FuzzRealtimeEnvelope feeds arbitrary text messages to the envelope
// decoder the realtime handler uses: it never panics, refuses with a domain
// error, and what it accepts re-encodes (as the echo answer does) to an
// envelope that decodes to the same thing.
func FuzzRealtimeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"type":"echo","cid":"1","payload":{"t":1}}`,
		`{"type":"match.join","cid":"7","payload":{"match_id":"abc"}}`,
		`{"type":"match.leave"}`,
		`{"type":"echo","payload":null}`,
		`{"type":"echo","cid":"\u00e9\n\"","payload":[1,"two",{"3":null}]}`,
		`{"TYPE":"echo","Cid":"x","payload":-1.5e10}`,
		`{"type":"a","type":"b"}`,
		`{"type":`,
		`[]`,
		`{"type":"echo","extra":1}`,
		` {"type":"x"} `,
		`{"cid":"` + strings.Repeat("c", 65) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := decodeEnvelope(data)
		if err != nil {
			if errcode.As(err) == nil {
				t.Fatalf("%q: error %v is not a domain error", data, err)
			}
			return
		}
		if len(env.CID) > maxCIDLen {
			t.Fatalf("%q: accepted a cid of %d bytes", data, len(env.CID))
		}
		if env.Payload != nil && !json.Valid(env.Payload) {
			t.Fatalf("%q: payload %q is not JSON", data, env.Payload)
		}
		out := appendEnvelope(nil, env.Type, env.CID, env.Payload)
		if !json.Valid(out) {
			t.Fatalf("%q: re-encoded to invalid JSON %q", data, out)
		}
		again, err := decodeEnvelope(out)
		if err != nil {
			t.Fatalf("%q: re-encoded %q refused: %v", data, out, err)
		}
		wantPayload := env.Payload
		if wantPayload == nil {
			wantPayload = json.RawMessage("null")
		}
		if again.Type != env.Type || again.CID != env.CID || !bytes.Equal(again.Payload, wantPayload) {
			t.Fatalf("%q: round trip %+v -> %q -> %+v", data, env, out, again)
		}
		// The echo answer is that envelope in one text frame.
		if fr := envelopeFrame(env.Type, env.CID, env.Payload); !bytes.Equal(fr, wsnet.EncodeFrame(wsnet.OpText, out)) {
			t.Fatalf("%q: envelopeFrame differs from EncodeFrame", data)
		}
	})
}

// FuzzInputFrame checks the split of a binary input into op code and
// payload.
func FuzzInputFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 4})
	f.Add([]byte{0x00, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, frame []byte) {
		op, payload, ok := splitInput(frame)
		if !ok {
			if len(frame) >= 2 {
				t.Fatalf("% x refused", frame)
			}
			return
		}
		if len(frame) < 2 || len(payload) != len(frame)-2 {
			t.Fatalf("% x: op %d payload % x", frame, op, payload)
		}
		if again := append(binary.LittleEndian.AppendUint16(nil, uint16(op)), payload...); !bytes.Equal(again, frame) {
			t.Fatalf("% x re-encodes to % x", frame, again)
		}
	})
}
