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

// BenchmarkEncode is the publisher's cost per event (checks included).
func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"event", "ended8"} {
		ev := benchEvents(b)[name]
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
