package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/multijuego/multijuego/internal/store"
)

func topValues(t *testing.T, s *store.Store, board string, now time.Time) string {
	t.Helper()
	top, err := s.LeaderboardTop(ctx, board, now, 100)
	if err != nil {
		t.Fatalf("LeaderboardTop(%s): %v", board, err)
	}
	out := ""
	for _, r := range top {
		out += fmt.Sprintf("%d:%s=%d ", r.Rank, r.AccountID, r.Value)
	}
	return out
}

func testLeaderboardOperators(t *testing.T, s *store.Store) {
	boards, err := s.Leaderboards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Leaderboard{
		{ID: "arena_best_score", Mode: "arena", Metric: "score", Operator: "best", Reset: "never"},
		{ID: "arena_weekly_score", Mode: "arena", Metric: "score", Operator: "sum", Reset: "weekly"},
		{ID: "global_wins", Mode: "", Metric: "wins", Operator: "sum", Reset: "never"},
		{ID: "tictactoe_wins", Mode: "tictactoe", Metric: "wins", Operator: "sum", Reset: "never"},
	}
	if !reflect.DeepEqual(boards, want) {
		t.Fatalf("seeded boards:\n got %+v\nwant %+v", boards, want)
	}
	latest := store.Leaderboard{ID: "arena_latest_score", Mode: "arena", Metric: "score", Operator: "latest", Reset: "never"}
	if err := s.PutLeaderboard(ctx, latest); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLeaderboard(ctx, store.Leaderboard{ID: "x", Metric: "kills", Operator: "sum", Reset: "never"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad metric: %v", err)
	}
	at := func(h int) time.Time { return week0.Add(time.Duration(h) * time.Hour) }
	// Two batches; the second has two matches of the same players, so one
	// upsert folds several contributions per record.
	mustApply(t, s, 2,
		End(UUIDv7(), "arena", at(1), R("a", 1, 30), R("b", 2, 10)),
		End(UUIDv7(), "tictactoe", at(2), R("a", 2, 0), R("b", 1, 1)),
	)
	mustApply(t, s, 3,
		End(UUIDv7(), "arena", at(3), R("a", 2, 20), R("b", 1, 50)),
		End(UUIDv7(), "arena", at(4), R("a", 1, 25), R("b", 2, -5)),
		End(UUIDv7(), "arena", at(5), R("c", 1, 40)),
	)
	now := at(6)
	for board, want := range map[string]string{
		"arena_best_score":   "1:b=50 2:c=40 3:a=30 ",
		"arena_weekly_score": "1:a=75 2:b=55 3:c=40 ",
		"arena_latest_score": "1:c=40 2:a=25 3:b=-5 ",
		"global_wins":        "1:b=2 2:a=2 3:c=1 ", // b reached 2 wins at 3h, a at 4h
		"tictactoe_wins":     "1:b=1 2:a=0 ",
	} {
		if got := topValues(t, s, board, now); got != want {
			t.Errorf("%s: %s, want %s", board, got, want)
		}
	}
	// best keeps the time it was first reached; latest the last end time;
	// sum the time of the last contribution that changed it.
	for _, c := range []struct {
		board, account string
		at             time.Time
	}{
		{"arena_best_score", "a", at(1)},
		{"arena_latest_score", "b", at(4)},
		{"tictactoe_wins", "a", at(2)},
		{"global_wins", "a", at(4)},
		{"global_wins", "b", at(3)},
	} {
		r, err := s.LeaderboardRank(ctx, c.board, c.account, now)
		if err != nil || !r.UpdatedAt.Equal(c.at) {
			t.Errorf("%s/%s: updated %v, %v; want %v", c.board, c.account, r.UpdatedAt, err, c.at)
		}
	}
	// best does not go down and keeps the earliest time for an equal value.
	mustApply(t, s, 1, End(UUIDv7(), "arena", at(7), R("a", 1, 30), R("b", 2, 1)))
	if r, _ := s.LeaderboardRank(ctx, "arena_best_score", "a", now); r.Value != 30 || !r.UpdatedAt.Equal(at(1)) {
		t.Fatalf("best after an equal score: %+v", r)
	}
	if _, err := s.LeaderboardTop(ctx, "no_such_board", now, 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown board: %v", err)
	}
}

func testLeaderboardPeriods(t *testing.T, s *store.Store) {
	daily := store.Leaderboard{ID: "arena_daily_score", Mode: "arena", Metric: "score", Operator: "sum", Reset: "daily"}
	if err := s.PutLeaderboard(ctx, daily); err != nil {
		t.Fatal(err)
	}
	weekly := store.Leaderboard{Reset: "weekly"}
	for _, c := range []struct{ t, week, day string }{
		{"2026-03-02T00:00:00Z", "2026-03-02", "2026-03-02"}, // Monday midnight
		{"2026-03-01T23:59:59Z", "2026-02-23", "2026-03-01"}, // Sunday
		{"2026-03-08T12:00:00Z", "2026-03-02", "2026-03-08"},
		{"2026-03-04T01:00:00+03:00", "2026-03-02", "2026-03-03"}, // UTC decides
		{"2026-01-01T10:00:00Z", "2025-12-29", "2026-01-01"},
	} {
		tm, _ := time.Parse(time.RFC3339, c.t)
		if got := weekly.PeriodStart(tm).Format(time.DateOnly); got != c.week {
			t.Errorf("week of %s = %s, want %s", c.t, got, c.week)
		}
		if got := daily.PeriodStart(tm).Format(time.DateOnly); got != c.day {
			t.Errorf("day of %s = %s, want %s", c.t, got, c.day)
		}
	}
	if got := (store.Leaderboard{Reset: "never"}).PeriodStart(week0); !got.Equal(time.Unix(0, 0)) {
		t.Errorf("never: %v", got)
	}

	lastWeek := week0.Add(-3 * 24 * time.Hour) // Friday of the week before
	mustApply(t, s, 3,
		End(UUIDv7(), "arena", lastWeek, R("old", 1, 100), R("both", 2, 1)),
		End(UUIDv7(), "arena", week0, R("new", 1, 7), R("both", 2, 2)),
		End(UUIDv7(), "arena", week0.Add(24*time.Hour), R("new", 1, 5), R("both", 2, 3)),
	)
	for _, c := range []struct {
		board string
		now   time.Time
		want  string
	}{
		{"arena_weekly_score", week0.Add(48 * time.Hour), "1:new=12 2:both=5 "},
		{"arena_weekly_score", lastWeek.Add(time.Hour), "1:old=100 2:both=1 "},
		{"arena_weekly_score", week0.Add(7 * 24 * time.Hour), ""}, // the next week starts empty
		{"arena_daily_score", week0.Add(time.Hour), "1:new=7 2:both=2 "},
		{"arena_daily_score", week0.Add(25 * time.Hour), "1:new=5 2:both=3 "},
		{"arena_best_score", week0, "1:old=100 2:new=7 3:both=3 "}, // never resets
	} {
		if got := topValues(t, s, c.board, c.now); got != c.want {
			t.Errorf("%s at %v: %s, want %s", c.board, c.now, got, c.want)
		}
	}
	if _, err := s.LeaderboardRank(ctx, "arena_weekly_score", "old", week0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("last week's player in this week's board: %v, want ErrNotFound", err)
	}
}

func testLeaderboardRanking(t *testing.T, s *store.Store) {
	// arena_best_score with ties: equal values rank by earliest updated_at,
	// then account id.
	at := func(m int) time.Time { return week0.Add(time.Duration(m) * time.Minute) }
	mustApply(t, s, -1,
		End(UUIDv7(), "arena", at(1), R("u1", 1, 50), R("u2", 2, 30)),
		End(UUIDv7(), "arena", at(2), R("u3", 1, 50), R("u4", 2, 30)),
		End(UUIDv7(), "arena", at(0), R("u5", 1, 30), R("u6", 2, 10)),
		End(UUIDv7(), "arena", at(3), R("u7", 1, 30), R("u0", 2, 30)),
		End(UUIDv7(), "arena", at(4), R("u8", 1, 90), R("u9", 2, 5)),
	)
	want := []string{"u8", "u1", "u3", "u5", "u2", "u4", "u0", "u7", "u6", "u9"}
	top, err := s.LeaderboardTop(ctx, "arena_best_score", week0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, r := range top {
		got = append(got, r.AccountID)
		if r.Rank != i+1 {
			t.Fatalf("rank %d at position %d", r.Rank, i)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("top order %v, want %v", got, want)
	}
	if top3, _ := s.LeaderboardTop(ctx, "arena_best_score", week0, 3); len(top3) != 3 || !reflect.DeepEqual(top3, top[:3]) {
		t.Fatalf("top 3: %+v", top3)
	}
	for i, r := range top {
		rank, err := s.LeaderboardRank(ctx, "arena_best_score", r.AccountID, week0)
		if err != nil || !reflect.DeepEqual(rank, r) {
			t.Errorf("rank of %s: %+v, %v; want %+v", r.AccountID, rank, err, r)
		}
		for _, n := range []int{1, 2, 4} {
			around, err := s.LeaderboardAround(ctx, "arena_best_score", r.AccountID, week0, n)
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := max(0, i-n), min(len(top), i+n+1)
			if !reflect.DeepEqual(around, top[lo:hi]) {
				t.Errorf("around %s (n=%d):\n got %+v\nwant %+v", r.AccountID, n, around, top[lo:hi])
			}
		}
	}
	if _, err := s.LeaderboardAround(ctx, "arena_best_score", "stranger", week0, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("around a player without a record: %v", err)
	}
	if _, err := s.LeaderboardRank(ctx, "nope", "u1", week0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rank on an unknown board: %v", err)
	}
}
