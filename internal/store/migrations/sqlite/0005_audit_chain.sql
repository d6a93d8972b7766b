-- The audit log's hash chain (auditchain.go): the chainer gives each row,
-- in its own order, a place in the chain (chain_seq: 1, 2, 3, ... without
-- gaps) and chain_hash = SHA-256(previous row's chain_hash || the row's
-- canonical encoding with its chain_seq), hex. Rows are inserted unchained
-- (both NULL), so the login path writes no more than before.
-- Kept in lockstep with ../postgres/0005_audit_chain.sql.

ALTER TABLE audit_log ADD COLUMN chain_seq INTEGER;
ALTER TABLE audit_log ADD COLUMN chain_hash TEXT;
CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain_seq);
CREATE INDEX audit_log_unchained ON audit_log (id) WHERE chain_seq IS NULL;
