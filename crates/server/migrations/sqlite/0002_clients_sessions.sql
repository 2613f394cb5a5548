-- Clients: secrets stored as Argon2id PHC strings only.
CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    grants      TEXT NOT NULL,          -- JSON array of grant names
    created_at  INTEGER NOT NULL
);

-- Sessions minted by trusted clients for users they authenticated.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    sub         TEXT NOT NULL,
    org         TEXT NOT NULL,
    roles       TEXT NOT NULL,          -- JSON array
    amr         TEXT NOT NULL,          -- JSON array
    audience    TEXT NOT NULL,
    claims      TEXT NOT NULL,          -- JSON object of custom claims
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Refresh tokens: only a SHA-256 hash is kept. One family per session; a
-- token is used once; presenting a used token again revokes the family.
CREATE TABLE refresh_tokens (
    hash        BLOB PRIMARY KEY,
    family_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX refresh_by_family ON refresh_tokens (family_id);
