-- PostgreSQL twin of ../sqlite/0008: the admin API (issue 25).
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_until BIGINT;

ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_state_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_state_check
    CHECK (state IN ('next', 'current', 'retiring', 'retired', 'compromised'));

ALTER TABLE sealed_tokens ADD COLUMN kid TEXT;
CREATE INDEX sealed_by_kid ON sealed_tokens (kid);

CREATE INDEX sessions_by_sub ON sessions (sub);
