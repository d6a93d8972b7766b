-- Match results: the idempotency keys of processed events, matches, each
-- player's result, and the data derived from them (player stats and
-- leaderboard records, which RecomputeDerived can rebuild from matches and
-- match_results).
-- Kept in lockstep with ../sqlite/0002_matches.sql (TestMigrationsInLockstep).
-- Times are TIMESTAMPTZ; stats are JSON object text. Ids are UUIDv7 text, time-ordered, so
-- inserts append to the primary-key b-trees. Id columns use COLLATE "C" so
-- ORDER BY and cursors compare bytes, like Go and SQLite. No foreign keys: results are
-- written only together with their match, a per-row check would cost an
-- index probe per row on the hot path, and results outlive deleted accounts.

CREATE TABLE processed_events (
    event_id     TEXT COLLATE "C" PRIMARY KEY,
    type         TEXT NOT NULL,
    match_id     TEXT COLLATE "C" NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE matches (
    id          TEXT COLLATE "C" PRIMARY KEY,
    mode        TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    node        TEXT NOT NULL DEFAULT '',
    started_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ,
    duration_ms BIGINT,
    end_reason  TEXT
);

CREATE TABLE match_results (
    match_id   TEXT COLLATE "C" NOT NULL,
    account_id TEXT COLLATE "C" NOT NULL,
    placement  INTEGER NOT NULL CHECK (placement >= 1),
    score      BIGINT NOT NULL,
    stats      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (match_id, account_id)
);
CREATE INDEX match_results_account ON match_results (account_id, match_id DESC);

CREATE TABLE player_stats (
    account_id TEXT COLLATE "C" NOT NULL,
    mode       TEXT NOT NULL,
    games      BIGINT NOT NULL,
    wins       BIGINT NOT NULL,
    score_sum  BIGINT NOT NULL,
    rating     DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, mode)
);

CREATE TABLE leaderboards (
    id       TEXT COLLATE "C" PRIMARY KEY,
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
    board_id     TEXT COLLATE "C" NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    account_id   TEXT COLLATE "C" NOT NULL,
    value        BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (board_id, period_start, account_id)
);
CREATE INDEX leaderboard_records_rank ON leaderboard_records (board_id, period_start, value DESC, updated_at, account_id);
