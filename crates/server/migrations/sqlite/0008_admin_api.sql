-- The admin API (issue 25).
-- 1. A client secret can be rolled with a grace period: the previous
--    secret's Argon2id hash keeps working until `previous_secret_until`.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_until INTEGER;

-- 2. Signing keys gain the state `compromised` (left the JWKS at once, its
--    private part erased, never served again). SQLite cannot change a CHECK
--    constraint in place: the table is rebuilt.
CREATE TABLE signing_keys_new (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    state          TEXT NOT NULL
                   CHECK (state IN ('next', 'current', 'retiring', 'retired', 'compromised')),
    public_jwk     TEXT NOT NULL,
    sealed_private BLOB,
    created_at     INTEGER NOT NULL,
    activates_at   INTEGER NOT NULL,
    retires_at     INTEGER
);
INSERT INTO signing_keys_new
    SELECT kid, alg, state, public_jwk, sealed_private, created_at, activates_at, retires_at
    FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
CREATE UNIQUE INDEX one_current_key ON signing_keys (state) WHERE state IN ('current', 'next');

-- 3. Which key signed a sealed token (jwe and nested tokens are signed,
--    then sealed): a compromised key's tokens are refused at introspection.
ALTER TABLE sealed_tokens ADD COLUMN kid TEXT;
CREATE INDEX sealed_by_kid ON sealed_tokens (kid);

-- 4. The admin API searches sessions by subject. (By client or by issue time it
--    scans, in id order: an index more would cost every session minted a write.)
CREATE INDEX sessions_by_sub ON sessions (sub);
