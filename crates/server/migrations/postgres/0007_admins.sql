-- PostgreSQL twin of ../sqlite/0007: operators of the admin API, their
-- scopes, and the SHA-256 of their bearer tokens (never the tokens).
CREATE TABLE admins (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
