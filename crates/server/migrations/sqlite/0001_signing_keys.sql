-- Signing keys and their lifecycle: next -> current -> retiring -> retired.
-- The private part is sealed with the master key (AES-256-GCM, kid as AAD)
-- and erased once the key is retired.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('next', 'current', 'retiring', 'retired')),
    public_jwk     TEXT NOT NULL,
    sealed_private BLOB,
    created_at     INTEGER NOT NULL,
    activates_at   INTEGER NOT NULL,
    retires_at     INTEGER
);

-- At most one current and one next key.
CREATE UNIQUE INDEX one_current_key ON signing_keys (state) WHERE state IN ('current', 'next');
