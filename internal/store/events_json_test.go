package store

import (
	"encoding/json"
	"testing"
	"time"
)

// eventsJSON's array is what json_to_recordset reads back field for field;
// what JSON or PostgreSQL's text cannot carry sends the batch to the
// bound-values path instead.
func TestEventsJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	evs := []MatchEventRecord{
		{EventID: "e1", MatchID: `m"1\`, Name: "ñ 😀 \t", At: at, Data: []byte(`{"a":"\u00e9"}`)},
		{EventID: "e2", MatchID: "m2", Name: "n", At: at},
	}
	rows, ok := eventsJSON(evs)
	if !ok {
		t.Fatal("valid fields refused")
	}
	var got []struct {
		EventID string `json:"event_id"`
		MatchID string `json:"match_id"`
		Name    string `json:"name"`
		At      string `json:"at"`
		Data    string `json:"data"`
	}
	if err := json.Unmarshal([]byte(rows), &got); err != nil {
		t.Fatalf("%v\n%s", err, rows)
	}
	if len(got) != 2 || got[0].EventID != "e1" || got[0].MatchID != evs[0].MatchID || got[0].Name != evs[0].Name ||
		got[0].Data != string(evs[0].Data) || got[0].At != "2026-01-02T02:04:05.123456Z" || got[1].Data != "" {
		t.Fatalf("rows = %+v\n%s", got, rows)
	}
	for _, bad := range []MatchEventRecord{
		{EventID: "e", MatchID: "m", Name: "n", At: at, Data: []byte("\xff")},
		{EventID: "e", MatchID: "m\x00", Name: "n", At: at},
	} {
		if _, ok := eventsJSON([]MatchEventRecord{evs[1], bad}); ok {
			t.Errorf("eventsJSON accepted %+v", bad)
		}
	}
}
