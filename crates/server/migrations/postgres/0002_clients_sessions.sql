-- PostgreSQL twin of ../sqlite/0002: clients (secrets as Argon2id PHC
-- strings only), sessions, and refresh tokens kept as SHA-256 hashes.
CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    grants      TEXT NOT NULL,          -- JSON array of grant names
    created_at  BIGINT NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    sub         TEXT NOT NULL,
    org         TEXT NOT NULL,
    roles       TEXT NOT NULL,          -- JSON array
    amr         TEXT NOT NULL,          -- JSON array
    audience    TEXT NOT NULL,
    claims      TEXT NOT NULL,          -- JSON object of custom claims
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE refresh_tokens (
    hash        BYTEA PRIMARY KEY,
    family_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX refresh_by_family ON refresh_tokens (family_id);
