-- DPoP proofs seen (RFC 9449 §11.1): each is accepted once, by any node,
-- for as long as it could be accepted at all. `proof_key` is the SHA-256 of the
-- proof key's thumbprint and the proof's jti (tessera_verify::dpop::replay_key).
-- No index on expires_at: the rows live a minute, and pruning every ten
-- minutes reads the table once rather than every proof writing an index.
CREATE TABLE dpop_proofs (
    proof_key  BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
