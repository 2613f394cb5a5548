-- A refresh family never spans two sessions (a session has one, named
-- after it), and a reuse revokes the session with every token of it:
-- found through refresh_by_session. The family index only cost every new
-- refresh token one more B-tree insert at a random place (on SQLite a page
-- more in the log, and again at checkpoint).
DROP INDEX IF EXISTS refresh_by_family;
