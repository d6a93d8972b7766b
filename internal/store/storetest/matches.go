package storetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/multijuego/multijuego/internal/store"
)

// The match-results part of the conformance suite.

// UUIDv7 returns a new time-ordered id, as the game nodes make them.
func UUIDv7() string { return uuid.Must(uuid.NewV7()).String() }

// End builds a match-ended change for tests: players are given as
// account ids with placement and score.
func End(matchID, mode string, ended time.Time, results ...store.ResultRecord) store.Change {
	return store.EndChange(store.MatchEndRecord{
		EventID: UUIDv7(), MatchID: matchID, Mode: mode, Label: mode + " match", Node: "node-1", Reason: "finished",
		StartedAt: ended.Add(-time.Minute), EndedAt: ended, DurationMs: 60000, Results: results,
	})
}

// Start builds a match-started change for tests.
func Start(matchID, mode string, started time.Time) store.Change {
	return store.StartChange(store.MatchStartRecord{
		EventID: UUIDv7(), MatchID: matchID, Mode: mode, Label: mode + " match", Node: "node-1", StartedAt: started,
	})
}

// R is a result without stats.
func R(account string, placement int, score int64) store.ResultRecord {
	return store.ResultRecord{AccountID: account, Placement: placement, Score: score}
}

func mustApply(t *testing.T, s *store.Store, want int, cs ...store.Change) {
	t.Helper()
	n, err := s.ApplyChanges(ctx, cs)
	if err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}
	if want >= 0 && n != want {
		t.Fatalf("ApplyChanges applied %d, want %d", n, want)
	}
}

// a Monday, 10:00 UTC
var week0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func testMatchLifecycle(t *testing.T, s *store.Store) {
	id := UUIDv7()
	start := Start(id, "arena", week0)
	mustApply(t, s, 1, start)
	m, err := s.Match(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := store.MatchRecord{ID: id, Mode: "arena", Label: "arena match", Node: "node-1", StartedAt: week0}
	if !reflect.DeepEqual(m, want) || m.Ended() {
		t.Fatalf("running match:\n got %+v\nwant %+v", m, want)
	}
	end := End(id, "arena", week0.Add(90*time.Second+123456*time.Nanosecond),
		store.ResultRecord{AccountID: "bob", Placement: 2, Score: 5, Stats: map[string]float64{"kills": 1, "accuracy": 0.25}},
		store.ResultRecord{AccountID: "alice", Placement: 1, Score: 12},
		store.ResultRecord{AccountID: "carol", Placement: 2, Score: 5, Stats: map[string]float64{}},
	)
	end.End.StartedAt, end.End.DurationMs, end.End.Reason = week0, 90000, "timeout"
	mustApply(t, s, 1, end)
	m, err = s.Match(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want.EndedAt = week0.Add(90*time.Second + 123*time.Microsecond) // microsecond precision
	want.DurationMs, want.EndReason = 90000, "timeout"
	want.Results = []store.ResultRecord{
		{AccountID: "alice", Placement: 1, Score: 12},
		{AccountID: "bob", Placement: 2, Score: 5, Stats: map[string]float64{"kills": 1, "accuracy": 0.25}},
		{AccountID: "carol", Placement: 2, Score: 5},
	}
	if !reflect.DeepEqual(m, want) || !m.Ended() {
		t.Fatalf("ended match:\n got %+v\nwant %+v", m, want)
	}
	if _, err := s.Match(ctx, "no-such-match"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing match: err = %v, want ErrNotFound", err)
	}

	// Malformed changes fail the whole batch.
	good := End(UUIDv7(), "arena", week0, R("alice", 1, 1))
	for name, bad := range map[string]store.Change{
		"empty change":      {},
		"both set":          {Start: start.Start, End: end.End},
		"no event id":       store.EndChange(store.MatchEndRecord{MatchID: "m", Mode: "arena", StartedAt: week0, EndedAt: week0}),
		"no mode":           store.StartChange(store.MatchStartRecord{EventID: "e", MatchID: "m", StartedAt: week0}),
		"no end time":       store.EndChange(store.MatchEndRecord{EventID: "e", MatchID: "m", Mode: "arena", StartedAt: week0}),
		"placement 0":       End("m", "arena", week0, R("alice", 0, 1)),
		"duplicate account": End("m", "arena", week0, R("alice", 1, 1), R("alice", 2, 1)),
		"NaN stat":          End("m", "arena", week0, store.ResultRecord{AccountID: "a", Placement: 1, Stats: map[string]float64{"x": math.NaN()}}),
	} {
		if n, err := s.ApplyChanges(ctx, []store.Change{good, bad}); !errors.Is(err, store.ErrInvalid) || n != 0 {
			t.Errorf("%s: applied %d, err %v; want 0, ErrInvalid", name, n, err)
		}
	}
	if _, err := s.Match(ctx, good.End.MatchID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a change of a refused batch was applied: %v", err)
	}
	if n, err := s.ApplyChanges(ctx, nil); n != 0 || err != nil {
		t.Fatalf("empty batch: %d, %v", n, err)
	}
}

// snapshot is everything ApplyChanges writes, read through the API.
type snapshot struct {
	Matches map[string]store.MatchRecord
	Stats   map[string][]store.PlayerStatsRecord
	Boards  map[string][]store.RankedRecord // "board@period" -> top records
}

// takeSnapshot reads the given matches, the stats of the given accounts and
// every board's periods containing a day in [from, to].
func takeSnapshot(t *testing.T, s *store.Store, matches, accounts []string, from, to time.Time) snapshot {
	t.Helper()
	snap := snapshot{Matches: map[string]store.MatchRecord{}, Stats: map[string][]store.PlayerStatsRecord{}, Boards: map[string][]store.RankedRecord{}}
	for _, id := range matches {
		m, err := s.Match(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		snap.Matches[id] = m
	}
	for _, a := range accounts {
		st, err := s.PlayerStats(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		snap.Stats[a] = st
	}
	boards, err := s.Leaderboards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boards {
		for day := from; !day.After(to); day = day.Add(24 * time.Hour) {
			key := b.ID + "@" + b.PeriodStart(day).Format(time.DateOnly)
			if _, ok := snap.Boards[key]; ok {
				continue
			}
			top, err := s.LeaderboardTop(ctx, b.ID, day, 1000)
			if err != nil {
				t.Fatal(err)
			}
			snap.Boards[key] = top
		}
	}
	return snap
}

func diffSnapshots(t *testing.T, what string, got, want snapshot) {
	t.Helper()
	for id := range want.Matches {
		if !reflect.DeepEqual(got.Matches[id], want.Matches[id]) {
			t.Errorf("%s: match %s:\n got %+v\nwant %+v", what, id, got.Matches[id], want.Matches[id])
		}
	}
	for a := range want.Stats {
		if !reflect.DeepEqual(got.Stats[a], want.Stats[a]) {
			t.Errorf("%s: stats of %s:\n got %+v\nwant %+v", what, a, got.Stats[a], want.Stats[a])
		}
	}
	for k := range want.Boards {
		if !reflect.DeepEqual(got.Boards[k], want.Boards[k]) {
			t.Errorf("%s: board %s:\n got %+v\nwant %+v", what, k, got.Boards[k], want.Boards[k])
		}
	}
}

func testApplyIdempotent(t *testing.T, s *store.Store) {
	players := []string{"p1", "p2", "p3", "p4"}
	var ids []string
	var batch []store.Change
	for i := 0; i < 6; i++ {
		id := UUIDv7()
		ids = append(ids, id)
		at := week0.Add(time.Duration(i) * time.Hour)
		batch = append(batch, Start(id, "arena", at.Add(-time.Minute)),
			End(id, "arena", at, R(players[i%4], 1, int64(10+i)), R(players[(i+1)%4], 2, int64(i))))
	}
	mustApply(t, s, len(batch), batch...)
	before := takeSnapshot(t, s, ids, players, week0, week0.Add(24*time.Hour))
	// The same batch again: nothing applied, nothing changed.
	mustApply(t, s, 0, batch...)
	diffSnapshots(t, "same batch twice", takeSnapshot(t, s, ids, players, week0, week0.Add(24*time.Hour)), before)

	// A batch where one event repeats an earlier batch's and another repeats
	// one of the same batch: only the two new events count.
	id := UUIDv7()
	ids = append(ids, id)
	fresh := End(id, "arena", week0.Add(7*time.Hour), R("p1", 1, 3), R("p2", 2, 1))
	mustApply(t, s, 1, batch[3], fresh, fresh)
	after := takeSnapshot(t, s, ids, players, week0, week0.Add(24*time.Hour))
	var p1Before, p1After store.PlayerStatsRecord
	for _, st := range before.Stats["p1"] {
		if st.Mode == "" {
			p1Before = st
		}
	}
	for _, st := range after.Stats["p1"] {
		if st.Mode == "" {
			p1After = st
		}
	}
	if p1After.Games != p1Before.Games+1 || p1After.Wins != p1Before.Wins+1 || p1After.ScoreSum != p1Before.ScoreSum+3 {
		t.Fatalf("p1 after one new match: %+v; before %+v", p1After, p1Before)
	}

	// Another end event (new event id) for a match that already ended is
	// recorded but changes nothing: the first end wins.
	again := End(ids[0], "arena", week0.Add(8*time.Hour), R("p3", 1, 100))
	mustApply(t, s, 1, again)
	diffSnapshots(t, "second end of a match", takeSnapshot(t, s, ids, players, week0, week0.Add(24*time.Hour)), after)

	// Two ends of one new match in one batch: the first in batch order wins.
	id2 := UUIDv7()
	e1 := End(id2, "tictactoe", week0.Add(9*time.Hour), R("p1", 1, 1), R("p2", 2, 0))
	e2 := End(id2, "tictactoe", week0.Add(10*time.Hour), R("p3", 1, 1), R("p4", 2, 0))
	mustApply(t, s, 2, e1, e2)
	m, err := s.Match(ctx, id2)
	if err != nil || len(m.Results) != 2 || m.Results[0].AccountID != "p1" || !m.EndedAt.Equal(week0.Add(9*time.Hour)) {
		t.Fatalf("match with two ends in a batch: %+v, %v", m, err)
	}
	if st, _ := s.PlayerStats(ctx, "p3"); st[len(st)-1].Mode == "tictactoe" {
		t.Fatalf("the losing end was counted for p3: %+v", st)
	}
}

func testConcurrentApply(t *testing.T, s *store.Store) {
	// Overlapping batches from several goroutines: every event is applied
	// exactly once in all.
	var all []store.Change
	for i := 0; i < 60; i++ {
		all = append(all, End(UUIDv7(), "arena", week0.Add(time.Duration(i)*time.Second), R("x", 1+i%2, 1), R("y", 2-i%2, 1)))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for lo := g * 5; lo < len(all); lo += 20 {
				n, err := s.ApplyChanges(ctx, all[lo:min(lo+20, len(all))])
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	if total != len(all) {
		t.Fatalf("applied %d in all, want %d", total, len(all))
	}
	st, err := s.PlayerStats(ctx, "x")
	if err != nil || len(st) != 2 || st[0].Games != 60 || st[0].Wins != 30 {
		t.Fatalf("stats of x: %+v, %v", st, err)
	}
}

func testStartAfterEnd(t *testing.T, s *store.Store) {
	id := UUIDv7()
	end := End(id, "arena", week0.Add(time.Hour), R("a", 1, 10), R("b", 2, 3))
	mustApply(t, s, 1, end)
	want, err := s.Match(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	late := Start(id, "arena", week0.Add(-time.Hour))
	late.Start.Label, late.Start.Node = "relabelled", "node-9"
	mustApply(t, s, 1, late)
	got, err := s.Match(ctx, id)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after a late start:\n got %+v, %v\nwant %+v", got, err, want)
	}

	// In one batch: end, then its start.
	id2 := UUIDv7()
	end2 := End(id2, "arena", week0.Add(2*time.Hour), R("a", 1, 10), R("b", 2, 3))
	start2 := Start(id2, "arena", week0.Add(-time.Hour))
	start2.Start.Label = "relabelled"
	mustApply(t, s, 2, end2, start2)
	got, err = s.Match(ctx, id2)
	if err != nil || !got.Ended() || got.Label != "arena match" || got.EndReason != "finished" || len(got.Results) != 2 {
		t.Fatalf("end then start in one batch: %+v, %v", got, err)
	}

	// Start then end in one batch, and a start refreshing a running match.
	id3 := UUIDv7()
	s3 := Start(id3, "arena", week0)
	s3b := Start(id3, "arena", week0)
	s3b.Start.Node = "node-2"
	mustApply(t, s, 2, s3, s3b)
	if got, _ := s.Match(ctx, id3); got.Node != "node-2" || got.Ended() {
		t.Fatalf("second start of a running match: %+v", got)
	}
	mustApply(t, s, 1, End(id3, "arena", week0.Add(time.Minute), R("a", 1, 1)))
	if got, _ := s.Match(ctx, id3); !got.Ended() || got.Node != "node-1" {
		t.Fatalf("end after starts: %+v", got)
	}
	st, err := s.PlayerStats(ctx, "a")
	if err != nil || len(st) != 2 || st[0].Games != 3 || st[1].Games != 3 || st[0].Mode != "" || st[1].Mode != "arena" {
		t.Fatalf("stats of a: %+v, %v", st, err)
	}
}

func elo(ri, rj, score float64) float64 {
	return store.RatingK * (score - 1/(1+math.Pow(10, (rj-ri)/400)))
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func testStatsAndRating(t *testing.T, s *store.Store) {
	m1, m2, m3, m4 := UUIDv7(), UUIDv7(), UUIDv7(), UUIDv7()
	// m2 ends before m1 in the same batch: applied in end order.
	mustApply(t, s, 3,
		End(m1, "arena", week0.Add(2*time.Hour), R("ann", 2, 4), R("ben", 1, 9)),
		End(m2, "arena", week0.Add(time.Hour), R("ann", 1, 10), R("ben", 2, 3)),
		End(m3, "tictactoe", week0.Add(3*time.Hour), R("ann", 1, 1), R("ben", 2, 0)),
	)
	// m2: both 1500, ann wins: +16 / -16.
	ann, ben := 1500+elo(1500, 1500, 1), 1500+elo(1500, 1500, 0)
	if !near(ann, 1516) || !near(ben, 1484) {
		t.Fatalf("elo helper: %v %v", ann, ben)
	}
	// m1: ben wins from 1484 against 1516.
	ann, ben = ann+elo(ann, ben, 0), ben+elo(ben, ann, 1)
	annAll, benAll := ann, ben // the all-modes ratings saw the same two arena matches
	// m3 (tictactoe): fresh tictactoe ratings; all-modes ratings continue.
	annT, benT := 1500+elo(1500, 1500, 1), 1500+elo(1500, 1500, 0)
	annAll, benAll = annAll+elo(annAll, benAll, 1), benAll+elo(benAll, annAll, 0)

	st, err := s.PlayerStats(ctx, "ann")
	if err != nil || len(st) != 3 {
		t.Fatalf("stats of ann: %+v, %v", st, err)
	}
	want := []store.PlayerStatsRecord{
		{AccountID: "ann", Mode: "", Games: 3, Wins: 2, ScoreSum: 15, Rating: annAll, UpdatedAt: week0.Add(3 * time.Hour)},
		{AccountID: "ann", Mode: "arena", Games: 2, Wins: 1, ScoreSum: 14, Rating: ann, UpdatedAt: week0.Add(2 * time.Hour)},
		{AccountID: "ann", Mode: "tictactoe", Games: 1, Wins: 1, ScoreSum: 1, Rating: annT, UpdatedAt: week0.Add(3 * time.Hour)},
	}
	for i := range want {
		g, w := st[i], want[i]
		if !near(g.Rating, w.Rating) {
			t.Errorf("ann %q rating %v, want %v", w.Mode, g.Rating, w.Rating)
		}
		g.Rating, w.Rating = 0, 0
		if !reflect.DeepEqual(g, w) {
			t.Errorf("ann stats:\n got %+v\nwant %+v", g, w)
		}
	}
	bst, _ := s.PlayerStats(ctx, "ben")
	if len(bst) != 3 || !near(bst[0].Rating, benAll) || !near(bst[1].Rating, ben) || !near(bst[2].Rating, benT) || bst[1].Wins != 1 {
		t.Fatalf("stats of ben: %+v; want ratings %v %v %v", bst, benAll, ben, benT)
	}
	// Zero sum in a 4-player match with a tie; ties for first both win.
	mustApply(t, s, 1, End(m4, "arena", week0.Add(4*time.Hour), R("ann", 1, 5), R("ben", 3, 1), R("cid", 1, 5), R("dee", 4, 0)))
	before := func(p string) float64 { // arena rating before the 4-player match
		switch p {
		case "ann":
			return ann
		case "ben":
			return ben
		}
		return store.InitialRating
	}
	var sum float64
	wins := 0
	for _, p := range []string{"ann", "ben", "cid", "dee"} {
		st, _ := s.PlayerStats(ctx, p)
		sum += st[1].Rating - before(p)
		if p == "cid" || p == "ann" {
			wins += int(st[1].Wins)
		}
	}
	if math.Abs(sum) > 1e-9 || wins != 3 {
		t.Fatalf("4-player match: rating changes sum to %v (want 0); wins of ann+cid %d (want 3)", sum, wins)
	}
	cid, _ := s.PlayerStats(ctx, "cid")
	// cid (1500) beat ben (1484.x) and dee (1500), tied ann (1516.x): K/3 * sum.
	wantCid := 1500 + (elo(1500, ben, 1)+elo(1500, 1500, 1)+elo(1500, ann, 0.5))/3
	if !near(cid[1].Rating, wantCid) {
		t.Fatalf("cid arena rating %v, want %v", cid[1].Rating, wantCid)
	}
	// A one-player match counts the game, moves no rating.
	mustApply(t, s, 1, End(UUIDv7(), "arena", week0.Add(5*time.Hour), R("solo", 1, 7)))
	solo, _ := s.PlayerStats(ctx, "solo")
	if len(solo) != 2 || solo[0].Rating != store.InitialRating || solo[0].Games != 1 || solo[0].Wins != 1 {
		t.Fatalf("solo: %+v", solo)
	}
	if none, err := s.PlayerStats(ctx, "nobody"); err != nil || len(none) != 0 {
		t.Fatalf("stats of nobody: %+v, %v", none, err)
	}
}

func testPlayerMatches(t *testing.T, s *store.Store) {
	var ids []string
	for i := 0; i < 7; i++ {
		id := UUIDv7()
		ids = append(ids, id)
		opp := fmt.Sprintf("opp%d", i)
		mustApply(t, s, 2, Start(id, "tictactoe", week0.Add(time.Duration(i)*time.Hour)),
			End(id, "tictactoe", week0.Add(time.Duration(i)*time.Hour+time.Minute), R("hero", 1+i%2, 1), R(opp, 2-i%2, 0)))
	}
	// A running match and someone else's match are not in the history.
	mustApply(t, s, 2, Start(UUIDv7(), "tictactoe", week0.Add(9*time.Hour)),
		End(UUIDv7(), "tictactoe", week0.Add(9*time.Hour), R("villain", 1, 1)))

	var got []string
	before := ""
	pages := 0
	for {
		page, next, err := s.PlayerMatches(ctx, "hero", before, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range page {
			got = append(got, m.ID)
			if len(m.Results) != 2 || !m.Ended() || m.Mode != "tictactoe" {
				t.Fatalf("history entry %+v", m)
			}
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		before = next
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	if pages != 3 || !reflect.DeepEqual(got, ids) {
		t.Fatalf("%d pages: %v\nwant newest first %v", pages, got, ids)
	}
	page, next, err := s.PlayerMatches(ctx, "hero", "", 7)
	if err != nil || len(page) != 7 || next != "" {
		t.Fatalf("exact page: %d matches, next %q, %v", len(page), next, err)
	}
	if page, next, err := s.PlayerMatches(ctx, "nobody", "", 0); err != nil || len(page) != 0 || next != "" {
		t.Fatalf("no history: %v %q %v", page, next, err)
	}
}

// testDerivedEqualsRecompute applies a random stream of 1,000 events (starts
// anywhere, ends in end order, repeated events) in random batches, then
// checks that the derived data equals RecomputeDerived's.
func testDerivedEqualsRecompute(t *testing.T, s *store.Store) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, b := range []store.Leaderboard{
		{ID: "arena_latest_score", Mode: "arena", Metric: "score", Operator: "latest", Reset: "never"},
		{ID: "daily_best_score", Mode: "", Metric: "score", Operator: "best", Reset: "daily"},
		{ID: "tictactoe_weekly_wins", Mode: "tictactoe", Metric: "wins", Operator: "sum", Reset: "weekly"},
	} {
		if err := s.PutLeaderboard(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var accounts []string
	for i := 0; i < 15; i++ {
		accounts = append(accounts, fmt.Sprintf("acct%02d", i))
	}
	const nMatches = 400
	type match struct {
		start, end store.Change
	}
	var matches []match
	var ids []string
	ended := week0.Add(-10 * 24 * time.Hour)
	for i := 0; i < nMatches; i++ {
		if rng.IntN(4) > 0 { // a quarter end at the same time as the previous match
			ended = ended.Add(time.Duration(rng.IntN(200)) * time.Minute)
		}
		mode := "arena"
		if rng.IntN(3) == 0 {
			mode = "tictactoe"
		}
		n := 1 + rng.IntN(4)
		perm := rng.Perm(len(accounts))
		var rs []store.ResultRecord
		for p := 0; p < n; p++ {
			r := R(accounts[perm[p]], 1+rng.IntN(n), int64(rng.IntN(60)-10))
			if rng.IntN(3) == 0 {
				r.Score = 0
			}
			if rng.IntN(2) == 0 {
				r.Stats = map[string]float64{"kills": float64(rng.IntN(9)), "acc": rng.Float64()}
			}
			rs = append(rs, r)
		}
		id := UUIDv7()
		ids = append(ids, id)
		matches = append(matches, match{start: Start(id, mode, ended.Add(-time.Minute)), end: End(id, mode, ended, rs...)})
	}
	// The stream: ends in end order, each start at a random earlier or
	// later place, then 200 repeats of earlier events.
	var stream []store.Change
	for _, m := range matches {
		stream = append(stream, m.end)
	}
	for _, m := range matches {
		at := rng.IntN(len(stream) + 1)
		stream = append(stream[:at], append([]store.Change{m.start}, stream[at:]...)...)
	}
	for i := 0; i < 200; i++ {
		from := rng.IntN(len(stream))
		at := from + 1 + rng.IntN(len(stream)-from)
		stream = append(stream[:at], append([]store.Change{stream[from]}, stream[at:]...)...)
	}
	if len(stream) != 1000 {
		t.Fatalf("stream of %d events", len(stream))
	}
	applied := 0
	for lo := 0; lo < len(stream); {
		hi := min(len(stream), lo+1+rng.IntN(60))
		batch := append([]store.Change(nil), stream[lo:hi]...)
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		n, err := s.ApplyChanges(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		applied += n
		lo = hi
	}
	if applied != 2*nMatches {
		t.Fatalf("applied %d events, want %d (the rest repeat)", applied, 2*nMatches)
	}
	from, to := week0.Add(-11*24*time.Hour), ended.Add(24*time.Hour)
	incremental := takeSnapshot(t, s, ids, accounts, from, to)

	// Sanity: every result counted once in the all-modes rows.
	var games, results int64
	for _, st := range incremental.Stats {
		for _, r := range st {
			if r.Mode == "" {
				games += r.Games
			}
		}
	}
	for _, m := range incremental.Matches {
		if !m.Ended() {
			t.Fatalf("match %s did not end", m.ID)
		}
		results += int64(len(m.Results))
	}
	if games != results {
		t.Fatalf("games counted %d, results stored %d", games, results)
	}
	if n, err := s.ApplyChanges(ctx, stream); err != nil || n != 0 {
		t.Fatalf("whole stream again: applied %d, %v", n, err)
	}
	if err := s.RecomputeDerived(ctx); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, "recomputed vs incremental", takeSnapshot(t, s, ids, accounts, from, to), incremental)
}

// Ev is a match event change with a fresh UUIDv7 id.
func Ev(matchID, name string, at time.Time, data string) store.Change {
	return store.EventChange(store.MatchEventRecord{EventID: UUIDv7(), MatchID: matchID, Name: name, At: at, Data: []byte(data)})
}

func testMatchEvents(t *testing.T, s *store.Store) {
	id, other := UUIDv7(), UUIDv7()
	var evs []store.Change
	for i := 0; i < 5; i++ {
		evs = append(evs, Ev(id, "tag", t0.Add(time.Duration(i)*time.Second), fmt.Sprintf(`{"by":"p%d","tagged":"q"}`, i)))
	}
	noData := Ev(other, "goal", t0, "")
	// Mixed with a start and an end in one batch, with a repeat inside it.
	mustApply(t, s, 8, append([]store.Change{Start(id, "arena", t0), evs[0], evs[0], noData}, append(evs[1:], End(id, "arena", t0.Add(time.Minute), R("acc-a", 1, 3)))...)...)
	// Redelivered: nothing changes.
	mustApply(t, s, 0, evs...)
	mustApply(t, s, 0, noData)

	page, next, err := s.MatchEvents(ctx, id, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || next == "" || page[0].EventID != evs[0].Event.EventID || page[2].EventID != evs[2].Event.EventID {
		t.Fatalf("first page = %+v next %q", page, next)
	}
	if !page[1].At.Equal(t0.Add(time.Second)) || page[1].Name != "tag" || string(page[1].Data) != `{"by":"p1","tagged":"q"}` || page[1].MatchID != id {
		t.Fatalf("event read back = %+v", page[1])
	}
	rest, next, err := s.MatchEvents(ctx, id, next, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 2 || next != "" || rest[1].EventID != evs[4].Event.EventID {
		t.Fatalf("second page = %+v next %q", rest, next)
	}
	if got, _, err := s.MatchEvents(ctx, other, "", 0); err != nil || len(got) != 1 || got[0].Data != nil {
		t.Fatalf("event without data = %+v, %v", got, err)
	}
	if got, _, err := s.MatchEvents(ctx, UUIDv7(), "", 0); err != nil || len(got) != 0 {
		t.Fatalf("events of an unknown match = %+v, %v", got, err)
	}
	// The end still took effect alongside the events.
	if m, err := s.Match(ctx, id); err != nil || !m.Ended() || len(m.Results) != 1 {
		t.Fatalf("match = %+v, %v", m, err)
	}

	// What JSON escapes (PostgreSQL receives a batch as one JSON array)
	// comes back byte for byte, with the time to the microsecond.
	odd := UUIDv7()
	oddAt := t0.Add(123456 * time.Microsecond)
	oddName, oddData := `q"uote\back/slash ñ 😀`, "{\"s\":\"a\\\"b\\\\c\\u0000 \u2028\u2029 <&> \x7f\",\n \"n\": 1e3}"
	mustApply(t, s, 2, Ev(odd, oddName, oddAt, oddData), Ev(odd, "\t", oddAt, `"\\u00e9"`))
	if got, _, err := s.MatchEvents(ctx, odd, "", 0); err != nil || len(got) != 2 || got[0].Name != oddName || string(got[0].Data) != oddData ||
		!got[0].At.Equal(oddAt) || got[1].Name != "\t" || string(got[1].Data) != `"\\u00e9"` {
		t.Fatalf("events with escapes read back = %q, %v", got, err)
	}

	// Malformed events are refused, and nothing of their batch is applied.
	good := Ev(id, "tag", t0, "")
	for _, bad := range []store.MatchEventRecord{
		{MatchID: id, Name: "x", At: t0},
		{EventID: UUIDv7(), Name: "x", At: t0},
		{EventID: UUIDv7(), MatchID: id, At: t0},
		{EventID: UUIDv7(), MatchID: id, Name: "x"},
		{EventID: UUIDv7(), MatchID: id, Name: "x", At: t0, Data: make([]byte, store.MaxEventData+1)},
	} {
		if _, err := s.ApplyChanges(ctx, []store.Change{good, store.EventChange(bad)}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ApplyChanges(%+v): %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.ApplyChanges(ctx, []store.Change{{Event: good.Event, Start: Start(id, "arena", t0).Start}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a change with two kinds: %v, want ErrInvalid", err)
	}
	mustApply(t, s, 1, good)
}

func testPruneProcessed(t *testing.T, s *store.Store) {
	var cs []store.Change
	for i := 0; i < 3; i++ {
		cs = append(cs, Start(UUIDv7(), "arena", t0))
	}
	mustApply(t, s, 3, cs...)
	if n, err := s.PruneProcessed(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("PruneProcessed(an hour ago) = %d, %v; want 0", n, err)
	}
	mustApply(t, s, 0, cs...) // still remembered
	if n, err := s.PruneProcessed(ctx, time.Now().Add(time.Second)); err != nil || n != 3 {
		t.Fatalf("PruneProcessed(now) = %d, %v; want 3", n, err)
	}
	// Forgotten ids are applied again: the retention must outlast redelivery.
	mustApply(t, s, 3, cs...)
}

// A personal event's owner and sealed data come back as they were stored
// (the store opens nothing), on both insert paths; sealed data without an
// owner is refused.
func testPersonalMatchEvents(t *testing.T, s *store.Store) {
	id := UUIDv7()
	rec := store.MatchEventRecord{EventID: UUIDv7(), MatchID: id, Name: "chat", At: t0, Data: []byte("sealed:AbC-_09"), Owner: "acc-a"}
	odd := store.MatchEventRecord{EventID: UUIDv7(), MatchID: id, Name: "chat", At: t0, Data: []byte(`{"say":"hi"}`), Owner: `o"wner ñ`}
	mustApply(t, s, 3, store.EventChange(rec), store.EventChange(odd), Ev(id, "tag", t0, `{}`))
	got, _, err := s.MatchEvents(ctx, id, "", 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("events = %+v, %v", got, err)
	}
	byID := map[string]store.MatchEventRecord{}
	for _, e := range got {
		byID[e.EventID] = e
	}
	if e := byID[rec.EventID]; e.Owner != "acc-a" || string(e.Data) != "sealed:AbC-_09" {
		t.Errorf("personal event read back = %+v (%s)", e, e.Data)
	}
	if e := byID[odd.EventID]; e.Owner != odd.Owner || string(e.Data) != `{"say":"hi"}` {
		t.Errorf("personal event in clear read back = %+v (%s)", e, e.Data)
	}
	for _, e := range got {
		if e.EventID != rec.EventID && e.EventID != odd.EventID && e.Owner != "" {
			t.Errorf("ordinary event has owner %q", e.Owner)
		}
	}
	bad := store.MatchEventRecord{EventID: UUIDv7(), MatchID: id, Name: "chat", At: t0, Data: []byte("sealed:AAAA")}
	if _, err := s.ApplyChanges(ctx, []store.Change{store.EventChange(bad)}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("sealed data without owner: %v, want ErrInvalid", err)
	}
}
