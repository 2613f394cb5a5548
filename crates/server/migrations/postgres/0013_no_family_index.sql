-- no-transaction
-- A refresh family never spans two sessions (a session has one, named
-- after it), and a reuse revokes the session with every token of it:
-- found through refresh_by_session. The family index only cost every new
-- refresh token one more index insert. Dropped without blocking the
-- refresh tokens of running nodes (CONCURRENTLY: outside a transaction).
DROP INDEX CONCURRENTLY IF EXISTS refresh_by_family;
