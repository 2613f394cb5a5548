-- PostgreSQL twin of ../sqlite/0009: the audit trail, one hash-chained
-- sequence for the whole deployment (every node appends to it, taking turns
-- on the audit_head row: SELECT … FOR UPDATE), and its head.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    time        BIGINT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    request_id  TEXT,
    source_ip   TEXT,
    details     TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL,
    mac         BYTEA NOT NULL
);
-- No index beyond the primary key: each would cost every audited change a
-- write. Pruning walks the chain from its start, in seq (and so time) order.

CREATE TABLE audit_head (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    seq             BIGINT NOT NULL,
    hash            BYTEA NOT NULL,
    pruned_through  BIGINT NOT NULL,
    pruned_hash     BYTEA NOT NULL,
    mac             BYTEA
);
INSERT INTO audit_head (id, seq, hash, pruned_through, pruned_hash, mac)
VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0, decode(repeat('00', 32), 'hex'), NULL);
