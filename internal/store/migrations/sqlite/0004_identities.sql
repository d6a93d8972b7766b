-- External identities (an OpenID Connect issuer's subject) linked to
-- accounts: one account may have several, an (issuer, subject) pair belongs
-- to one account at most. issuer is the token's iss claim, not the name an
-- operator gave the issuer in the configuration, so renaming it keeps links.
-- Kept in lockstep with ../postgres/0004_identities.sql.

CREATE TABLE account_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX account_identities_account ON account_identities (account_id);
