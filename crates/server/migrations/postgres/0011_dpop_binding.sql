-- PostgreSQL twin of ../sqlite/0011: DPoP binding (public clients, clients
-- whose tokens are always bound, a session's key and holder, a sealed
-- token's key).
ALTER TABLE clients ADD COLUMN is_public BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN dpop_required BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;
ALTER TABLE sessions ADD COLUMN holder TEXT;
ALTER TABLE sealed_tokens ADD COLUMN jkt TEXT;
