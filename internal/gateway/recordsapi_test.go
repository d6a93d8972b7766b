package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/store"
)

// The read API serves what persistence wrote: a match's record with its
// results, a player's history, leaderboard top N and around a player; bad
// parameters and unknown ids get clear errors.
func TestRecordsAPI(t *testing.T) {
	e := newEnv(t)
	a, b := e.register("rosa"), e.register("saul")
	ended := time.Now().UTC().Truncate(time.Millisecond)
	id := uuid.Must(uuid.NewV7()).String()
	if _, err := e.st.ApplyChanges(context.Background(), []store.Change{
		store.StartChange(store.MatchStartRecord{EventID: uuid.Must(uuid.NewV7()).String(), MatchID: id, Mode: "arena", Node: "n1", StartedAt: ended.Add(-time.Minute)}),
		store.EndChange(store.MatchEndRecord{EventID: uuid.Must(uuid.NewV7()).String(), MatchID: id, Mode: "arena", Node: "n1", Reason: "time_limit",
			StartedAt: ended.Add(-time.Minute), EndedAt: ended, DurationMs: 60000, Results: []store.ResultRecord{
				{AccountID: a.AccountID, Placement: 1, Score: 7, Stats: map[string]float64{"tags": 7}},
				{AccountID: b.AccountID, Placement: 2, Score: 3},
			}}),
		store.EventChange(store.MatchEventRecord{EventID: uuid.Must(uuid.NewV7()).String(), MatchID: id, Name: "tag", At: ended.Add(-time.Second), Data: []byte(`{"by":"x"}`)}),
		store.EventChange(store.MatchEventRecord{EventID: uuid.Must(uuid.NewV7()).String(), MatchID: id, Name: "tag", At: ended}),
	}); err != nil {
		t.Fatal(err)
	}

	var evs struct {
		Events []struct {
			EventID string `json:"event_id"`
			Name    string
			Data    json.RawMessage
		}
		Next string
	}
	r0 := e.do("GET", "/v1/matches/"+id+"/events?limit=1", a.AccessToken, "", nil)
	r0.json(t, &evs)
	if r0.status != 200 || len(evs.Events) != 1 || evs.Events[0].Name != "tag" || string(evs.Events[0].Data) != `{"by":"x"}` || evs.Next == "" {
		t.Fatalf("match events: %d %s", r0.status, r0.body)
	}
	r0 = e.do("GET", "/v1/matches/"+id+"/events?after="+evs.Next, a.AccessToken, "", nil)
	evs.Events = nil
	r0.json(t, &evs)
	if r0.status != 200 || len(evs.Events) != 1 || evs.Events[0].Data != nil || evs.Next != "" {
		t.Fatalf("match events, page 2: %d %s", r0.status, r0.body)
	}
	for _, q := range []string{"limit=0", "limit=x", "after=" + strings.Repeat("z", 65)} {
		if r := e.do("GET", "/v1/matches/"+id+"/events?"+q, a.AccessToken, "", nil); r.status != 400 {
			t.Errorf("match events ?%s: %d %s", q, r.status, r.body)
		}
	}

	var m struct {
		Live  bool
		Match struct {
			MatchID   string `json:"match_id"`
			EndReason string `json:"end_reason"`
			Results   []struct {
				AccountID string `json:"account_id"`
				Placement int
				Score     int64
			}
		}
	}
	r := e.do("GET", "/v1/matches/"+id, a.AccessToken, "", nil)
	if r.status != 200 {
		t.Fatalf("match: %d %s", r.status, r.body)
	}
	r.json(t, &m)
	if m.Live || m.Match.MatchID != id || m.Match.EndReason != "time_limit" || len(m.Match.Results) != 2 || m.Match.Results[0].AccountID != a.AccountID || m.Match.Results[0].Score != 7 {
		t.Fatalf("match record: %s", r.body)
	}

	var hist struct {
		Matches []struct {
			MatchID string `json:"match_id"`
		}
		Next string
	}
	r = e.do("GET", "/v1/players/me/matches?limit=10", b.AccessToken, "", nil)
	r.json(t, &hist)
	if r.status != 200 || len(hist.Matches) != 1 || hist.Matches[0].MatchID != id || hist.Next != "" {
		t.Fatalf("history: %d %s", r.status, r.body)
	}

	var top struct {
		Records []struct {
			Rank      int
			AccountID string `json:"account_id"`
			Value     int64
		}
	}
	r = e.do("GET", "/v1/leaderboards/arena_best_score?limit=5", b.AccessToken, "", nil)
	r.json(t, &top)
	if r.status != 200 || len(top.Records) != 2 || top.Records[0].AccountID != a.AccountID || top.Records[0].Value != 7 || top.Records[1].Rank != 2 {
		t.Fatalf("top: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/leaderboards/arena_best_score/around/me?n=1", b.AccessToken, "", nil)
	r.json(t, &top)
	if r.status != 200 || len(top.Records) != 2 || top.Records[1].AccountID != b.AccountID || top.Records[1].Rank != 2 {
		t.Fatalf("around: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/matches/nope", http.StatusNotFound, "not_found"},
		{"/v1/leaderboards/nope", http.StatusNotFound, "not_found"},
		{"/v1/leaderboards/arena_best_score?limit=0", http.StatusBadRequest, "invalid_argument"},
		{"/v1/leaderboards/arena_best_score?limit=abc", http.StatusBadRequest, "invalid_argument"},
		{"/v1/players/me/matches?limit=1000", http.StatusBadRequest, "invalid_argument"},
		{"/v1/leaderboards/global_wins/around/nobody", http.StatusNotFound, "not_found"},
	} {
		r := e.do("GET", tc.path, a.AccessToken, "", nil)
		if r.status != tc.status || string(r.errBody(t).Code) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.path, r.status, r.body, tc.status, tc.code)
		}
	}
	if r := e.do("GET", "/v1/leaderboards", "", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", r.status)
	}
}
