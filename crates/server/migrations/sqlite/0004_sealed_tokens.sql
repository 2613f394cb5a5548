-- Sealed tokens (formats "jwe" and "nested") are encrypted to their
-- resource's key, which tessera does not hold: it cannot read them back.
-- Introspection and revocation find them by hash. Only what an RFC 7662
-- answer needs is kept, never the claims themselves.
CREATE TABLE sealed_tokens (
    hash        BLOB PRIMARY KEY,
    jti         TEXT NOT NULL,
    kind        TEXT NOT NULL,      -- access_token | step_up | federation
    format      TEXT NOT NULL,      -- jwe | nested
    client_id   TEXT NOT NULL,
    session_id  TEXT,
    sub         TEXT NOT NULL,
    audience    TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX sealed_tokens_expiry ON sealed_tokens (expires_at);
