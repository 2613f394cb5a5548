-- PostgreSQL twin of ../sqlite/0006: what each client may ask for
-- (audiences, scopes, may_act, introspect; legacy clients keep the default
-- rule besides the audiences they had used), a session's scope and acr, the
-- sealed tokens' session reference, and revoked session-less tokens.
ALTER TABLE clients ADD COLUMN audiences TEXT;
ALTER TABLE clients ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN may_act TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN introspect TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN legacy BIGINT NOT NULL DEFAULT 0;
UPDATE clients SET legacy = 1,
    audiences = (SELECT COALESCE(json_agg(u.a), '[]'::json)::text FROM (
        SELECT audience AS a FROM sessions WHERE client_id = clients.id
        UNION SELECT audience FROM sealed_tokens WHERE client_id = clients.id) u);

ALTER TABLE sessions ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN acr TEXT;

ALTER TABLE sealed_tokens ADD COLUMN session_ref BYTEA;
CREATE INDEX sealed_by_session ON sealed_tokens (session_ref);
-- Partner tokens recorded before this version kept `sub` whether or not
-- the partner's release list sent it: forget it (their sid is never told
-- either, see the introspection endpoint).
UPDATE sealed_tokens SET sub = '' WHERE format = 'nested';

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
-- Each node reads the revocations of the last minute, not the whole table.
CREATE INDEX revoked_tokens_recent ON revoked_tokens (revoked_at);
