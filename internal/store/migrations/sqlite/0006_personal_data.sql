-- Personal data sealed (internal/store/personal.go): accounts.email holds
-- the email sealed under the account's data key ("sealed:..."), so no
-- index or uniqueness can use it; email_index holds its blind index (a
-- keyed hash of the normalised email, the same on every node) and carries
-- the uniqueness and the lookups. Rows written before this version keep
-- their email in clear and no index until the auth service converts them
-- (at start, or `multijuego keys seal-data`); lookups fall back to the
-- clear column meanwhile.
-- Kept in lockstep with ../postgres/0006_personal_data.sql.

ALTER TABLE accounts ADD COLUMN email_index TEXT;
DROP INDEX accounts_email_key;
CREATE UNIQUE INDEX accounts_email_index ON accounts (email_index);
CREATE INDEX accounts_email_clear ON accounts (email) WHERE email_index IS NULL;
