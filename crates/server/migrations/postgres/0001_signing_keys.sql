-- PostgreSQL twin of ../sqlite/0001: signing keys and their lifecycle
-- (next -> current -> retiring -> retired); the private part sealed with
-- the master key and erased once retired.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('next', 'current', 'retiring', 'retired')),
    public_jwk     TEXT NOT NULL,
    sealed_private BYTEA,
    created_at     BIGINT NOT NULL,
    activates_at   BIGINT NOT NULL,
    retires_at     BIGINT
);

-- At most one current and one next key, whichever node writes.
CREATE UNIQUE INDEX one_current_key ON signing_keys (state) WHERE state IN ('current', 'next');
