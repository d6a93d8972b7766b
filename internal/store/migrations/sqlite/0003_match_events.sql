-- Key moments of matches: the match.event events a game chose to emit, as
-- they came (append-only). The event id (UUIDv7, time-ordered) is the
-- primary key, so a redelivered event is a no-op insert and the rows of one
-- match read back in time order from the (match_id, event_id) index.
-- Kept in lockstep with ../postgres/0003_match_events.sql.

CREATE TABLE match_events (
    event_id TEXT PRIMARY KEY,
    match_id TEXT NOT NULL,
    name     TEXT NOT NULL,
    at       INTEGER NOT NULL,
    data     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX match_events_match ON match_events (match_id, event_id);

-- The persistence service forgets processed event ids after a retention
-- longer than any redelivery or dead-letter replay can come (Store.PruneProcessed).
CREATE INDEX processed_events_at ON processed_events (processed_at);
