-- DPoP binding (RFC 9449):
--   clients.is_public      1: a public client (a mobile app) — no secret, no
--                          JWKS; it may only refresh, and only with a proof
--   clients.dpop_required  1: every token issued to the client is bound to
--                          the key of a DPoP proof
--   sessions.dpop_jkt      the key (RFC 7638 SHA-256 thumbprint) every token
--                          of the session is bound to; every refresh of it
--                          presents a proof by that key
--   sessions.holder        the public client that refreshes the session
--                          (its refresh tokens are that client's)
--   sealed_tokens.jkt      the key a sealed token is bound to (its cnf.jkt,
--                          for introspection, which cannot read the token)
ALTER TABLE clients ADD COLUMN is_public INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN dpop_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;
ALTER TABLE sessions ADD COLUMN holder TEXT;
ALTER TABLE sealed_tokens ADD COLUMN jkt TEXT;
