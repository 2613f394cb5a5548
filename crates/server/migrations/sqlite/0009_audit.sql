-- The audit trail (issue 25): one hash-chained sequence of events for the
-- whole deployment, written in the same transaction as the change each
-- records (see crates/server/src/audit.rs).
--   seq         1, 2, 3, … without gaps; the chain's order
--   time        Unix seconds, by the writing node's clock
--   actor_type  admin | client | cli | system; actor_id its id, if any
--   details     a JSON object in canonical form (no secrets: those appear
--               only as hmac-sha256:… references)
--   prev_hash   the previous event's hash (the pruning anchor's, or 32 zero
--               bytes, for the first)
--   hash        SHA-256 of the event's canonical form
--   mac         HMAC-SHA256 of hash under a key derived from the master key
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    request_id  TEXT,
    source_ip   TEXT,
    details     TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL,
    mac         BLOB NOT NULL
);
-- No index beyond the primary key: each would cost every audited change a
-- write. Pruning walks the chain from its start, in seq (and so time) order.

-- The chain's one head row: the last event's seq and hash, where pruning
-- left the chain's start (pruned_through, pruned_hash: the last deleted
-- event), and a MAC over all four. The genesis row has no MAC yet (the
-- migration holds no key): seq 0, 32 zero bytes.
CREATE TABLE audit_head (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    seq             INTEGER NOT NULL,
    hash            BLOB NOT NULL,
    pruned_through  INTEGER NOT NULL,
    pruned_hash     BLOB NOT NULL,
    mac             BLOB
);
INSERT INTO audit_head (id, seq, hash, pruned_through, pruned_hash, mac)
VALUES (1, 0, zeroblob(32), 0, zeroblob(32), NULL);
