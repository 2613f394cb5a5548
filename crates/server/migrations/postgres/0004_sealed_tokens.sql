-- PostgreSQL twin of ../sqlite/0004: sealed (jwe, nested) tokens found by
-- hash for introspection and revocation; never their claims.
CREATE TABLE sealed_tokens (
    hash        BYTEA PRIMARY KEY,
    jti         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    format      TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    session_id  TEXT,
    sub         TEXT NOT NULL,
    audience    TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX sealed_tokens_expiry ON sealed_tokens (expires_at);
