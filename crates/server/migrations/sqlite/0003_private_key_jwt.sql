-- RFC 7523 private_key_jwt: a client may register its public JWKS instead
-- of a secret (secret_hash is then empty), and each assertion's jti is
-- accepted once.
ALTER TABLE clients ADD COLUMN jwks TEXT;

CREATE TABLE used_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
