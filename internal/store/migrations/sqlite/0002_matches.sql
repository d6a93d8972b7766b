-- Match results: the idempotency keys of processed events, matches, each
-- player's result, and the data derived from them (player stats and
-- leaderboard records, which RecomputeDerived can rebuild from matches and
-- match_results).
-- Kept in lockstep with ../postgres/0002_matches.sql (TestMigrationsInLockstep).
-- Times are INTEGER microseconds since the Unix epoch (UTC); stats are JSON
-- object text. Ids are UUIDv7 text, time-ordered, so inserts append to the
-- primary-key b-trees. No foreign keys: results are
-- written only together with their match, a per-row check would cost an
-- index probe per row on the hot path, and results outlive deleted accounts.

CREATE TABLE processed_events (
    event_id     TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    match_id     TEXT NOT NULL,
    processed_at INTEGER NOT NULL
);

CREATE TABLE matches (
    id          TEXT PRIMARY KEY,
    mode        TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    node        TEXT NOT NULL DEFAULT '',
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    duration_ms INTEGER,
    end_reason  TEXT
);

CREATE TABLE match_results (
    match_id   TEXT NOT NULL,
    account_id TEXT NOT NULL,
    placement  INTEGER NOT NULL CHECK (placement >= 1),
    score      INTEGER NOT NULL,
    stats      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (match_id, account_id)
);
CREATE INDEX match_results_account ON match_results (account_id, match_id DESC);

CREATE TABLE player_stats (
    account_id TEXT NOT NULL,
    mode       TEXT NOT NULL,
    games      INTEGER NOT NULL,
    wins       INTEGER NOT NULL,
    score_sum  INTEGER NOT NULL,
    rating     REAL NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, mode)
);

CREATE TABLE leaderboards (
    id       TEXT PRIMARY KEY,
    mode     TEXT NOT NULL DEFAULT '',
    metric   TEXT NOT NULL CHECK (metric IN ('score', 'wins')),
    operator TEXT NOT NULL CHECK (operator IN ('best', 'sum', 'latest')),
    reset    TEXT NOT NULL CHECK (reset IN ('never', 'daily', 'weekly'))
);
INSERT INTO leaderboards (id, mode, metric, operator, reset) VALUES
    ('global_wins', '', 'wins', 'sum', 'never'),
    ('arena_best_score', 'arena', 'score', 'best', 'never'),
    ('arena_weekly_score', 'arena', 'score', 'sum', 'weekly'),
    ('tictactoe_wins', 'tictactoe', 'wins', 'sum', 'never');

CREATE TABLE leaderboard_records (
    board_id     TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    account_id   TEXT NOT NULL,
    value        INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (board_id, period_start, account_id)
);
CREATE INDEX leaderboard_records_rank ON leaderboard_records (board_id, period_start, value DESC, updated_at, account_id);
