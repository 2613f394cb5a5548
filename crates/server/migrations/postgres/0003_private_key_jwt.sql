-- PostgreSQL twin of ../sqlite/0003: RFC 7523 private_key_jwt clients and
-- single-use assertion ids.
ALTER TABLE clients ADD COLUMN jwks TEXT;

CREATE TABLE used_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
