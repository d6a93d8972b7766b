package events

import (
	"fmt"
	"testing"
)

// benchEvents are the events of an arena-like match: a key moment and a
// result of 8 players, what the persistence path carries most.
func benchEvents(b *testing.B) map[string]Event {
	mom, err := NewMatchEvent("m-1", "node-1", MatchEvent{Name: "tag", Data: []byte(`{"by":"a00042","tagged":"a00043"}`)})
	if err != nil {
		b.Fatal(err)
	}
	rs := make([]PlayerResult, 8)
	for i := range rs {
		rs[i] = PlayerResult{AccountID: fmt.Sprintf("a%05d", i*1009), Placement: i + 1, Score: int64(17 - i),
			Stats: map[string]float64{"tags": float64(i)}}
	}
	end, err := NewMatchEnded("m-1", "node-1", MatchEnded{Mode: "arena", Reason: "time_limit",
		StartedAt: t0, EndedAt: t0.Add(90e9), DurationMs: 90_000, Results: rs})
	if err != nil {
		b.Fatal(err)
	}
	return map[string]Event{"event": mom, "ended8": end}
}

// BenchmarkEncode is Encode's full check and encoding, what it costs for
// an event that did not come from a New function (or was changed since).
func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"event", "ended8"} {
		ev := benchEvents(b)[name]
		ev.wire = nil
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse is the persistence consumer's cost per message.
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"event", "ended8"} {
		data, err := Encode(benchEvents(b)[name])
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewEncode is a game node's cost per event: making it with a New
// function, then Encode as the publisher calls it.
func BenchmarkNewEncode(b *testing.B) {
	evs := benchEvents(b)
	mom, err := DecodeData[MatchEvent](evs["event"])
	if err != nil {
		b.Fatal(err)
	}
	end, err := DecodeData[MatchEnded](evs["ended8"])
	if err != nil {
		b.Fatal(err)
	}
	newEv := map[string]func() (Event, error){
		"event":  func() (Event, error) { return NewMatchEvent("m-1", "node-1", mom) },
		"ended8": func() (Event, error) { return NewMatchEnded("m-1", "node-1", end) },
	}
	for _, name := range []string{"event", "ended8"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ev, err := newEv[name]()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Encode(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
