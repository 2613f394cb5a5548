-- What each client may ask for (authorization between clients):
--   audiences   JSON array of the audiences it may ask tokens for; NULL: the
--               default rule (audiences declared as `jws` resources, or any
--               when the configuration declares no resources)
--   scopes      JSON array of the scopes it may ask for
--   may_act     JSON array of client ids this client trusts to exchange its
--               sessions' tokens (RFC 8693 delegation)
--   introspect  JSON array of audiences whose tokens it may introspect (a
--               resource server)
--   legacy      1 for a client registered before these fields existed: it
--               keeps the default rule besides the audiences it had used
ALTER TABLE clients ADD COLUMN audiences TEXT;
ALTER TABLE clients ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN may_act TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN introspect TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN legacy INTEGER NOT NULL DEFAULT 0;
UPDATE clients SET legacy = 1,
    audiences = (SELECT json_group_array(a) FROM (
        SELECT audience AS a FROM sessions WHERE client_id = clients.id
        UNION SELECT audience FROM sealed_tokens WHERE client_id = clients.id));

-- A session's granted scope (space-separated, RFC 6749 §3.3) and the
-- assurance level its client reported.
ALTER TABLE sessions ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN acr TEXT;

-- A sealed token's session, kept as the SHA-256 of its id: the session id
-- itself stays in session_id only when the token carried it (a partner's
-- release list may withhold it). Ending a session revokes its sealed tokens
-- through this reference.
ALTER TABLE sealed_tokens ADD COLUMN session_ref BLOB;
CREATE INDEX sealed_by_session ON sealed_tokens (session_ref);
-- Partner tokens recorded before this version kept `sub` whether or not
-- the partner's release list sent it: forget it (their sid is never told
-- either, see the introspection endpoint).
UPDATE sealed_tokens SET sub = '' WHERE format = 'nested';

-- Revoked tokens that have no session (client_credentials), by jti, until
-- they expire.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
-- Each node reads the revocations of the last minute, not the whole table.
CREATE INDEX revoked_tokens_recent ON revoked_tokens (revoked_at);
