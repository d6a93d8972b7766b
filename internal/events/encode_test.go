package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// sameAsMarshal fails unless ev's kept wire form and Encode's full path
// both equal JSON v2's encoding of the envelope, and ev.Data JSON v2's
// encoding of its payload: the hand-written encoders write what JSON v2
// writes.
func sameAsMarshal(t *testing.T, ev Event) {
	t.Helper()
	p, err := parsePayload(ev)
	if err != nil {
		t.Fatalf("%s: %v", ev.Type, err)
	}
	data, err := marshal(p)
	if err != nil {
		t.Fatalf("%s: marshal payload: %v", ev.Type, err)
	}
	if !bytes.Equal(ev.Data, data) {
		t.Fatalf("%s: payload\n got %s\nwant %s", ev.Type, ev.Data, data)
	}
	want, err := marshal(&ev)
	if err != nil {
		t.Fatalf("%s: marshal envelope: %v", ev.Type, err)
	}
	if ev.wire == nil {
		t.Fatalf("%s: New kept no wire form", ev.Type)
	}
	if !bytes.Equal(ev.wire.b, want) {
		t.Fatalf("%s: kept wire form\n got %s\nwant %s", ev.Type, ev.wire.b, want)
	}
	slow := ev
	slow.wire = nil
	if full, err := Encode(slow); err != nil || !bytes.Equal(full, want) {
		t.Fatalf("%s: Encode's full path (%v)\n got %s\nwant %s", ev.Type, err, full, want)
	}
}

func TestAppendEnvelopeIsMarshal(t *testing.T) {
	for _, ev := range []Event{started(t, "m1"), moment(t, "m1", 1), ended(t, "m1")} {
		sameAsMarshal(t, ev)
	}
	// Fields and data that JSON writes with escapes or rewrites.
	for _, c := range []struct{ matchID, node, name, data string }{
		{"m", "n", "tag", `{"by":"a1","tagged":"a2"}`},
		{`m "quoted" \ back`, "nöde ✓", "<b>&amp;</b>", `{"html":"<script>&</script>","ls":"\u2028"}`},
		{"m", "n", "esc", `{"a":"\u0041\n\t\"\\\/","b":"\ud83d\ude00"}`},
		{"m", "n", "nums", `[1, 1.0, 1e3, -0, 0.1E-2, 12345678901234567890]`},
		{"m", "n", "scalars", ` "just a string" `},
		{"m", "n", "empty", ``},
		{"m", "n", "null", `null`},
		{"m", "n", "deep", `{"x":[{"y":{"z":[true,false,null,{}]}}]}`},
		{"m", "n", "raw utf8", `{"ñ":"日本語","emoji":"😀","del":"` + "\x7f" + `"}`},
	} {
		ev, err := NewMatchEvent(c.matchID, c.node, MatchEvent{Name: c.name, Data: json.RawMessage(c.data)})
		if err != nil {
			t.Fatalf("%q: %v", c.name, err)
		}
		sameAsMarshal(t, ev)
	}
	// Times with and without fractions of a second.
	for _, at := range []time.Time{t0, t0.Add(time.Nanosecond), t0.Add(120 * time.Millisecond), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)} {
		ev := moment(t, "m", 1)
		ev.Time = at
		ev.wire = nil
		b, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev.Data, _ = encodePayload(mustPayload(t, ev))
		if want, _ := marshal(&ev); !bytes.Equal(b, want) {
			t.Fatalf("time %s:\n got %s\nwant %s", at, b, want)
		}
	}
}

func mustPayload(t *testing.T, ev Event) payload {
	t.Helper()
	p, err := parsePayload(ev)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzNewMatchEvent holds the hand-written encoders to JSON v2's: for any
// key moment New accepts, the wire form is JSON v2's encoding, Decode
// accepts it, and encoding the decoded event gives the same bytes.
func FuzzNewMatchEvent(f *testing.F) {
	f.Add("m-1", "node-1", "tag", `{"by":"a00042","tagged":"a00043"}`)
	f.Add("m", "n", "esc", `{"a":"\u0041\n","b":"\ud83d\ude00"}`)
	f.Add(`"`, `\`, "<&>", `[1e3, -0, " x "]`)
	f.Add("m", "n", "x", ``)
	f.Fuzz(func(t *testing.T, matchID, node, name, data string) {
		ev, err := NewMatchEvent(matchID, node, MatchEvent{Name: name, Data: json.RawMessage(data)})
		if err != nil {
			return
		}
		sameAsMarshal(t, ev)
		b, _ := Encode(ev)
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode refuses what New made: %v\n%s", err, b)
		}
		if again, err := Encode(back); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs (%v):\n%s\n%s", err, again, b)
		}
	})
}

// uuidV7Reference is the check checkUUIDv7 replaced, through the uuid
// package: FuzzCheckUUIDv7 holds the two equal.
func uuidV7Reference(s string) bool {
	if len(s) != uuidStringSize {
		return false
	}
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s && u.Version() == 7 && u.Variant() == uuid.RFC4122
}

func FuzzCheckUUIDv7(f *testing.F) {
	f.Add(uuid.Must(uuid.NewV7()).String())
	f.Add(strings.ToUpper(uuid.Must(uuid.NewV7()).String()))
	f.Add(uuid.New().String())                    // version 4
	f.Add("0190b6c2-3f4e-7c1a-c000-000000000000") // variant digit c
	f.Add("0190b6c2-3f4e-7c1a-8000-00000000000g")
	f.Add("{0190b6c2-3f4e-7c1a-8000-0000000000}")
	f.Add("0190b6c23f4e7c1a80000000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := checkUUIDv7(s) == nil, uuidV7Reference(s); got != want {
			t.Fatalf("checkUUIDv7(%q) accepts %v, the uuid package %v", s, got, want)
		}
	})
}
