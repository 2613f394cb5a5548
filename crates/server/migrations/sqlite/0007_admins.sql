-- Operators of the admin API (issue 25): who may manage clients, keys,
-- sessions and read the audit trail, and with which scopes. Managed by the
-- CLI only (`tessera admins create|list|delete`).
--   scopes      JSON array of scopes (clients:read, …, or "*")
--   token_hash  SHA-256 of the bearer token (256 random bits, shown once):
--               the token itself is never stored
CREATE TABLE admins (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
