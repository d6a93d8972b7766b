package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func personal(t testing.TB, p MatchEvent) Event {
	t.Helper()
	ev, err := NewMatchEvent("m1", "node-1", p)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// A personal event travels as owner + sealed, Decode and Parse give both
// back as sent, and its wire form is what JSON v2 writes.
func TestPersonalEventRoundTrip(t *testing.T) {
	for _, p := range []MatchEvent{
		{Name: "chat", Owner: "acc-1", Sealed: "sealed:AbC-_09"},
		{Name: "chat", Owner: "acc-1", Data: json.RawMessage(`{"say": "hi"}`)}, // sealing off: in clear, with its owner
	} {
		ev := personal(t, p)
		sameAsMarshal(t, ev)
		b, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if p.Sealed != "" && !strings.Contains(string(b), `"data":{"name":"chat","owner":"acc-1","sealed":"sealed:AbC-_09"}`) {
			t.Errorf("wire form %s", b)
		}
		got, pp, err := Parse(b)
		if err != nil || got.ID != ev.ID {
			t.Fatalf("Parse: %v", err)
		}
		m := pp.(*MatchEvent)
		if m.Owner != "acc-1" || m.Sealed != p.Sealed || (p.Data != nil) != (m.Data != nil) {
			t.Errorf("parsed %+v, want %+v", m, p)
		}
		dec, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := DecodeData[MatchEvent](dec); err != nil || d.Owner != "acc-1" || d.Sealed != p.Sealed {
			t.Errorf("DecodeData: %+v %v", d, err)
		}
	}
}

func TestPersonalEventRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		p    MatchEvent
	}{
		{"sealed without owner", MatchEvent{Name: "chat", Sealed: "sealed:AAAA"}},
		{"sealed and data", MatchEvent{Name: "chat", Owner: "a", Sealed: "sealed:AAAA", Data: json.RawMessage(`1`)}},
		{"no prefix", MatchEvent{Name: "chat", Owner: "a", Sealed: "AAAA"}},
		{"prefix only", MatchEvent{Name: "chat", Owner: "a", Sealed: "sealed:"}},
		{"not base64url", MatchEvent{Name: "chat", Owner: "a", Sealed: "sealed:AA+/="}},
		{"owner too long", MatchEvent{Name: "chat", Owner: strings.Repeat("a", MaxIDLen+1), Sealed: "sealed:AA"}},
		{"owner with control character", MatchEvent{Name: "chat", Owner: "a\n", Sealed: "sealed:AA"}},
	} {
		if _, err := NewMatchEvent("m1", "n", c.p); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: NewMatchEvent: %v, want ErrInvalid", c.name, err)
		}
		good := personal(t, MatchEvent{Name: "chat", Owner: "acc-1", Sealed: "sealed:AA"})
		data, _ := json.Marshal(c.p)
		good.Data, good.wire = data, nil
		if _, err := Encode(good); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Encode: %v, want ErrInvalid", c.name, err)
		}
	}
}

func TestPersonalRecord(t *testing.T) {
	if got := PersonalRecord("m1", "e1"); got != "event:m1:e1" {
		t.Errorf("PersonalRecord = %q", got)
	}
}

// Version 2 is a personal match.event's, and only theirs: a consumer that
// knows version 1 only refuses personal events instead of misreading them.
func TestPersonalEventVersion(t *testing.T) {
	ev := personal(t, MatchEvent{Name: "chat", Owner: "acc-1", Sealed: "sealed:AA"})
	if ev.Version != VersionPersonal {
		t.Fatalf("personal event version %d, want %d", ev.Version, VersionPersonal)
	}
	if m := moment(t, "m1", 1); m.Version != Version {
		t.Fatalf("ordinary event version %d", m.Version)
	}
	for _, c := range []struct {
		name string
		ev   Event
		v    int
	}{
		{"personal at version 1", ev, Version},
		{"ordinary match.event at version 2", moment(t, "m1", 1), VersionPersonal},
		{"match.ended at version 2", ended(t, "m1"), VersionPersonal},
		{"version 3", ev, 3},
	} {
		c.ev.Version = c.v
		if _, err := Encode(c.ev); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Encode: %v, want ErrInvalid", c.name, err)
		}
		c.ev.wire = nil
		b := appendEnvelope(nil, &c.ev)
		if _, err := Decode(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode: %v, want ErrInvalid", c.name, err)
		}
		if _, _, err := Parse(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse: %v, want ErrInvalid", c.name, err)
		}
	}
}
