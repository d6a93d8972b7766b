package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/multijuego/multijuego/match"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ended(t testing.TB, matchID string) Event {
	t.Helper()
	ev, err := NewMatchEnded(matchID, "node-1", MatchEnded{
		Mode: "arena", Label: `{"map":"dunes"}`, Reason: "winner",
		StartedAt: t0, EndedAt: t0.Add(90 * time.Second), DurationMs: 90_000,
		Results: []PlayerResult{
			{AccountID: "acc-1", Placement: 1, Score: 12, Stats: map[string]float64{"tags": 3, "distance": 1.5}},
			{AccountID: "acc-2", Placement: 2, Score: -4},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func started(t testing.TB, matchID string) Event {
	t.Helper()
	ev, err := NewMatchStarted(matchID, "node-1", MatchStarted{Mode: "arena", Players: []string{"acc-1", "acc-2"}})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func moment(t testing.TB, matchID string, i int) Event {
	t.Helper()
	ev, err := NewMatchEvent(matchID, "node-1", MatchEvent{Name: "goal", Data: json.RawMessage(`{"by": "acc-1", "n": ` + string(rune('0'+i%10)) + `}`)})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestRoundTrip(t *testing.T) {
	for _, ev := range []Event{started(t, "m1"), moment(t, "m1", 1), ended(t, "m1")} {
		b, err := Encode(ev)
		if err != nil {
			t.Fatalf("%s: encode: %v", ev.Type, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: decode: %v\n%s", ev.Type, err, b)
		}
		if got.ID != ev.ID || got.Type != ev.Type || got.Version != 1 || got.MatchID != ev.MatchID ||
			!got.Time.Equal(ev.Time) || got.Time.Location() != time.UTC || got.Node != ev.Node {
			t.Fatalf("envelope changed: %+v -> %+v", ev, got)
		}
		b2, err := Encode(got)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("re-encode differs (%v):\n%s\n%s", err, b, b2)
		}
	}
	e := ended(t, "m2")
	p, err := DecodeData[MatchEnded](e)
	if err != nil {
		t.Fatal(err)
	}
	if p.Reason != "winner" || len(p.Results) != 2 || p.Results[0].Stats["tags"] != 3 || p.Results[1].Score != -4 || !p.EndedAt.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("payload: %+v", p)
	}
	if _, err := DecodeData[MatchStarted](e); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong payload type: %v", err)
	}
	m, err := DecodeData[MatchEvent](moment(t, "m3", 4))
	if err != nil || m.Name != "goal" || string(m.Data) != `{"by":"acc-1","n":4}` {
		t.Fatalf("match.event: %+v %v", m, err)
	}
}

func TestIDsAreTimeOrderedUUIDv7(t *testing.T) {
	prev := ""
	for i := 0; i < 1000; i++ {
		ev := started(t, "m")
		if len(ev.ID) != 36 || ev.ID[14] != '7' {
			t.Fatalf("not a v7 uuid: %s", ev.ID)
		}
		if ev.ID <= prev {
			t.Fatalf("ids not increasing: %s after %s", ev.ID, prev)
		}
		prev = ev.ID
	}
}

func TestEndedFromSummary(t *testing.T) {
	s := match.Summary{ID: "m", Mode: "arena", Label: "l", Created: t0, Ended: t0.Add(1500 * time.Millisecond),
		Results: match.Results{Reason: "draw", Players: []match.PlayerResult{
			{Presence: match.Presence{UserID: "a", SessionID: "s"}, Placement: 1, Score: 3, Stats: map[string]float64{"x": 1}},
			{Presence: match.Presence{UserID: "b"}, Placement: 1, Score: 3},
		}}}
	p := EndedFromSummary(s)
	if p.DurationMs != 1500 || p.Reason != "draw" || p.Results[0].AccountID != "a" || p.Results[1].Placement != 1 {
		t.Fatalf("%+v", p)
	}
	if _, err := NewMatchEnded(s.ID, "n", p); err != nil {
		t.Fatal(err)
	}
	// An engine-ended match (shutdown) has a reason and no results.
	p = EndedFromSummary(match.Summary{ID: "m", Mode: "arena", Created: t0, Ended: t0, Results: match.Results{Reason: string(match.ReasonShutdown)}})
	if _, err := NewMatchEnded("m", "n", p); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := ended(t, "m1")
	b, _ := Encode(good)
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	// with returns the good event's JSON with one envelope field changed
	// (nil deletes it).
	with := func(k string, v any) string {
		m := map[string]any{}
		for k, v := range env {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		out, _ := json.Marshal(m)
		return string(out)
	}
	data := func(s string) string { return with("data", json.RawMessage(s)) }
	okEnded := `"mode":"arena","reason":"winner","started_at":"2025-06-01T12:00:00Z","ended_at":"2025-06-01T12:01:00Z","duration_ms":60000`
	result := func(r string) string { return data(`{` + okEnded + `,"results":[` + r + `]}`) }
	manyResults := make([]string, 257)
	for i := range manyResults {
		manyResults[i] = `{"account_id":"a` + strings.Repeat("x", i%5) + string(rune('A'+i%26)) + `-` + itoa(i) + `","placement":1,"score":0}`
	}

	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, ErrMalformed},
		{"not json", `hello`, ErrMalformed},
		{"array", `[1,2]`, ErrMalformed},
		{"truncated", string(b[:len(b)-3]), ErrMalformed},
		{"trailing data", string(b) + ` {}`, ErrMalformed},
		{"unknown field", with("extra", 1), ErrMalformed},
		{"wrong type", with("version", "1"), ErrMalformed},
		{"data not an object", data(`"x"`), ErrMalformed},
		{"data null", data(`null`), ErrMalformed},
		{"data unknown field", data(`{` + okEnded + `,"results":[],"winner":"a"}`), ErrMalformed},
		{"result unknown field", result(`{"account_id":"a","placement":1,"score":0,"rank":1}`), ErrMalformed},
		{"score not integer", result(`{"account_id":"a","placement":1,"score":1.5}`), ErrMalformed},
		{"version 2", with("version", 2), ErrInvalid},
		{"version missing", with("version", nil), ErrInvalid},
		{"unknown type", with("type", "match.paused"), ErrInvalid},
		{"type missing", with("type", nil), ErrInvalid},
		{"id missing", with("id", nil), ErrInvalid},
		{"id not uuid", with("id", "abc"), ErrInvalid},
		{"id uuid v4", with("id", "0b6f7c8e-5d4a-4c3b-9a21-3f1e2d4c5b6a"), ErrInvalid},
		{"id uppercase", with("id", strings.ToUpper(good.ID)), ErrInvalid},
		{"match id missing", with("match_id", nil), ErrInvalid},
		{"match id too long", with("match_id", strings.Repeat("m", 129)), ErrInvalid},
		{"match id control char", with("match_id", "m\n1"), ErrInvalid},
		{"node missing", with("node", ""), ErrInvalid},
		{"time missing", with("time", nil), ErrInvalid},
		{"time before 1970", with("time", "1969-12-31T23:59:59Z"), ErrInvalid},
		{"data missing", with("data", nil), ErrInvalid},
		{"mode missing", data(`{"reason":"winner","started_at":"2025-06-01T12:00:00Z","ended_at":"2025-06-01T12:01:00Z","duration_ms":1,"results":[]}`), ErrInvalid},
		{"reason missing", data(`{"mode":"arena","started_at":"2025-06-01T12:00:00Z","ended_at":"2025-06-01T12:01:00Z","duration_ms":1,"results":[]}`), ErrInvalid},
		{"ended before started", data(`{"mode":"arena","reason":"x","started_at":"2025-06-01T12:00:00Z","ended_at":"2025-06-01T11:00:00Z","duration_ms":1,"results":[]}`), ErrInvalid},
		{"started missing", data(`{"mode":"arena","reason":"x","ended_at":"2025-06-01T11:00:00Z","duration_ms":1,"results":[]}`), ErrInvalid},
		{"negative duration", data(`{"mode":"arena","reason":"x","started_at":"2025-06-01T12:00:00Z","ended_at":"2025-06-01T12:00:00Z","duration_ms":-1,"results":[]}`), ErrInvalid},
		{"placement 0", result(`{"account_id":"a","placement":0,"score":0}`), ErrInvalid},
		{"placement missing", result(`{"account_id":"a","score":0}`), ErrInvalid},
		{"account id empty", result(`{"account_id":"","placement":1,"score":0}`), ErrInvalid},
		{"account twice", result(`{"account_id":"a","placement":1,"score":0},{"account_id":"a","placement":2,"score":0}`), ErrInvalid},
		{"stat name empty", result(`{"account_id":"a","placement":1,"score":0,"stats":{"":1}}`), ErrInvalid},
		{"257 results", result(strings.Join(manyResults, ",")), ErrInvalid},
		{"started: mode missing", with("type", TypeMatchStarted) + "", ErrMalformed}, // ended payload under started: unknown fields
		{"too large", with("node", strings.Repeat("n", MaxEventBytes)), ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode(%.200s) = %v, want %v", c.in, err, c.want)
			}
			other := ErrInvalid
			if c.want == ErrInvalid {
				other = ErrMalformed
			}
			if errors.Is(err, other) {
				t.Fatalf("error wraps both: %v", err)
			}
		})
	}

	startedCases := []struct {
		name string
		data string
		want error
	}{
		{"ok", `{"mode":"arena","players":["a","b"]}`, nil},
		{"ok no players", `{"mode":"arena","players":[]}`, nil},
		{"mode missing", `{"players":["a"]}`, ErrInvalid},
		{"empty player", `{"mode":"arena","players":[""]}`, ErrInvalid},
		{"player twice", `{"mode":"arena","players":["a","a"]}`, ErrInvalid},
		{"players not strings", `{"mode":"arena","players":[1]}`, ErrMalformed},
	}
	for _, c := range startedCases {
		t.Run("started "+c.name, func(t *testing.T) {
			m := map[string]any{}
			for k, v := range env {
				m[k] = v
			}
			m["type"] = TypeMatchStarted
			m["data"] = json.RawMessage(c.data)
			in, _ := json.Marshal(m)
			_, err := Decode(in)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}

	// The constructors refuse what Decode would refuse.
	if _, err := NewMatchEnded("m", "n", MatchEnded{Mode: "a", Reason: "r", StartedAt: t0, EndedAt: t0,
		Results: []PlayerResult{{AccountID: "a", Placement: 0}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("placement 0: %v", err)
	}
	if _, err := NewMatchEvent("", "n", MatchEvent{Name: "x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no match id: %v", err)
	}
	if _, err := NewMatchEvent("m", "n", MatchEvent{Name: "x", Data: json.RawMessage(`{bad`)}); err == nil {
		t.Fatal("bad match.event data accepted")
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// FuzzDecode: Decode never panics, errors are classified, and what it
// accepts encodes and decodes to the same event.
func FuzzDecode(f *testing.F) {
	for _, ev := range []Event{started(f, "m"), moment(f, "m", 2), ended(f, "m")} {
		b, _ := Encode(ev)
		f.Add(b)
	}
	pe, _ := NewMatchEvent("m", "n", MatchEvent{Name: "chat", Owner: "acc-1", Sealed: "sealed:AbC-_09"})
	if b, err := Encode(pe); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"id":"","type":"match.ended","version":1,"data":{}}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, err := Decode(in)
		pev, pp, perr := Parse(in)
		if (err == nil) != (perr == nil) {
			t.Fatalf("Decode error %v but Parse error %v\n%q", err, perr, in)
		}
		if err == nil {
			var want any
			switch ev.Type {
			case TypeMatchStarted:
				v, derr := DecodeData[MatchStarted](ev)
				want, err = &v, derr
			case TypeMatchEvent:
				v, derr := DecodeData[MatchEvent](ev)
				want, err = &v, derr
			default:
				v, derr := DecodeData[MatchEnded](ev)
				want, err = &v, derr
			}
			if err != nil || pev.ID != ev.ID || pev.Type != ev.Type || pev.MatchID != ev.MatchID || !pev.Time.Equal(ev.Time) ||
				!reflect.DeepEqual(normJSON(t, pp), normJSON(t, want)) {
				t.Fatalf("Parse disagrees with Decode+DecodeData (%v):\n%+v %+v\n%+v %+v", err, pev, pp, ev, want)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		b, err := Encode(ev)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v\n%q", err, in)
		}
		ev2, err := Decode(b)
		if err != nil {
			t.Fatalf("encoded event does not decode: %v\n%s", err, b)
		}
		b2, err := Encode(ev2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("not stable (%v):\n%s\n%s", err, b, b2)
		}
		if ev2.ID != ev.ID || !ev2.Time.Equal(ev.Time) || !bytes.Equal(ev.Data, ev2.Data) {
			t.Fatalf("changed: %+v -> %+v", ev, ev2)
		}
	})
}

// normJSON is v as JSON, for comparing payloads whose raw parts (MatchEvent's
// Data) may differ only in spacing.
func normJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// Encode takes the wire form New made only while the event is unchanged:
// it equals the full check-and-encode, and any change to a field (even
// inside Data's array) goes through the full path again.
func TestEncodeReusesNewOnlyWhileUnchanged(t *testing.T) {
	slow := func(ev Event) ([]byte, error) {
		ev.wire = nil
		return Encode(ev)
	}
	for _, ev := range []Event{started(t, "m1"), moment(t, "m1", 1), ended(t, "m1")} {
		if ev.wire == nil {
			t.Fatalf("%s: New kept no wire form", ev.Type)
		}
		fast, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		full, err := slow(ev)
		if err != nil || !bytes.Equal(fast, full) {
			t.Fatalf("%s: kept wire form differs from the full encoding (%v):\n%s\n%s", ev.Type, err, fast, full)
		}
		fast[0] = 'X' // the caller's copy
		if again, _ := Encode(ev); !bytes.Equal(again, full) {
			t.Fatalf("%s: a returned slice shares the kept form", ev.Type)
		}
	}
	ev := moment(t, "m2", 2)
	changed := ev
	changed.Node = "node-2"
	if b, err := Encode(changed); err != nil || !bytes.Contains(b, []byte(`"node":"node-2"`)) {
		t.Fatalf("changed node: %s %v", b, err)
	}
	changed = ev
	changed.Time = ev.Time.Add(time.Second)
	if b, _ := Encode(changed); !bytes.Contains(b, []byte(changed.Time.Format(time.RFC3339Nano))) {
		t.Fatalf("changed time not encoded: %s", b)
	}
	changed = ev
	changed.Version = 2
	if _, err := Encode(changed); !errors.Is(err, ErrInvalid) {
		t.Fatalf("changed version: %v", err)
	}
	changed = ev
	changed.MatchID = ""
	if _, err := Encode(changed); !errors.Is(err, ErrInvalid) {
		t.Fatalf("emptied match id: %v", err)
	}
	ev.Data[0] = '[' // in place: the same array New encoded from
	if _, err := Encode(ev); !errors.Is(err, ErrMalformed) {
		t.Fatalf("data changed in place: %v", err)
	}
}
