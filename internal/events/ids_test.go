package events

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestStableID(t *testing.T) {
	created := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	a := StableID("m1", created, TypeMatchEvent, 42, 0)
	if a != StableID("m1", created, TypeMatchEvent, 42, 0) {
		t.Fatal("the same event got two ids")
	}
	if err := checkUUIDv7(a); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("%s: version %d variant %v err %v", a, u.Version(), u.Variant(), err)
	}
	seen := map[string]bool{a: true}
	for _, id := range []string{
		StableID("m2", created, TypeMatchEvent, 42, 0),
		StableID("m1", created, TypeMatchEnded, 42, 0),
		StableID("m1", created, TypeMatchEvent, 43, 0),
		StableID("m1", created, TypeMatchEvent, 42, 1),
	} {
		if seen[id] {
			t.Fatalf("two events share the id %s", id)
		}
		seen[id] = true
	}
	// Ids sort like the match's timeline: by tick, then place in the tick.
	order := []string{StableID("m1", created, TypeMatchEvent, 1, 0), StableID("m1", created, TypeMatchEvent, 1, 1),
		StableID("m1", created, TypeMatchEvent, 2, 0), StableID("m1", created, TypeMatchEvent, 300, 7)}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Fatalf("got %s before %s, want tick order", order[i-1], order[i])
		}
	}
	ev, err := NewMatchEventID(a, "m1", "node", MatchEvent{Name: "tag"})
	if err != nil || ev.ID != a {
		t.Fatalf("NewMatchEventID: %v %v", ev.ID, err)
	}
	if _, err := NewMatchEventID("not-a-uuid", "m1", "node", MatchEvent{Name: "tag"}); err == nil {
		t.Fatal("an invalid id was accepted")
	}
}
