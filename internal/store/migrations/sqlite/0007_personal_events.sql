-- Personal match events (match.Dispatcher.EmitPersonal): owner is the
-- account whose personal data the event carries, and data then holds it
-- sealed under that account's data key ("sealed:...", never valid JSON),
-- as it came from the queue; '' for ordinary events. Readers open it
-- (internal/events/personal.go); erasing the owner destroys the key.
-- Kept in lockstep with ../postgres/0007_personal_events.sql.

ALTER TABLE match_events ADD COLUMN owner TEXT NOT NULL DEFAULT '';
